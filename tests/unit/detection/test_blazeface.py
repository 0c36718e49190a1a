"""BlazeFace converted to ONNX: the anchors, the shipped files against the conversion script, the detections
against MediaPipe's own on real images, small faces through tiles, bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facemark.detection import DETECTORS, create_detector
from facemark.detection.blazeface import MODELS, BlazeFaceDetector, anchor_centres
from facemark.detection.blazeface.detector import HERE
from facemark.detection.nms import nms, nms_groups
from facemark.images import load_image
from facemark.pipeline.crops import CropTransform, crop_image

REPO = Path(__file__).resolve().parents[3]
ASTRONAUT = REPO / "examples" / "astronaut.png"
# hand-checked eye centres on examples/astronaut.png (pixel-centre; as in test_detection.py)
ASTRONAUT_EYES = np.array([[203.0, 101.0], [247.0, 103.0]])


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return create_detector("blazeface")


def test_anchor_layout_is_mediapipes():
    """896 anchors for the short-range model (16×16×2 at stride 8, then 8×8×6 for the three stride-16 layers),
    2304 for the full-range one (48×48×1); each run of anchors walks rows, then columns, then anchors."""
    short, full = anchor_centres(MODELS["short"]), anchor_centres(MODELS["full"])
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    assert np.allclose(short[0], [4, 4]) and np.allclose(short[1], [4, 4]) and np.allclose(short[2], [12, 4])
    assert np.allclose(short[512:518], [8, 8]) and np.allclose(short[518], [24, 8])
    assert np.allclose(full[:2], [[2, 2], [6, 2]]) and np.allclose(full[48], [2, 6])
    assert np.allclose(full[-1], [190, 190])


def test_default_detector_is_blazeface():
    from facemark.detection.core import DEFAULT_DETECTOR

    assert DEFAULT_DETECTOR == "blazeface" and {"blazeface", "mtcnn", "mediapipe"} <= set(DETECTORS)
    assert (HERE / "LICENSE-weights.md").is_file()


def test_finds_the_astronaut_with_eyes_in_image_order(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.9 and face.keypoints.shape == (6, 2)
    # the eye on the image's left comes first; both within 6 px (5% of the face) of the hand-checked centres
    assert np.abs(face.keypoints[:2] - ASTRONAUT_EYES).max() < 6.0
    x0, y0, x1, y1 = face.box
    assert x0 < 203 < 247 < x1 and y0 < 101 < y1


@pytest.mark.parametrize("model", ["full", "short"])
def test_detections_match_mediapipe(model, astronaut, shared_data_or_none):
    """Boxes and the six keypoints agree with mp.solutions.face_detection on real images, within a few percent
    of the face's size: the networks are the same, the resampling of the input differs (Pillow's antialiased
    bilinear here, MediaPipe's plain bilinear warp), which moves the outputs by well under an input pixel."""
    mp = pytest.importorskip("mediapipe")
    images = [astronaut]
    if shared_data_or_none is not None:
        helen = sorted((shared_data_or_none / "300w" / "helen_train").glob("*.jpg"))[:24:2]
        images += [load_image(p) for p in helen]
    ours = create_detector("blazeface-" + model)
    theirs = mp.solutions.face_detection.FaceDetection(model_selection=int(model == "full"),
                                                       min_detection_confidence=0.5)
    errors, same_count = [], 0
    try:
        for rgb in images:
            height, width = rgb.shape[:2]
            found = ours.detect(rgb)
            reference = theirs.process(rgb).detections or []
            same_count += len(found) == len(reference)
            for d in reference:
                b = d.location_data.relative_bounding_box
                box = np.array([b.xmin * width, b.ymin * height, (b.xmin + b.width) * width,
                                (b.ymin + b.height) * height]) - 0.5
                points = np.array([[k.x * width, k.y * height] for k in d.location_data.relative_keypoints]) - 0.5
                size = box[2] - box[0]
                match = min(found, key=lambda f: np.abs(np.array(f.box) - box).sum(), default=None)
                if match is None:  # a face MediaPipe finds at the score threshold that we just miss
                    assert d.score[0] < 0.6
                    continue
                errors.append(max(np.abs(np.array(match.box) - box).max(),
                                  np.abs(match.keypoints - points).max()) / size)
                assert abs(match.score - d.score[0]) < 0.1
    finally:
        theirs.close()
    errors = np.array(errors)
    assert len(errors) >= len(images) * 0.9
    assert same_count >= 0.9 * len(images)
    assert errors.max() < 0.08, errors
    if len(errors) >= 5:  # a median says something over a set of faces (the shared ones); the sample alone: 0.066
        assert np.median(errors) < 0.025, errors


@pytest.fixture(scope="module")
def shared_data_or_none():
    path = Path(__file__).resolve().parents[4] / "shared" / "data"
    return path if (path / "300w").is_dir() else None


