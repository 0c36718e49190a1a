"""facemark.face.Face: regions by name, points outside the image, and the answers its points give."""

import numpy as np

from facemark.face import Face
from facemark.layouts import FACE88


def make_face(points, image_size=(100, 80)) -> Face:
    return Face(box=(0.0, 0.0, 10.0, 10.0), score=0.9, points=np.asarray(points, float), scheme=FACE88,
                image_size=image_size)


def test_region_by_name_follows_the_layout():
    points = np.stack([np.arange(88, dtype=float), np.zeros(88)], axis=1)
    face = make_face(points)
    left_eye = face.region("left_eye")
    assert left_eye.shape == (8, 2)
    assert left_eye[:, 0].tolist() == list(range(21, 29))


def test_outside_uses_the_pixel_edges():
    points = np.full((88, 2), 10.0)
    points[0] = (-0.5, 0.0)     # on the left edge: inside
    points[1] = (-0.51, 0.0)    # just past it
    points[2] = (99.5, 79.5)    # the bottom-right pixel's far corner: inside
    points[3] = (10.0, 79.6)
    points[4] = (np.nan, 1.0)   # unknown: not inside
    outside = make_face(points).outside
    assert outside[:5].tolist() == [False, True, False, True, True]
    assert not outside[5:].any()
    assert not make_face(points, image_size=None).outside.any()


def test_openness_of_the_sample(landmarker, astronaut):
    face = landmarker.detect(astronaut)[0]
    left, right = face.eye_openness
    assert 0.15 < left < 0.5 and 0.15 < right < 0.5  # the astronaut's eyes are open
    assert 0.0 <= face.mouth_openness < 0.3  # a closed-lip smile
