"""Face detectors on real images: MTCNN (built in) and MediaPipe (optional)."""

import sys

import numpy as np
import pytest
from PIL import Image

from facemark.labels.annotations import read_pts
from facemark.detection import Detection, FaceDetector, create_detector
from facemark.detection.mtcnn import MTCNNDetector
from facemark.detection.nms import box_overlap, nms
from facemark.images import load_image

# Hand-checked on examples/astronaut.png (pixel-centre): eye centres and mouth centre, and a region the
# whole face (hair line to chin, cheek to cheek) lies in.
ASTRONAUT_EYES_MOUTH = np.array([[203.0, 101.0], [247.0, 103.0], [223.0, 141.0]])
ASTRONAUT_FACE_REGION = (140.0, 30.0, 310.0, 240.0)
# AFW crops with a single annotated face (no "_2" file next to them)
AFW_SINGLE = ["1051618982_1", "1295311477_1", "1634816_1", "199759840_1", "2030653815_1", "2201628776_1",
              "2437602091_1", "2844520516_1"]


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNDetector:
    return create_detector("mtcnn")


def contains(box, points) -> np.ndarray:
    points = np.asarray(points)
    return ((points[:, 0] >= box[0]) & (points[:, 0] <= box[2])
            & (points[:, 1] >= box[1]) & (points[:, 1] <= box[3]))


def within(inner, outer) -> bool:
    return inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


# ---------------------------------------------------------------------------------------------- MTCNN


def test_mtcnn_finds_the_astronaut(mtcnn, astronaut):
    faces = mtcnn.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Detection) and face.score > 0.9
    assert contains(face.box, ASTRONAUT_EYES_MOUTH).all()
    assert within(face.box, ASTRONAUT_FACE_REGION)
    # keypoints: eyes, nose, mouth corners, image-left first; eyes within 2 px of the hand-checked ones (measured
    # 0.98 px; the hand-checked points are whole pixels)
    assert face.keypoints.shape == (5, 2)
    assert np.abs(face.keypoints[:2] - ASTRONAUT_EYES_MOUTH[:2]).max() < 2.0
    left_eye, right_eye, nose, mouth_left, mouth_right = face.keypoints
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert left_eye[1] < nose[1] < mouth_left[1]


def test_mtcnn_maps_boxes_back_from_a_shrunk_image(mtcnn, astronaut):
    # 1024 px > max_side 640: detection runs on a shrunk copy, results come back in full-resolution pixels
    big = np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.Resampling.BICUBIC))
    small_box = np.array(mtcnn.detect(astronaut)[0].box)
    faces = mtcnn.detect(big)
    assert len(faces) == 1
    expected = (small_box + 0.5) * 2 - 0.5  # pixel-centre convention: edges scale, centres shift
    assert np.abs(np.array(faces[0].box) - expected).max() < 0.05 * (expected[2] - expected[0])
    assert contains(faces[0].box, (ASTRONAUT_EYES_MOUTH + 0.5) * 2 - 0.5).all()


def test_mtcnn_finds_several_faces(mtcnn, astronaut):
    face = Image.fromarray(astronaut).crop((130, 20, 320, 230))  # the head with some hair and collar
    canvas = Image.new("RGB", (1200, 800), (128, 128, 128))
    placed = []  # regions the pasted heads cover
    for (x, y), width in zip([(60, 80), (420, 350), (800, 120)], [130, 200, 300]):
        height = round(width * face.height / face.width)
        canvas.paste(face.resize((width, height), Image.Resampling.LANCZOS), (x, y))
        placed.append((x, y, x + width, y + height))
    faces = mtcnn.detect(np.asarray(canvas))
    assert len(faces) == 3
    assert all(f.score > 0.9 for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    for region in placed:
        centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in faces]
        assert contains(region, centres).sum() == 1  # exactly one detection per head


