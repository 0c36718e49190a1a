"""A layout of your own through the command line, end to end, in seconds: a six-point layout file made from
Face Mesh vertices; the MediaPipe teacher labels a dozen CelebA photos in it; clean; the labels go to CVAT and
back; cache; one tiny epoch from face88; export; and `predict` in a fresh process with the ONNX file alone."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facemark.cli.main import main
from facemark.labels.annotations import read_labels
from facemark.labels.cache import identity_of, is_validation_identity

pytest.importorskip("mediapipe")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
VAL_FRACTION = 0.5

SIX = {"name": "six_test", "points": 6,
       "regions": {"left_eye": [0], "right_eye": [1], "nose": [2], "mouth": "3-4", "chin": [5]},
       "mirror": [[0, 1], [3, 4]], "normaliser": [0, 1],
       "contours": [{"points": [3, 4], "closed": False}],
       # outer eye corners, nose tip, mouth corners, chin (Face Mesh vertices)
       "from_mediapipe": [[33], [263], [4], [61], [291], [152]]}


def _photos(celeba: Path, out: Path) -> None:
    """Four photos each of two training identities and one validation identity (the cache's split rule)."""
    by_identity: dict[str, list[Path]] = {}
    for path in sorted(celeba.glob("*.jpg"))[:400]:
        by_identity.setdefault(identity_of(path.name), []).append(path)
    train = [i for i in by_identity if not is_validation_identity(i, VAL_FRACTION)][:2]
    val = [i for i in by_identity if is_validation_identity(i, VAL_FRACTION)][:1]
    out.mkdir()
    for identity in train + val:
        for path in by_identity[identity][:4]:
            shutil.copy(path, out)


def test_a_layout_of_your_own_from_label_to_predict(tmp_path, shared_data, capsys):
    layout = tmp_path / "six.json"
    layout.write_text(json.dumps(SIX))
    images = tmp_path / "images"
    _photos(shared_data / "celeba" / "images", images)
    w = str(tmp_path)

    assert main(["label", str(images), "--out", f"{w}/labels.jsonl", "--layout", str(layout), "--workers", "1",
                 "--quiet"]) == 0
    labels = [r for r in read_labels(tmp_path / "labels.jsonl") if r.points is not None]
    assert len(labels) >= 10 and all(r.scheme == "six_test" and r.points.shape == (6, 2) for r in labels)

    assert main(["clean", f"{w}/labels.jsonl", "--out", f"{w}/clean.jsonl", "--layout", str(layout)]) == 0
    assert "not applied (the layout lacks their regions)" in capsys.readouterr().out  # no face_profile here

    # to the annotation tool and back (a person would move points in CVAT in between)
    assert main(["convert", f"{w}/clean.jsonl", "--out", f"{w}/clean.xml", "--layout", str(layout)]) == 0
    assert main(["cache", f"{w}/clean.xml", "--images", str(images), "--out", f"{w}/cache", "--layout",
                 str(layout), "--val-fraction", str(VAL_FRACTION), "--size", "128", "--quiet"]) == 0

    assert main(["train", "--data", f"{w}/cache", "--out", f"{w}/run", "--init", "face88", "--epochs", "1",
                 "--batch-size", "8", "--augment", "none", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "best validation NME" in out
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["0", "1"]  # epoch 0: the start, scored

    assert main(["export", "--model", f"{w}/run/best.pt", "--onnx", f"{w}/six.onnx"]) == 0
    from facemark.network import LandmarkNetwork

    side, dx, dy = LandmarkNetwork(f"{w}/six.onnx").config.face_framing  # measured by --init face88
    assert 1.0 < side < 2.0 and abs(dx) < 0.1 and abs(dy) < 0.3  # the six points span most of the face

    # a fresh process that knows nothing of six.json: the layout travels inside the ONNX file
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "facemark", "predict", str(ROOT / "examples" / "astronaut.png"),
                           "--model", f"{w}/six.onnx", "--json", f"{w}/predict.jsonl", "--quiet"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "predict.jsonl").read_text().splitlines()[0])
    face = record["faces"][0]
    points = np.array(face["points"])
    x0, y0, x1, y1 = face["box"]
    assert points.shape == (6, 2)
    # one epoch on a dozen faces, started from face88's points: the points already lie on the face
    assert ((points[:, 0] > x0 - 20) & (points[:, 0] < x1 + 20) & (points[:, 1] > y0 - 20)
            & (points[:, 1] < y1 + 40)).all()
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # image-left before image-right
    assert points[2, 1] < points[3, 1] < points[5, 1]  # nose above mouth above chin
