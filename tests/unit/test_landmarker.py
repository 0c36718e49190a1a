"""The public API and `facemark predict` on the bundled sample image and generated files."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemark import cli
from facemark.landmarker import Face, Landmarker
from facemark.detection.core import Detection, FaceDetector, create_detector
from facemark.images import load_image

ASTRONAUT = Path(__file__).resolve().parents[2] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def landmarker():
    return Landmarker(threads=1)


def test_detect_astronaut_gives_88_points_on_the_face(landmarker):
    faces = landmarker.detect(ASTRONAUT)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Face) and face.score > 0.9
    assert face.points.shape == (88, 2) and face.points.dtype == np.float64
    x0, y0, x1, y1 = face.box
    size = x1 - x0
    # every point near the detector's box (the jaw may stick out a little)
    assert (face.points[:, 0] > x0 - 0.3 * size).all() and (face.points[:, 0] < x1 + 0.3 * size).all()
    assert (face.points[:, 1] > y0 - 0.3 * size).all() and (face.points[:, 1] < y1 + 0.3 * size).all()
    left, right = face.region("left_eye"), face.region("right_eye")
    assert left.shape == (8, 2) and left[:, 0].mean() < right[:, 0].mean()
    assert face.region("mouth")[:, 1].mean() > face.region("nose")[:, 1].mean() > left[:, 1].mean()


def test_path_array_pil_and_bgr_inputs_agree(landmarker):
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    by_path = landmarker.detect(ASTRONAUT)[0].points
    assert np.allclose(landmarker.detect(rgb)[0].points, by_path, atol=1e-3)
    assert np.allclose(landmarker.detect(Image.fromarray(rgb))[0].points, by_path, atol=1e-3)
    assert np.allclose(landmarker.detect(rgb[..., ::-1], bgr=True)[0].points, by_path, atol=1e-3)


def test_several_faces_in_one_image(landmarker):
    face = Image.open(ASTRONAUT).convert("RGB").crop((130, 20, 330, 240))
    canvas = Image.new("RGB", (900, 320), (128, 128, 128))
    for k in range(3):
        canvas.paste(face, (20 + 300 * k, 50))
    faces = landmarker.detect(np.asarray(canvas))
    assert len(faces) == 3
    centres = sorted(f.points[:, 0].mean() for f in faces)
    assert all(b - a > 200 for a, b in zip(centres, centres[1:]))


def test_landmarks_for_boxes_batches_many_faces(landmarker):
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    face = landmarker.detect(rgb)[0]
    box = landmarker.detector.landmark_box(face.box)
    many = landmarker.landmarks_for_boxes(rgb, [box] * 5)
    assert len(many) == 5 and all(np.allclose(p, many[0]) for p in many)
    assert landmarker.landmarks_for_boxes(rgb, []) == []


def test_no_face_gives_an_empty_list(landmarker):
    assert landmarker.detect(np.full((200, 300, 3), 90, np.uint8)) == []


def test_predict_cli_json_lines_every_input_once(tmp_path, capsys):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.open(ASTRONAUT).save(folder / "sub" / "astronaut.jpg")
    Image.new("RGB", (64, 48), (10, 200, 30)).save(folder / "blank.png")
    (folder / "broken.jpg").write_text("not an image")
    out_json = tmp_path / "points.jsonl"
    code = cli.main(["predict", str(folder), "--json", str(out_json), "--draw", "--out", str(tmp_path / "draw"),
                     "--quiet", "--threads", "1"])
    assert code == 1  # one input failed
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert sorted(Path(r["image"]).name for r in records) == ["astronaut.jpg", "blank.png", "broken.jpg"]
    by_name = {Path(r["image"]).name: r for r in records}
    good = by_name["astronaut.jpg"]
    assert good["error"] is None and (good["width"], good["height"]) == (512, 512)
    assert len(good["faces"]) == 1 and len(good["faces"][0]["points"]) == 88
    assert set(good["faces"][0]) == {"box", "score", "points", "trust"}  # trust: facemark.pipeline.trust
    assert 0 <= good["faces"][0]["trust"] <= 1
    assert by_name["blank.png"]["faces"] == [] and by_name["blank.png"]["error"] is None
    assert by_name["broken.jpg"]["faces"] == [] and "not an image" in by_name["broken.jpg"]["error"]
    assert (tmp_path / "draw" / "sub" / "astronaut_landmarks.png").exists()  # the input's subfolder, mirrored
    assert "broken.jpg" in capsys.readouterr().err


def test_predict_cli_bad_inputs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["predict", str(tmp_path / "empty"), "--quiet"]) == 1
    assert "no images found" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "missing.jpg"), "--quiet"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["predict", "--bogus"]) == 2
    assert cli.main(["predict", str(ASTRONAUT), "--draw", "--quiet"]) == 2  # --draw without --out


class LooseBoxToo(FaceDetector):
    """BlazeFace's faces, and a loose box `k` times the best one's side around it (a detector's guess at a face
    smaller than its reach, as BlazeFace's whole-image look makes now and then)."""

    def __init__(self, k: float):
        self.inner = create_detector("blazeface")
        self.k = k
        self.LANDMARK_BOX = self.inner.LANDMARK_BOX

    def detect(self, image, look=None):
        found = self.inner.detect(image)
        x0, y0, x1, y1 = found[0].box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, self.k * (x1 - x0) / 2
        return found + [Detection((cx - half, cy - half, cx + half, cy + half), 0.5, None)]


@pytest.mark.parametrize("k", [2.6, 3.0])
def test_a_shape_drawn_loosely_around_a_face_is_that_face_once(k):
    """A loose box around a face gives a shape around it (trust ~0.25, above the default floor): one face, the
    face's own points (the nested shape holds the whole face, which no other visible face can)."""
    rgb = load_image(ASTRONAUT)
    alone = Landmarker(min_trust=0).detect(rgb)
    faces = Landmarker(detector=LooseBoxToo(k), min_trust=0).detect(rgb)
    assert len(alone) == 1 and len(faces) == 1
    assert np.abs(faces[0].points - alone[0].points).mean() < 1.0