@pytest.mark.parametrize("kind", ["uniform", "noise", "gradient"])
def test_mtcnn_finds_nothing_without_a_face(mtcnn, kind):
    rng = np.random.default_rng(0)
    image = {
        "uniform": np.full((480, 640, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        "gradient": np.broadcast_to(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (480, 640, 3)),
    }[kind]
    assert mtcnn.detect(np.ascontiguousarray(image)) == []


def test_mtcnn_handles_images_too_small_for_a_face(mtcnn):
    assert mtcnn.detect(np.full((8, 30, 3), 200, np.uint8)) == []


def test_mtcnn_rejects_what_is_not_an_rgb_uint8_image(mtcnn, astronaut):
    with pytest.raises(ValueError, match="RGB uint8"):
        mtcnn.detect(astronaut.astype(np.float32))
    with pytest.raises(ValueError, match="RGB uint8"):
        mtcnn.detect(astronaut[:, :, 0])


def test_mtcnn_options_are_checked():
    with pytest.raises(ValueError, match="thresholds"):
        MTCNNDetector(thresholds=(0.6, 0.7))
    with pytest.raises(ValueError, match="scale_factor"):
        MTCNNDetector(scale_factor=1.2)
    assert create_detector("mtcnn", min_face_size=20, max_side=None).min_face_size == 20


@pytest.mark.shared
@pytest.mark.parametrize("name", AFW_SINGLE)
def test_mtcnn_box_holds_the_annotated_face(shared_data, mtcnn, name):
    folder = shared_data / "300w" / "afw"
    points = read_pts(folder / f"{name}.pts")
    faces = mtcnn.detect(load_image(folder / f"{name}.jpg"))
    assert faces, f"no face found in {name}"
    inner = points[17:68]  # eyebrows, eyes, nose, mouth (the jaw line is wider than MTCNN's box)
    assert contains(faces[0].box, inner).mean() >= 0.9


def test_landmark_box_moves_the_box_onto_the_points(mtcnn, astronaut):
    box = mtcnn.detect(astronaut)[0].box
    x0, y0, x1, y1 = mtcnn.landmark_box(box)
    # the points' box starts at the eyebrows (below MTCNN's top edge) and spans as wide a face
    assert y0 > box[1] and abs((x1 - x0) - (box[2] - box[0])) < 0.05 * (box[2] - box[0])
    assert contains((x0, y0, x1, y1), ASTRONAUT_EYES_MOUTH).all()


# ---------------------------------------------------------------------------------------------- NMS


def test_nms_keeps_the_best_of_each_cluster():
    boxes = np.array([
        [0, 0, 10, 10],  # cluster A
        [1, 1, 11, 11],  # A, IoU 81/119 = 0.68 with the first
        [50, 50, 60, 60],  # cluster B
        [52, 50, 62, 60],  # B, IoU 80/120 = 0.67
        [100, 0, 110, 10],  # alone
    ], dtype=float)
    scores = np.array([0.8, 0.9, 0.7, 0.95, 0.1])
    assert nms(boxes, scores, 0.5).tolist() == [3, 1, 4]
    assert nms(boxes, scores, 0.7).tolist() == [3, 1, 0, 2, 4]  # nothing overlaps that much
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_nms_min_mode_removes_a_box_nested_in_another():
    boxes = np.array([[0, 0, 100, 100], [40, 40, 60, 60]], dtype=float)  # IoU 0.04, but fully inside
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 0.7).tolist() == [0, 1]
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [0]
    assert box_overlap(boxes[0], boxes[1:], "min") == pytest.approx([1.0])
    assert box_overlap(boxes[0], boxes[1:]) == pytest.approx([400 / 10000])


# ---------------------------------------------------------------------------------------------- registry


def test_unknown_detector_name_raises():
    with pytest.raises(ValueError, match="unknown face detector 'sfd'.*mtcnn.*mediapipe"):
        create_detector("sfd")


def test_mediapipe_finds_the_astronaut(astronaut):
    pytest.importorskip("mediapipe")
    with create_detector("mediapipe") as detector:
        assert isinstance(detector, FaceDetector)
        faces = detector.detect(astronaut)
    assert len(faces) == 1
    assert faces[0].score > 0.5 and faces[0].keypoints.shape == (6, 2)
    assert contains(faces[0].box, faces[0].keypoints[:4]).all()  # eyes, nose, mouth inside the box
    assert contains(faces[0].box, ASTRONAUT_EYES_MOUTH).all()
    assert within(faces[0].box, ASTRONAUT_FACE_REGION)


def test_mediapipe_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` fail
    with pytest.raises(RuntimeError, match=r"pip install 'facemark\[label\]'"):
        create_detector("mediapipe")


@pytest.mark.parametrize("mode", ["union", "min"])
def test_nms_matrix_pass_equals_the_box_by_box_pass(mode, monkeypatch):
    """Both NMS paths (overlap matrix for up to PAIRWISE_LIMIT boxes, one overlap row per kept box beyond)
    keep the same boxes in the same order, degenerate and tied boxes included."""
    from facemark.detection import nms as nms_module

    rng = np.random.default_rng(7)
    for trial in range(20):
        n = int(rng.integers(0, 300))
        xy = rng.uniform(0, 200, size=(n, 2))
        wh = rng.uniform(0, 60, size=(n, 2)) * (rng.random((n, 1)) > 0.05)  # a few zero-size boxes
        boxes = np.concatenate([xy, xy + wh], axis=1)
        scores = np.round(rng.random(n), 2)  # ties
        threshold = float(rng.uniform(0.2, 0.8))
        fast = nms_module.nms(boxes, scores, threshold, mode)
        monkeypatch.setattr(nms_module, "PAIRWISE_LIMIT", -1)
        slow = nms_module.nms(boxes, scores, threshold, mode)
        monkeypatch.undo()
        np.testing.assert_array_equal(fast, slow)


def test_mtcnn_onnx_files_are_the_torch_weights():
    """The shipped pnet/rnet/onet.onnx (the runtime's MTCNN) compute what the torch networks with the converted
    weights compute (scripts/export_mtcnn_onnx.py), on random inputs of each network's size."""
    torch = pytest.importorskip("torch")
    import onnxruntime

    from facemark.detection.mtcnn.detector import HERE, NETWORKS
    from facemark.train.models.mtcnn_nets import load_networks

    generator = torch.Generator().manual_seed(0)
    for name, net, shape in zip(NETWORKS, load_networks(), [(2, 3, 61, 47), (5, 3, 24, 24), (5, 3, 48, 48)]):
        x = torch.rand(*shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = [t.numpy() for t in net(x)]
        session = onnxruntime.InferenceSession(str(HERE / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {"image": x.numpy()})
        assert [g.shape for g in got] == [e.shape for e in expected], name
        assert max(float(np.abs(g - e).max()) for g, e in zip(got, expected)) < 1e-4, name