def test_shipped_models_are_what_the_script_writes(tmp_path):
    """Running scripts/convert_blazeface.py on the installed mediapipe wheel rewrites the shipped files byte
    for byte (so the committed weights are exactly MediaPipe's, converted by the script in the repository)."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("onnx")
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "convert_blazeface.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for name in ("blazeface_full.onnx", "blazeface_short.onnx"):
        assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), name


def test_min_face_tiles_find_a_small_face_in_a_big_image(astronaut):
    """A 30-px face (its landmark box) on a 2400×1600 canvas: too small for the whole-image pass, found with
    min_face (tiles), its box mapped back to the canvas."""
    eyes_box = (150.0, 60.0, 300.0, 200.0)  # about the astronaut's face, pixel-centre
    side = 2 * (eyes_box[2] - eyes_box[0])
    transform = CropTransform(cx=225, cy=130, side=side, size=60)  # the face becomes ~30 px
    patch = crop_image(astronaut, transform)
    canvas = np.full((1600, 2400, 3), 90, np.uint8)
    canvas[1200:1260, 1700:1760] = patch
    plain = create_detector("blazeface")
    assert plain.detect(canvas) == []
    tiled = create_detector("blazeface", min_face=25)
    assert len(tiled.windows(2400, 1600)) > 1
    faces = tiled.detect(canvas)
    assert len(faces) == 1
    cx, cy = (faces[0].box[0] + faces[0].box[2]) / 2, (faces[0].box[1] + faces[0].box[3]) / 2
    assert 1715 < cx < 1745 and 1210 < cy < 1250


def test_tiles_cover_the_image_with_overlap():
    detector = create_detector("blazeface-full", min_face=20)
    windows = detector.windows(1800, 1000)
    assert windows[0].side == 1800  # the whole image, letterboxed
    finest = [w for w in windows if abs(w.side - windows[-1].side) < 1e-6]
    lefts = sorted({w.left for w in finest})
    assert lefts[0] == 0 and lefts[-1] + finest[0].side == pytest.approx(1800)
    assert all(b - a <= finest[0].side - finest[0].max_face * finest[0].side / 192 + 1e-6
               for a, b in zip(lefts, lefts[1:]))


def test_nms_groups_keep_the_boxes_nms_keeps():
    rng = np.random.default_rng(1)
    corner = rng.uniform(0, 100, (200, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 30, (200, 2))], axis=1)
    scores = rng.uniform(size=200)
    groups = nms_groups(boxes, scores, 0.3)
    assert [g[0] for g in groups] == list(nms(boxes, scores, 0.3))
    assert sorted(np.concatenate(groups).tolist()) == list(range(200))  # every box in exactly one group


def test_bad_input_and_parameters_raise(detector):
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="unknown BlazeFace model"):
        BlazeFaceDetector(model="medium")
    with pytest.raises(ValueError, match="min_face"):
        BlazeFaceDetector(min_face=0)
    with pytest.raises(ValueError, match="min_score"):
        BlazeFaceDetector(min_score=2)
    with pytest.raises(ValueError, match="threads"):
        BlazeFaceDetector(threads=0)
    closed = create_detector("blazeface-short")
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.detect(np.zeros((10, 10, 3), np.uint8))


def test_tiny_and_blank_images(detector):
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []


def test_runs_without_torch(tmp_path):
    """The detector needs onnxruntime, numpy and Pillow only: it runs with torch made unimportable."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from facemark.detection import create_detector\n"
            "from facemark.images import load_image\n"
            f"faces = create_detector('blazeface').detect(load_image({str(ASTRONAUT)!r}))\n"
            "print(len(faces))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "1", run.stderr


def test_long_images_are_looked_at_along_their_length():
    """An image over LONG_IMAGE_ASPECT times longer than wide is seen as squares of its shorter side, overlapping
    by half, end to end (not letterboxed whole, where its faces would shrink below the smallest face)."""
    detector = create_detector("blazeface")
    for width, height in ((8000, 1400), (200, 20000)):
        windows = detector.windows(width, height)
        shorter, longer = min(width, height), max(width, height)
        assert all(w.side == shorter and w.max_face is None for w in windows)
        starts = sorted(w.left if width > height else w.top for w in windows)
        assert starts[0] == 0 and starts[-1] + shorter == pytest.approx(longer)
        assert all(b - a <= shorter / 2 + 1e-6 for a, b in zip(starts, starts[1:]))
    assert len(detector.windows(1900, 1000)) == 1  # under the aspect: one letterboxed look


def test_a_thin_strip_is_not_enlarged_into_hundreds_of_squares():
    """A long image is looked at along its length in squares never smaller than the network's input: a 3200×40
    strip takes a few dozen squares (each seen as it is), not one per 20 pixels enlarged fivefold."""
    detector = BlazeFaceDetector()
    windows = detector.windows(3200, 40)
    assert all(w.side >= detector.model.input_size for w in windows)
    assert len(windows) <= 2 * 3200 / detector.model.input_size + 1
    # a strip as thick as the input or more keeps squares of its own thickness
    assert {w.side for w in detector.windows(20000, 200)} == {200.0}


