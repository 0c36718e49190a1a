"""What the pipeline needs from a detector is declared on FaceDetector, and a Look passed to `detect` is the only
thing that changes what one looks for: no detector is steered by attributes written on it per call."""

import copy

import numpy as np
import pytest

from facemark.detection import create_detector
from facemark.detection.core import DETECTORS, Detection, FaceDetector, Look

BUILT_IN = [name for name in DETECTORS if name != "mediapipe"]


def state(detector: FaceDetector) -> dict:
    """The detector's plain attributes (numbers, strings, tuples, Looks): what a per-call write would change."""
    return {k: copy.copy(v) for k, v in vars(detector).items()
            if isinstance(v, int | float | str | tuple | Look | type(None))}


@pytest.mark.parametrize("name", BUILT_IN)
def test_declared_capabilities(name):
    detector = create_detector(name)
    assert isinstance(detector, FaceDetector)
    assert len(detector.LANDMARK_BOX) == 4 and all(isinstance(v, float) for v in detector.LANDMARK_BOX)
    assert isinstance(detector.look, Look)
    assert detector.LONG_ASPECT is None or detector.LONG_ASPECT > 1
    fixed = detector.fixed_min_face
    # a detector either takes the smallest face per call or has a fixed one the pipeline scales for, never both
    assert not (detector.TAKES_MIN_FACE and fixed is not None)
    assert fixed is None or fixed > 0


@pytest.mark.parametrize("name", BUILT_IN)
def test_detect_leaves_the_detector_as_it_was(name, astronaut):
    detector = create_detector(name, whole_image=True)
    before = state(detector)
    plain = detector.detect(astronaut)
    detector.detect(astronaut, Look(min_face=60.0))
    detector.detect_padded(astronaut, 32, Look(min_face=80.0))
    assert state(detector) == before
    again = detector.detect(astronaut)
    assert [d.box for d in again] == [d.box for d in plain]


@pytest.mark.parametrize("name", BUILT_IN)
def test_detections_sorted_with_boxes_in_the_image(name, astronaut):
    found = create_detector(name).detect(astronaut)
    assert found and all(isinstance(d, Detection) for d in found)
    scores = [d.score for d in found]
    assert scores == sorted(scores, reverse=True)
    h, w = astronaut.shape[:2]
    x0, y0, x1, y1 = found[0].box
    assert -w * 0.1 < x0 < x1 < w * 1.1 and -h * 0.1 < y0 < y1 < h * 1.1


def test_a_finer_look_finds_smaller_faces_only_where_taken(astronaut):
    """BlazeFace takes a min_face: the sample shrunk to 60 px (a face of ~30 px, 1/60 of an 1800-px frame) is
    beyond its whole-image look and found in the tiles a Look(min_face=24) asks for."""
    from PIL import Image

    small = np.asarray(Image.fromarray(astronaut).resize((60, 60), Image.BILINEAR))
    canvas = np.full((1800, 1800, 3), 120, np.uint8)
    canvas[900:960, 1300:1360] = small
    detector = create_detector("blazeface", whole_image=True)
    assert detector.TAKES_MIN_FACE
    assert detector.detect(canvas) == []
    found = detector.detect(canvas, Look(min_face=24.0))
    assert len(found) == 1 and found[0].tiled
    x0, y0, x1, y1 = found[0].box
    assert 1270 < (x0 + x1) / 2 < 1360 and 900 < (y0 + y1) / 2 < 970


def test_look_is_frozen():
    with pytest.raises(AttributeError):
        Look(min_face=20.0).min_face = 10.0


def test_a_crowd_look_adds_the_small_faces_once(astronaut):
    """Look(crowd=True): BlazeFace's whole-image look keeps the near face; the small face behind comes from the
    cheaper crowd pass, marked as not from the whole-image look; the near face is not found twice."""
    from PIL import Image

    canvas = np.full((1800, 1800, 3), 120, np.uint8)
    canvas[200:1000, 100:900] = np.asarray(Image.fromarray(astronaut).resize((800, 800), Image.BILINEAR))
    canvas[900:960, 1300:1360] = np.asarray(Image.fromarray(astronaut).resize((60, 60), Image.BILINEAR))
    detector = create_detector("blazeface", whole_image=True)
    assert len(detector.detect(canvas)) == 1
    found = detector.detect(canvas, Look(min_face=24.0, crowd=True))
    assert len(found) == 2
    near = [d for d in found if not d.tiled]
    small = [d for d in found if d.tiled]
    assert len(near) == 1 and len(small) == 1
    x0, y0, x1, y1 = small[0].box
    assert 1270 < (x0 + x1) / 2 < 1360 and 900 < (y0 + y1) / 2 < 970
    assert near[0].box == detector.detect(canvas)[0].box
