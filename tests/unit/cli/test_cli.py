"""`facemark VERB ...`: exit codes 0 / 1 / 2 and one-line messages."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facemark.labels.annotations import LabelRecord, read_labels
from facemark.labels.cleaning import geometry_problems
from facemark.cli import main
from facemark.layouts import FACE88

REPO = Path(__file__).resolve().parents[3]


def _ring(cx, cy, rx, ry, n_top, n_bottom):
    """Closed face88-style contour: left corner, top edge left->right, right corner, bottom edge right->left."""
    top = np.linspace(np.pi, 0, n_top + 2)
    bottom = np.linspace(0, -np.pi, n_bottom + 2)[1:-1]
    angles = np.concatenate([top, bottom])
    return np.stack([cx + rx * np.cos(angles), cy - ry * np.sin(angles)], axis=1)


def synthetic_face(cx=150.0, cy=150.0, s=1.0) -> np.ndarray:
    """A drawn-by-numbers upright face88 shape (no teacher needed), eye distance ~60*s px."""
    angles = np.linspace(np.pi, 0, 21)  # ear level on the left, down to the chin, up to the right
    profile = np.stack([cx + 55 * np.cos(angles), cy - 20 + 85 * np.sin(angles)], axis=1)
    left_eye, right_eye = _ring(cx - 22, cy - 20, 9, 4, 3, 3), _ring(cx + 22, cy - 20, 9, 4, 3, 3)
    left_brow, right_brow = _ring(cx - 24, cy - 34, 14, 3, 3, 3), _ring(cx + 24, cy - 34, 14, 3, 3, 3)
    mouth = np.concatenate([_ring(cx, cy + 30, 20, 7, 5, 5), _ring(cx, cy + 30, 14, 3, 5, 3)])
    ridge = np.stack([np.full(4, cx), np.linspace(cy - 20, cy + 8, 4)], axis=1)
    base = np.stack([np.linspace(cx - 12, cx + 12, 9), cy + 12 + 2 * np.cos(np.linspace(0, np.pi, 9)) ** 2],
                    axis=1)
    points = np.concatenate([profile, left_eye, right_eye, left_brow, right_brow, mouth, ridge, base])
    assert points.shape == (88, 2)
    return (points - [cx, cy]) * s + [cx, cy]


def _write_labels(path, n=5, extra_lines=()):
    lines = []
    for k in range(n):
        points = synthetic_face(150 + 3 * k, 150 - 2 * k, 1 + 0.05 * k)
        lines.append(LabelRecord(image=f"img{k}.jpg", points=points, width=300, height=300).to_json())
    lines[1:1] = list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_synthetic_face_is_a_plausible_face():
    points = synthetic_face()
    assert geometry_problems(points, FACE88, 300, 300) == []
    assert 40 < FACE88.inter_ocular_distance(points) < 80


@pytest.mark.parametrize("argv", [
    ["frobnicate"],  # unknown verb
    [],  # no verb at all
    ["clean", "labels.jsonl"],  # --out is required
    ["label", "--out", "x.jsonl"],  # the images folder is required
    ["cache", "labels.jsonl", "--out", "c"],  # --images is required with a label file (not with a .pts folder)
    ["cache", "labels.jsonl", "--images", "i", "--out", "c", "--size", "big"],  # not an int
    ["label", "imgs", "--out", "x.jsonl", "--teacher", "nosuch"],  # not a known teacher
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    # argparse's usage line, or facemark's own one-line usage error for rules argparse cannot express
    assert ("usage: facemark" in err or err.startswith(f"facemark {argv[0]}: error:")) and "error:" in err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "label" in out and "clean" in out and "cache" in out


def test_clean_missing_label_file_exits_1_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    out = tmp_path / "clean.jsonl"
    assert main(["clean", str(missing), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("facemark clean: error:") and str(missing) in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_clean_skips_invalid_json_lines_and_cleans_the_rest(tmp_path, capsys):
    labels = tmp_path / "labels.jsonl"
    _write_labels(labels, n=5, extra_lines=["{not json", '{"image": "half.jpg", "points": [[1,'])
    out = tmp_path / "out" / "clean.jsonl"
    report = tmp_path / "out" / "report.md"
    assert main(["clean", str(labels), "--out", str(out), "--report", str(report)]) == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    assert len(stdout) == 1
    assert stdout[0].startswith("kept 5 of 5, removed 0 (0.00%): none") and str(report) in stdout[0]
    assert [r.image for r in read_labels(out)] == [f"img{k}.jpg" for k in range(5)]
    text = report.read_text()
    assert "malformed lines skipped: 2" in text
    assert f"{labels}:2:" in text and f"{labels}:3:" in text


def test_clean_reports_rejected_records(tmp_path, capsys):
    labels = tmp_path / "labels.jsonl"
    _write_labels(labels, n=4)
    with labels.open("a") as fh:
        fh.write(LabelRecord(image="noface.jpg", error="no face found by the teacher").to_json() + "\n")
    out = tmp_path / "clean.jsonl"
    assert main(["clean", str(labels), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line == "kept 4 of 5, removed 1 (20.00%): missing 1"
    assert len(list(read_labels(out))) == 4


def test_cache_with_missing_label_file_exits_1(tmp_path, capsys):
    code = main(["cache", str(tmp_path / "none.jsonl"), "--images", str(tmp_path), "--out",
                 str(tmp_path / "c"), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facemark cache: error:")


def test_label_missing_folder_exits_1(tmp_path, capsys):
    code = main(["label", str(tmp_path / "nowhere"), "--out", str(tmp_path / "l.jsonl"), "--workers", "1",
                 "--quiet"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


def test_python_dash_m_help():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src")] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-m", "facemark", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: facemark")
    for verb in ("label", "clean", "cache"):
        assert verb in proc.stdout


def test_python_dash_m_usage_error_exits_2():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src")] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, "-m", "facemark", "frobnicate"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_label_without_mediapipe_says_how_to_install(tmp_path, monkeypatch, capsys):
    import sys

    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` fail
    code = main(["label", str(tmp_path), "--out", str(tmp_path / "labels.jsonl"), "--workers", "1", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "pip install 'facemark[label]'" in err and len(err.splitlines()) == 1