def test_the_border_shows_the_image_mirrored_then_black():
    """detect_padded's border (MIRRORED_BORDER): a window reaching past the image's left and top edges sees the
    image mirrored at them (reflect-101) within the border's width, black (-1) beyond; without a border, black."""
    from facemark.detection.blazeface.detector import Window, _network_input

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    window = Window(left=-20.0, top=-10.0, side=96.0)  # 96 input pixels: one per image pixel, no resampling
    mirrored = _network_input(rgb, window, 96, border=8)
    expected = rgb.astype(np.float32) * (2.0 / 255.0) - 1.0
    assert np.allclose(mirrored[10:74, 20:68], expected, atol=1e-6)  # the image itself
    assert np.allclose(mirrored[10:74, 12:20], expected[:, 8:0:-1], atol=1e-6)  # mirrored at the left edge
    assert np.allclose(mirrored[2:10, 20:68], expected[8:0:-1], atol=1e-6)  # ...and at the top edge
    assert np.allclose(mirrored[2:10, 12:20], expected[8:0:-1, 8:0:-1], atol=1e-6)  # the corner, both ways
    assert (mirrored[:2] == -1).all() and (mirrored[:, :12] == -1).all()  # beyond the border: black
    assert (mirrored[82:] == -1).all() and (mirrored[:, 76:] == -1).all()
    black = _network_input(rgb, window, 96)
    assert (black[10:74, 12:18] == -1).all() and (black[:8] == -1).all()


def _logit(score: float) -> float:
    return float(np.log(score / (1.0 - score)))


def test_a_weak_box_counts_only_beyond_the_edge(detector):
    """A box scoring under min_score but at least EDGE_SCORE_SHARE of it is kept only when it reaches beyond the
    image's edge by EDGE_REACH of its side (a face cut by the edge scores lower); anywhere else it is dropped."""
    from facemark.detection.blazeface.detector import EDGE_REACH, EDGE_SCORE_SHARE, Window

    weak = detector.min_score * (1 + EDGE_SCORE_SHARE) / 2  # between the two floors
    too_weak = detector.min_score * EDGE_SCORE_SHARE * 0.9
    # anchors (input pixels; one input pixel per image pixel) and the boxes they decode to (centre, side)
    anchors = np.array([[64.5, 64.5], [8.5, 64.5], [64.5, 4.5], [120.5, 64.5]])
    sides = np.array([30.0, 40.0, 40.0, 20.0])
    reg = np.zeros((4, 16), np.float32)
    reg[:, 2] = reg[:, 3] = sides
    logits = np.array([_logit(weak), _logit(weak), _logit(too_weak), _logit(weak)], np.float32)
    window = Window(left=0.0, top=0.0, side=128.0)
    boxes, _, scores = detector._decode(reg, logits, anchors, window, 128, (128, 128))
    # inside: dropped; 12 px of a 40-px box beyond the left edge: kept; too weak at the top edge: dropped; a
    # 20-px box reaching 0.5 px past the right edge (under EDGE_REACH of its side): dropped
    assert (8.0 - 20.0) / 40.0 < -EDGE_REACH and 0.5 / 20 < EDGE_REACH
    np.testing.assert_allclose(boxes, [[-12.0, 44.0, 28.0, 84.0]], atol=1e-4)
    np.testing.assert_allclose(scores, [weak], atol=1e-6)
    logits[0] = _logit(detector.min_score + 0.01)  # a sure box needs no edge
    boxes, _, _ = detector._decode(reg, logits, anchors, window, 128, (128, 128))
    assert len(boxes) == 2 and np.allclose(boxes[0], [49.0, 49.0, 79.0, 79.0], atol=1e-4)


def test_a_weak_box_never_moves_nor_doubles_a_sure_face(detector):
    """Weak edge boxes (under min_score) are merged apart from the sure ones: a sure face at the edge keeps the
    box its sure boxes give, a weak cluster around it is dropped, and a weak cluster elsewhere on the edge stays."""
    from facemark.detection.blazeface.detector import Window

    window = Window(left=0.0, top=0.0, side=128.0)
    keypoints = np.zeros((4, 6, 2))
    sure = np.array([[-10.0, 40.0, 30.0, 80.0], [-8.0, 42.0, 32.0, 82.0]])
    sure_scores = np.array([0.8, 0.7])
    alone = detector._merged([(sure, keypoints[:2], sure_scores, window)], 0, tiled=False, calibrated="full+short")
    weak = np.array([[-30.0, 20.0, 50.0, 100.0],  # around the sure face
                     [-15.0, 100.0, 15.0, 130.0]])  # a face of its own at the bottom-left corner
    found = [(np.vstack([sure, weak]), keypoints, np.concatenate([sure_scores, [0.45, 0.4]]), window)]
    merged = detector._merged(found, 0, tiled=False, calibrated="full+short")
    assert len(alone) == 1 and len(merged) == 2
    assert merged[0].box == alone[0].box and merged[0].score == 0.8
    np.testing.assert_allclose(merged[1].box, weak[1])
    assert merged[1].score == 0.4
