"""facemark.pipeline.orientation: a face whose way up is in doubt is tried every quarter turn of its crop, and the
way whose mirror images agree best wins."""

import dataclasses
import functools
import math

import numpy as np
import pytest

from facemark.pipeline.crops import crop_image
from facemark.pipeline.orientation import ORIENTATION_CHECK, ORIENTATION_TRUST, four_ways_up, surely_upright


@pytest.fixture(scope="module")
def reference(landmarker, astronaut):
    return landmarker.detect(astronaut)[0].points


def test_surely_upright_needs_both_agreement_and_trust():
    assert surely_upright(ORIENTATION_CHECK / 2, ORIENTATION_TRUST + 0.1)
    assert not surely_upright(ORIENTATION_CHECK * 2, 0.9)
    assert not surely_upright(0.0, ORIENTATION_TRUST / 2)
    assert not surely_upright(float("nan"), 0.9)


@pytest.mark.parametrize("turn", [0.0, math.pi / 2, math.pi, -math.pi / 2])
def test_the_right_way_up_is_found_from_any_quarter_turn(landmarker, astronaut, reference, turn):
    """A crop of the upright sample turned by a quarter or half turn: the points come back on the face, the
    right way round (left eye on the image's left)."""
    passes = landmarker.passes
    upright = passes.framing(reference, 0.0)
    turned = dataclasses.replace(upright, angle=math.remainder(upright.angle + turn, 2 * math.pi))
    (points, gap), = four_ways_up(passes, functools.partial(crop_image, astronaut), [turned])
    scheme = passes.scheme
    a, b = scheme.normaliser
    iod = float(np.linalg.norm(reference[a] - reference[b]))
    assert float(np.linalg.norm(points - reference, axis=1).mean()) / iod < 0.05
    assert gap <= ORIENTATION_CHECK
    assert points[a, 0] < points[b, 0]  # the image's left eye stays on the left


@pytest.mark.parametrize("beyond_edge", [False, True])
def test_a_weak_edge_box_on_nothing_is_not_searched_the_four_ways(landmarker, monkeypatch, beyond_edge):
    """A candidate on flat grey (no face: low trust, not surely upright) is tried the four ways up, unless the
    detector kept it only for reaching beyond the image's edge (Detection.beyond_edge) and its trust is under
    EDGE_FIRST_TRUST (passes)."""
    import facemark.landmarker as api
    from facemark.detection.core import Detection
    from facemark.pipeline.candidates import Candidate
    from facemark.pipeline.crops import square_crop_transform
    from facemark.pipeline.passes import EDGE_FIRST_TRUST

    grey = np.full((200, 200, 3), 128, np.uint8)
    box = (-30.0, 40.0, 70.0, 140.0)
    candidate = Candidate(Detection(box, 0.4, None, beyond_edge=beyond_edge),
                          square_crop_transform(box, landmarker.crop_size), box)
    searched = []
    real = api.four_ways_up

    def recorded(*args, **kwargs):
        searched.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "four_ways_up", recorded)
    (face,) = landmarker._landmarks(functools.partial(crop_image, grey), [candidate], (200, 200))
    assert searched == ([] if beyond_edge else [1])
    assert not face.upright
    if beyond_edge:  # its first pass's trust: what the rule looked at
        assert face.trust < EDGE_FIRST_TRUST
