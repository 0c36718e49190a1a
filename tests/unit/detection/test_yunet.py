"""YuNet on onnxruntime: the shipped file, the astronaut found with its eyes, the same face in scaled, padded,
mirrored and tiled images, nothing in face-free images, and the whole pipeline through it."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from facemark.detection import DETECTORS, create_detector
from facemark.detection.core import DEFAULT_DETECTOR, pad_image
from facemark.detection.nms import box_overlap
from facemark.detection.yunet import YuNetDetector
from facemark.detection.yunet.detector import (HERE, LEVEL_STEP, MAX_FACE, MODEL_FILE, SMALLEST_FACE, TILE_EDGE,
                                              _tiles)
from facemark.pipeline.crops import box_from_points

# hand-checked eye centres on examples/astronaut.png (pixel-centre; as in test_detection.py and test_blazeface.py)
ASTRONAUT_EYES = np.array([[203.0, 101.0], [247.0, 103.0]])
# sha256 of face_detection_yunet_2023mar.onnx as OpenCV's model zoo publishes it (its Git LFS pointer)
PUBLISHED_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


def iou(a, b) -> float:
    return float(box_overlap(np.asarray(a, float), np.asarray([b], float))[0])


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return create_detector("yunet")


@pytest.fixture(scope="module")
def astronaut_face(yunet, astronaut):
    faces = yunet.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


def test_registered_with_its_licence_and_the_published_file():
    assert "yunet" in DETECTORS and DEFAULT_DETECTOR == "blazeface"  # BlazeFace stays the default
    assert (HERE / "LICENSE-weights.md").is_file()
    assert hashlib.sha256((HERE / MODEL_FILE).read_bytes()).hexdigest() == PUBLISHED_SHA256


def test_threads_reach_the_session_and_change_nothing(astronaut, astronaut_face):
    (face,) = create_detector("yunet", threads=2).detect(astronaut)
    assert np.allclose(face.box, astronaut_face.box, atol=1e-3) and abs(face.score - astronaut_face.score) < 1e-4


def test_finds_the_astronaut_with_its_keypoints_in_image_order(astronaut_face):
    face = astronaut_face
    assert face.score > 0.9 and face.keypoints.shape == (5, 2) and not face.tiled
    # the eye on the image's left first; both within 4 px (4% of the face) of the hand-checked centres
    assert np.abs(face.keypoints[:2] - ASTRONAUT_EYES).max() < 4.0
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.keypoints
    assert lx < nx < rx and max(ly, ry) < ny < min(mly, mry)  # nose between and below the eyes, above the mouth
    assert mlx < nx < mrx  # mouth corners in the image's left-to-right order
    x0, y0, x1, y1 = face.box
    assert x0 < 203 < 247 < x1 and y0 < 101 < 150 < y1


def test_box_agrees_with_blazeface_and_maps_onto_the_points(yunet, astronaut, astronaut_face):
    """Through each detector's calibration (LANDMARK_BOX) both boxes land on the same face: on each other and on
    the box of the face88 points the default pipeline gives."""
    from facemark import Landmarker

    blazeface = create_detector("blazeface")
    (theirs,) = blazeface.detect(astronaut)
    ours = yunet.landmark_box(astronaut_face.box)
    assert iou(ours, blazeface.landmark_box(theirs.box)) > 0.85
    points_box = box_from_points(Landmarker().detect(astronaut)[0].points)
    assert iou(ours, points_box) > 0.85 > iou(astronaut_face.box, points_box)  # the calibration moves it closer


@pytest.mark.parametrize("scale", [0.5, 2.0, 3.0])
def test_finds_the_face_in_a_scaled_image(yunet, astronaut, astronaut_face, scale):
    """The image enlarged (1024 and 1536 px: shrunk to 640 for the network) or reduced: the same face, mapped
    back (pixel-centre convention: x_scaled = (x + 0.5) * scale - 0.5) within 8% of its size: the network's
    own answer moves by up to 7 px when the face is 1.25× or 0.5× as large (on 150 HELEN faces the mean shift
    between scales is within its standard error, and the internal shrink maps exactly as an external one)."""
    side = round(512 * scale)
    rgb = np.asarray(Image.fromarray(astronaut).resize((side, side), Image.Resampling.LANCZOS))
    faces = yunet.detect(rgb)
    assert len(faces) == 1
    back = (np.asarray(faces[0].box) + 0.5) / scale - 0.5
    assert np.abs(back - astronaut_face.box).max() < 0.08 * 113
    points = (faces[0].keypoints + 0.5) / scale - 0.5
    assert np.abs(points - astronaut_face.keypoints).max() < 0.08 * 113


@pytest.mark.parametrize("left, top, width, height", [(0, 0, 512, 512), (37, 211, 1003, 777), (300, 5, 817, 521)])
def test_finds_the_face_on_a_larger_canvas_of_any_size(yunet, astronaut, astronaut_face, left, top, width, height):
    """Pasted at an offset on grey canvases whose sides are not multiples of 32 (the network's input is padded
    to them; the larger ones are shrunk to 640 px): the same face, moved by the offset, within 8% of its size
    (as in the scaled images)."""
    canvas = np.full((height, width, 3), 128, np.uint8)
    canvas[top:top + 512, left:left + 512] = astronaut[:height - top, :width - left]
    faces = yunet.detect(canvas)
    assert len(faces) == 1
    tolerance = 0.08 * 113
    assert np.abs(np.asarray(faces[0].box) - [left, top, left, top] - astronaut_face.box).max() < tolerance
    assert np.abs(faces[0].keypoints - [left, top] - astronaut_face.keypoints).max() < tolerance


def test_detect_padded_is_detect_on_the_padded_image(yunet, astronaut):
    for pad in (0, 64, 128):
        virtual = yunet.detect_padded(astronaut, pad)
        real = yunet.detect(pad_image(astronaut, pad))
        assert len(virtual) == len(real) == 1
        assert np.abs(np.asarray(virtual[0].box) - real[0].box).max() < 1.0
        assert np.abs(virtual[0].keypoints - real[0].keypoints).max() < 1.0


def test_mirrored_image_gives_the_mirrored_face(yunet, astronaut, astronaut_face):
    """Pixel x of a W-wide image is pixel W - 1 - x of its mirror image (pixel-centre convention), and the two
    eyes (and mouth corners) trade places so the image-left one stays first. The box is within 2.5 px; the
    keypoints within 6 px (the mouth corners move most: the network is not exactly mirror-symmetric)."""
    (mirrored,) = yunet.detect(np.ascontiguousarray(astronaut[:, ::-1]))
    x0, y0, x1, y1 = astronaut_face.box
    assert np.abs(np.asarray(mirrored.box) - [511 - x1, y0, 511 - x0, y1]).max() < 2.5
    expected = astronaut_face.keypoints[[1, 0, 2, 4, 3]] * [-1, 1] + [511, 0]
    assert np.abs(mirrored.keypoints - expected).max() < 6.0


def _noise(size, seed):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _texture(size, seed):
    low = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(low).resize(size[::-1], Image.Resampling.BICUBIC))


@pytest.mark.parametrize("image", [
    _noise((16, 16), 0), _noise((16, 16), 1), _noise((37, 100), 2), _noise((128, 128), 3), _noise((480, 640), 4),
    np.zeros((480, 640, 3), np.uint8), np.full((720, 1280, 3), 255, np.uint8), np.full((64, 64, 3), 128, np.uint8),
    _texture((480, 640), 5), _texture((1080, 1920), 6), np.zeros((1, 1, 3), np.uint8),
], ids=["noise16a", "noise16b", "noise37x100", "noise128", "noise640", "black", "white", "grey64", "texture640",
        "texture1920", "one-pixel"])
def test_face_free_images_give_no_face(yunet, image):
    assert yunet.detect(image) == []


def test_levels_reach_min_face_in_bounded_steps():
    assert YuNetDetector().levels(640, 480) == [1.0]
    assert YuNetDetector().levels(320, 200) == [1.0]  # never enlarged without min_face
    assert YuNetDetector().levels(4032, 3024) == [640 / 4032]
    assert YuNetDetector(input_side=None).levels(4032, 3024) == [1.0]
    levels = YuNetDetector(min_face=8).levels(20000, 200)
    assert levels[0] == 640 / 20000 and levels[-1] == pytest.approx(SMALLEST_FACE / 8)
    assert all(1 < b / a <= LEVEL_STEP for a, b in zip(levels, levels[1:]))
    assert YuNetDetector(min_face=200).levels(1920, 1080) == [1 / 3]  # 1/3 already finds 200-px faces


def test_min_face_finds_a_face_too_small_for_the_whole_image_pass(yunet, astronaut):
    """A 1920×1080 frame shrunk to 640 px makes a 21-px face 7 px, under YuNet's reach; min_face=20 adds a pass
    at 32/20 scale, which finds it, marked as found only there (`tiled`)."""
    face = np.asarray(Image.fromarray(astronaut).resize((100, 100), Image.Resampling.LANCZOS))  # face box ~21 px
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    frame[500:600, 900:1000] = face
    assert yunet.detect(frame) == []
    found = YuNetDetector(min_face=20).detect(frame)
    assert len(found) == 1 and found[0].tiled
    x0, y0, x1, y1 = found[0].box
    cx, cy = 900 + 224 * 100 / 512, 500 + 115 * 100 / 512  # the sample's face centre
    assert abs((x0 + x1) / 2 - cx) < 3 and abs((y0 + y1) / 2 - cy) < 4 and 15 < y1 - y0 < 30


def test_tiles_find_each_face_once_even_across_tile_seams(astronaut):
    """A 4032×3024 photo with min_face=40: the finest pass (0.8 scale, a 3232×2432 canvas) runs in 2×2 overlapping
    tiles. Faces of ~60 px on each tile's edges (where one tile cuts them and its neighbour holds them whole), one
    where four tiles meet, one far from any: each found exactly once, and no other face."""
    face = np.asarray(Image.fromarray(astronaut).resize((290, 290), Image.Resampling.LANCZOS))
    frame = np.full((3024, 4032, 3), 128, np.uint8)
    detector = YuNetDetector(min_face=40)
    scale = detector.levels(4032, 3024)[-1]
    assert scale == 0.8
    (side_x, lefts), (side_y, tops) = _tiles(3232, MAX_FACE + 2 * TILE_EDGE), _tiles(2432, MAX_FACE + 2 * TILE_EDGE)
    assert len(lefts) == len(tops) == 2  # the pass is tiled
    seam_x = [(c + 0.5) / scale - 0.5 for c in (side_x, lefts[1])]  # the first tile's end, the second's start
    seam_y = [(c + 0.5) / scale - 0.5 for c in (side_y, tops[1])]
    centres = [(seam_x[0], 600), (seam_x[1], 1200), (700, seam_y[0]), (1300, seam_y[1]), (seam_x[0], seam_y[0]),
               (3600, 400)]
    for cx, cy in centres:  # the sample's face centre (224, 115) at 290/512 scale lands on (cx, cy)
        left, top = round(cx - 224 * 290 / 512), round(cy - 115 * 290 / 512)
        frame[top:top + 290, left:left + 290] = face
    found = detector.detect(frame)
    assert len(found) == len(centres)
    for cx, cy in centres:
        near = [d for d in found
                if abs((d.box[0] + d.box[2]) / 2 - cx) < 30 and abs((d.box[1] + d.box[3]) / 2 - cy) < 40]
        assert len(near) == 1


def test_landmarker_with_yunet_gives_the_defaults_points(astronaut):
    from facemark import Landmarker

    (default,) = Landmarker().detect(astronaut)
    (ours,) = Landmarker(detector="yunet").detect(astronaut)
    distance = np.linalg.norm(ours.points - default.points, axis=1)
    assert distance.mean() < 1.5 and distance.max() < 4.0  # the face's points box is ~93 px


def test_bad_input_and_options_raise(yunet, astronaut):
    with pytest.raises(ValueError, match="RGB uint8"):
        yunet.detect(astronaut[..., 0])
    with pytest.raises(ValueError, match="RGB uint8"):
        yunet.detect(astronaut.astype(np.float32))
    for kwargs in ({"min_score": 1.5}, {"min_face": 0}, {"min_face": float("nan")}, {"input_side": 16},
                   {"input_side": 640.5}, {"threads": 0}):
        with pytest.raises(ValueError):
            YuNetDetector(**kwargs)
    closed = YuNetDetector()
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.detect(astronaut)
