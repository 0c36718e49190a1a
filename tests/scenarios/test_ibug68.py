"""The built-in 68-point model: loading, the Python API, `predict`, ONNX export. Its accuracy floors (human labels
included): tests/scenarios/test_accuracy_floor.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facemark import cli
from facemark.landmarker import Landmarker
from facemark.images import load_image
from facemark.train.weights import load_weights

ASTRONAUT = Path(__file__).resolve().parents[2] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def ibug68():
    return Landmarker(model="ibug68", backend="torch")


@pytest.fixture(scope="module")
def astronaut_faces(ibug68):
    rgb = load_image(ASTRONAUT)
    return rgb, ibug68.detect(rgb), Landmarker(backend="torch").detect(rgb)


def test_builtin_ibug68_loads_with_its_scheme_and_card():
    network = load_weights("ibug68")
    assert network.scheme.name == "ibug68" and network.config.num_points == 68
    assert network.metrics.get("nme", 1) < 0.1  # the card's measured metrics travel with the weights
    with pytest.raises(ValueError, match="predicts the ibug68 layout, not face88"):
        load_weights("ibug68", expect_scheme="face88")


def test_ibug68_points_land_on_the_face(astronaut_faces):
    rgb, faces68, faces88 = astronaut_faces
    assert len(faces68) == 1 and len(faces88) == 1
    face = faces68[0]
    assert face.points.shape == (68, 2) and np.isfinite(face.points).all()
    x0, y0, x1, y1 = face.box
    margin = 0.25 * (x1 - x0)
    assert ((face.points[:, 0] > x0 - margin) & (face.points[:, 0] < x1 + margin)).all()
    assert ((face.points[:, 1] > y0 - margin) & (face.points[:, 1] < y1 + margin)).all()
    assert face.region("left_eye").shape == (6, 2) and face.region("mouth").shape == (20, 2)
    # how closely the two models agree on their 34 shared points: tests/scenarios/test_accuracy_floor.py
    # image left is the subject's right: iBUG point 36 (outer corner, image-left eye) lies left of 45
    assert face.points[36, 0] < face.points[45, 0]


def test_predict_cli_writes_68_points(tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    assert cli.main(["predict", str(ASTRONAUT), "--model", "ibug68", "--json", str(out), "--quiet",
                     "--threads", "1"]) == 0
    record = json.loads(out.read_text())
    assert len(record["faces"]) == 1 and len(record["faces"][0]["points"]) == 68


def test_ibug68_exports_to_onnx_with_the_same_points(tmp_path, ibug68, astronaut_faces):
    pytest.importorskip("onnx")  # the export writes with it
    pytest.importorskip("onnxruntime")
    rgb, faces68, _ = astronaut_faces
    assert cli.main(["export", "--onnx", str(tmp_path / "ibug68.onnx"), "--model", "ibug68"]) == 0
    # the same detector (on torch), so that only the landmark network's runtime differs
    onnx = Landmarker(model=tmp_path / "ibug68.onnx", backend="onnx", detector=ibug68.detector)
    assert onnx.scheme.name == "ibug68"
    faces = onnx.detect(rgb)
    assert len(faces) == 1
    assert np.abs(faces[0].points - faces68[0].points).max() < 1e-2
