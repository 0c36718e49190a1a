"""Faces tilted in the image plane: turned crops with an exact inverse, roll from the points, and whole faces
turned by known angles coming back with their points turned the same way (issue 12, part 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from facemark.landmarker import Landmarker
from facemark.pipeline.crops import (CropTransform, crop_image, points_crop_transform, roll_angle,
                                    square_crop_transform)
from facemark.layouts import FACE88

from locations import ASTRONAUT

CANVAS = 800  # the 512-px sample in the middle of a grey canvas, so every turn keeps the face inside


@pytest.fixture(scope="module")
def landmarker():
    return Landmarker(threads=1)


@pytest.fixture(scope="module")
def canvas() -> Image.Image:
    image = Image.new("RGB", (CANVAS, CANVAS), (90, 90, 90))
    image.paste(Image.open(ASTRONAUT).convert("RGB"), ((CANVAS - 512) // 2, (CANVAS - 512) // 2))
    return image


def _turn_points(points: np.ndarray, degrees: float) -> np.ndarray:
    """Where points go when the canvas is turned counter-clockwise on screen by `degrees` about its centre
    (Pillow's rotate: the centre is (W/2, H/2) in edge coordinates, (W - 1)/2 in pixel-centre ones)."""
    a = math.radians(-degrees)  # counter-clockwise on screen is a negative angle with y down
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c = (CANVAS - 1) / 2
    return (points - c) @ rot.T + c


@pytest.mark.parametrize("angle", [0.3, -0.7, math.pi / 4, math.pi / 2, 2.5, math.pi])
@pytest.mark.parametrize("box", [(40.0, 50.0, 140.0, 170.0), (-60.0, -30.0, 80.0, 90.0), (10.3, 20.7, 11.1, 21.2)])
def test_turned_crop_round_trip(angle, box):
    rng = np.random.default_rng(2)
    t = square_crop_transform(box, size=128, margin=1.3, angle=angle)
    pts = rng.uniform(-300, 300, size=(88, 2))
    assert np.abs(t.to_image(t.to_crop(pts)) - pts).max() < 1e-3
    assert np.abs(t.to_crop(t.to_image(pts)) - pts).max() < 1e-3


def test_a_turned_crop_is_the_plain_one_turned():
    """Turning by a quarter turn is exactly a rotation of the crop's pixel grid (up to resampling)."""
    t = CropTransform(cx=50.0, cy=60.0, side=100.0, size=160, angle=math.pi / 2)
    # the crop's x axis points down the image: crop (159.5, 79.5), its right edge's middle, is image (50, 110)
    assert np.allclose(t.to_image(np.array([[159.5, 79.5]])), [[50.0, 110.0]])
    assert np.allclose(t.to_crop(np.array([[50.0, 60.0]])), [[79.5, 79.5]])  # the centre stays the centre


@pytest.mark.parametrize("angle", [0.0, 0.4, math.pi / 4, -1.2, math.pi / 2, 3.0])
@pytest.mark.parametrize("side,size", [(120.0, 160), (200.0, 64), (61.3, 96)])
def test_turned_crop_pixels_follow_the_transform(angle, side, size):
    """Bright dots in the image appear in the turned crop where `to_crop` says, to a tenth of a crop pixel
    (the same as the plain crop), shrunk, enlarged and across the image's border alike."""
    image = np.zeros((300, 300, 3), np.uint8)
    dots = np.array([[158.0, 150.0], [140.0, 132.0], [120.0, 130.0], [170.0, 100.0], [150.0, 190.0], [10.0, 12.0]])
    for x, y in dots.astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 255
    t = CropTransform(150.2, 140.7, side, size, angle)
    crop = crop_image(image, t)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    checked = 0
    for q in t.to_crop(dots):
        r = max(3, int(3 * t.scale) + 2)
        x0, y0 = int(round(q[0])) - r, int(round(q[1])) - r
        if x0 < 0 or y0 < 0 or x0 + 2 * r >= size or y0 + 2 * r >= size:
            continue  # this dot is outside (or at the edge of) this crop
        w = crop[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1, 0].astype(float)
        ys, xs = np.mgrid[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1]
        found = np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum()
        assert np.abs(found - q).max() < 0.15
        checked += 1
    assert checked >= 2


def test_turned_crop_pads_with_black_and_array_and_pil_agree():
    rgb = np.random.default_rng(3).integers(1, 256, size=(90, 120, 3), dtype=np.uint8)
    t = CropTransform(cx=5.0, cy=80.0, side=60.0, size=32, angle=0.6)
    crop = crop_image(rgb, t)
    np.testing.assert_array_equal(crop, crop_image(Image.fromarray(rgb), t))
    assert (crop.max(axis=2) == 0).any() and (crop.min(axis=2) > 0).any()  # part outside, part inside


def test_points_crop_transform_frames_a_turned_face_as_the_upright_one():
    rng = np.random.default_rng(4)
    upright = rng.uniform(100, 200, size=(88, 2))
    plain = points_crop_transform(upright, 128, 1.25)
    a = 0.8
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([300.0, 250.0])
    turned = (upright - centre) @ rot.T + centre
    t = points_crop_transform(turned, 128, 1.25, angle=a)
    assert t.side == pytest.approx(plain.side) and t.angle == a
    # the same points in the same crop places: the network sees the same framing
    assert np.abs(t.to_crop(turned) - plain.to_crop(upright)).max() < 1e-6


@pytest.mark.parametrize("degrees", [0, 30, -45, 90, 180])
def test_roll_angle_of_a_turned_shape(degrees):
    left, right = FACE88.region_slice("left_eye"), FACE88.region_slice("right_eye")
    shape = np.zeros((88, 2))
    shape[left] = [100.0, 100.0]
    shape[right] = [160.0, 100.0]
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    turned = shape @ rot.T
    assert math.remainder(roll_angle(turned, FACE88) - a, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)
    shape[left] = np.nan
    assert roll_angle(shape, FACE88) == 0.0  # nothing to measure: upright


@pytest.mark.parametrize("degrees", [0, 30, 45, 60, 90, 180, -30, -60, -90])
def test_a_turned_face_comes_back_with_its_points_turned(landmarker, canvas, degrees):
    """The sample turned by a known angle: its best-scored face has the upright prediction's points turned the
    same way (mean distance under 6% of the outer-eye-corner distance; before turned crops, 45° gave ~30%; since
    issue 21's passes 90° gives 5.2%: its four ways up converge on two framings of the right way).
    (BlazeFace also scores the turned helmet as a larger face, 0.54-0.68 against 0.73-0.78: not asserted.)"""
    upright = landmarker.detect(np.asarray(canvas))
    assert len(upright) == 1
    reference = upright[0].points
    faces = landmarker.detect(np.asarray(canvas.rotate(degrees, Image.Resampling.BICUBIC)))
    assert len(faces) >= 1
    best = faces[0]
    expected = _turn_points(reference, degrees)
    iod = float(FACE88.inter_ocular_distance(reference))
    error = np.linalg.norm(best.points - expected, axis=1).mean() / iod
    assert error < 0.06, error
    # the box is the detector's, mapped into this image: it holds the turned face's points
    x0, y0, x1, y1 = best.box
    centre = expected.mean(axis=0)
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1


@pytest.mark.parametrize("degrees", [45, 90])
def test_turned_faces_with_mtcnn_too(canvas, degrees):
    """The same with MTCNN, whose eye keypoints are confidently wrong on faces at 90° (the mirror check turns the
    crop the right way up)."""
    mtcnn = Landmarker(detector="mtcnn", threads=1)
    reference = mtcnn.detect(np.asarray(canvas))[0].points
    faces = mtcnn.detect(np.asarray(canvas.rotate(degrees, Image.Resampling.BICUBIC)))
    expected = _turn_points(reference, degrees)
    error = np.linalg.norm(faces[0].points - expected, axis=1).mean() / float(FACE88.inter_ocular_distance(reference))
    assert error < 0.05, error
