"""facemark.pipeline.candidates: detections mapped from the detector's (scaled, padded, turned) copy back to image
pixels, and the first crop framed on them."""

import math

import numpy as np
import pytest

from facemark.detection.core import Detection, FaceDetector
from facemark.pipeline.candidates import _unturn, find_candidates, keypoint_roll


class OneBox(FaceDetector):
    """A detector that finds one fixed box (with eye keypoints) in whatever it is given."""

    def __init__(self, box, keypoints=None):
        self.box, self.keypoints = box, keypoints
        self.seen = []

    def detect(self, image, look=None):
        self.seen.append(image.shape)
        return [Detection(self.box, 0.9, self.keypoints)]


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_unturn_inverts_rot90(k):
    height, width = 7, 11
    image = np.zeros((height, width), np.uint8)
    image[2, 8] = 1
    turned = np.rot90(image, k)
    y, x = np.argwhere(turned == 1)[0]
    assert np.allclose(_unturn(np.array([x, y], float), k, width, height), [8, 2])


def test_keypoint_roll():
    assert keypoint_roll(None) == 0.0
    assert keypoint_roll(np.array([[0.0, 0.0], [10.0, 0.0]])) == 0.0
    assert math.isclose(keypoint_roll(np.array([[0.0, 0.0], [10.0, 10.0]])), math.pi / 4)
    assert keypoint_roll(np.array([[np.nan, 0.0], [10.0, 10.0]])) == 0.0


def test_boxes_come_back_in_image_pixels():
    """The copy is the image scaled by 1/s inside a black border `pad` wide: a box in the padded copy's pixels
    maps to full = (q - pad + 0.5) * s - 0.5."""
    small = np.zeros((100, 150, 3), np.uint8)
    detector = OneBox((40.0, 30.0, 80.0, 70.0))
    (c,) = find_candidates(detector, small, s=2.0, pad=10, turns=(0,), crop_size=160, margin=1.25)
    assert detector.seen == [(120, 170, 3)]
    expected = [(v - 10 + 0.5) * 2.0 - 0.5 for v in (40.0, 30.0, 80.0, 70.0)]
    assert np.allclose(c.detection.box, expected)
    assert c.turn == 0 and c.transform.angle == 0.0
    assert math.isclose(c.transform.cx, (expected[0] + expected[2]) / 2)


def test_a_rolled_face_gets_a_turned_first_crop_only_past_the_threshold():
    small = np.zeros((200, 200, 3), np.uint8)
    level = OneBox((50.0, 50.0, 150.0, 150.0), np.array([[80.0, 90.0], [120.0, 100.0]]))  # ~14°
    steep = OneBox((50.0, 50.0, 150.0, 150.0), np.array([[80.0, 80.0], [110.0, 120.0]]))  # ~53°
    (a,) = find_candidates(level, small, 1.0, 0, (0,), 160, 1.25)
    (b,) = find_candidates(steep, small, 1.0, 0, (0,), 160, 1.25)
    assert a.transform.angle == 0.0
    assert math.isclose(b.transform.angle, math.atan2(40, 30))


def test_a_face_in_a_turned_copy_is_found_where_it_is(landmarker, astronaut):
    """The sample turned by a quarter: looked for in the copy turned back, the candidate is on the face, with the
    turn recorded and the crop turned by it."""
    upright = landmarker.detect(astronaut)[0].points
    turned_image = np.ascontiguousarray(np.rot90(astronaut, 1))  # counter-clockwise
    h, w = astronaut.shape[:2]
    found = find_candidates(landmarker.detector, turned_image, 1.0, 0, (3,), 160, 1.25)
    assert len(found) >= 1
    c = max(found, key=lambda f: f.detection.score)
    # the upright points, carried into the turned image: (x, y) -> (y, w - 1 - x)
    carried = np.stack([upright[:, 1], w - 1 - upright[:, 0]], axis=1)
    x0, y0, x1, y1 = c.landmark_box
    centre = carried.mean(axis=0)
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1
    assert c.turn == 3
    assert math.isclose(abs(c.transform.angle), math.pi / 2, abs_tol=math.radians(30))
