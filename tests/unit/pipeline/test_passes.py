"""facemark.pipeline.passes: the landmark network's first batch, the refining pass for poorly framed crops, and the
trust of the result (the sample image; its reference points are the Landmarker's own answer)."""

import dataclasses
import functools
import math

import numpy as np
import pytest

from facemark.pipeline.crops import crop_image
from facemark.pipeline.passes import LandmarkPasses


@pytest.fixture(scope="module")
def reference(landmarker, astronaut):
    faces = landmarker.detect(astronaut)
    assert len(faces) == 1
    return faces[0].points


def mean_distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1).mean())


def test_no_crops_no_work(landmarker, astronaut):
    result = landmarker.passes.run(functools.partial(crop_image, astronaut), [])
    assert result.points == [] and result.trusts == [] and result.batches == []


def test_a_well_framed_crop_is_final_after_one_batch(landmarker, astronaut, reference):
    passes = landmarker.passes
    framed = passes.framing(reference, 0.0)
    result = passes.run(functools.partial(crop_image, astronaut), [framed])
    assert result.batches == [1]
    assert result.trusts[0] > 0.5
    assert mean_distance(result.points[0], reference) < 2.0


def test_a_poor_framing_is_refined_back_to_the_face(landmarker, astronaut, reference):
    passes = landmarker.passes
    good = passes.framing(reference, 0.0)
    poor = dataclasses.replace(good, cx=good.cx + 0.2 * good.side, cy=good.cy - 0.1 * good.side, side=good.side * 1.3,
                               angle=math.radians(15))
    crop = functools.partial(crop_image, astronaut)
    first = passes.predict(crop, [poor])[0]
    result = passes.run(crop, [poor])
    assert result.batches[0] >= 2
    assert mean_distance(result.points[0], reference) < 2.5
    assert mean_distance(result.points[0], reference) < mean_distance(first, reference)


def test_without_refine_the_first_batch_is_final(landmarker, astronaut, reference):
    passes = LandmarkPasses(landmarker.network, refine=False)
    good = passes.framing(reference, 0.0)
    poor = dataclasses.replace(good, cx=good.cx + 0.2 * good.side, side=good.side * 1.3)
    result = passes.run(functools.partial(crop_image, astronaut), [good, poor])
    assert result.batches == [1, 1]
    # the poorly framed face is trusted less than the well framed one
    assert result.trusts[1] < result.trusts[0]


def test_trust_of_given_points(landmarker, astronaut, reference):
    crop = functools.partial(crop_image, astronaut)
    right, = landmarker.passes.trust_scores(crop, [reference])
    shifted = reference + np.array([0.35, 0.0]) * (reference[:, 0].max() - reference[:, 0].min())
    wrong, = landmarker.passes.trust_scores(crop, [shifted])
    assert 0.0 <= wrong < right <= 1.0
    assert right > 0.5
