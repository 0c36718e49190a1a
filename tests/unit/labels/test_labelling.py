"""Teacher labelling of a folder: one record per image, points on the face, resumable after a kill."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemark.labels.annotations import AnnotationError, read_labels
from facemark.cli import main
from facemark.images import ImageError
from facemark.labels.labelling import label_folder
from facemark.layouts import FACE88

pytest.importorskip("mediapipe")

ASTRONAUT = Path(__file__).resolve().parents[3] / "examples" / "astronaut.png"


@pytest.fixture
def image_folder(tmp_path):
    """A real face, a text file posing as a JPEG, and a uniform grey picture with no face."""
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copyfile(ASTRONAUT, folder / "astronaut.png")
    (folder / "bad.jpg").write_text("<html>404 Not Found</html>\n")
    Image.new("RGB", (320, 240), (128, 128, 128)).save(folder / "blank.png")
    return folder


def _records(path):
    return {r.image: r for r in read_labels(path)}


def _line_count(path):
    return len(path.read_text(encoding="utf-8").splitlines())


def test_every_image_gets_exactly_one_record(image_folder, tmp_path):
    out = tmp_path / "labels" / "labels.jsonl"  # the folder does not exist yet
    summary = label_folder(image_folder, out, workers=1, progress=False)
    assert (summary.labelled, summary.no_face, summary.unreadable, summary.skipped_existing) == (1, 1, 1, 0)
    assert _line_count(out) == 3
    records = _records(out)
    assert sorted(records) == ["astronaut.png", "bad.jpg", "blank.png"]
    assert all(r.scheme == "face88" and r.source.startswith("mediapipe") for r in records.values())

    face = records["astronaut.png"]
    assert face.error is None and (face.width, face.height) == (512, 512)
    assert face.points.shape == (88, 2) and np.isfinite(face.points).all()

    bad = records["bad.jpg"]
    assert bad.points is None and bad.box is None
    assert "bad.jpg" in bad.error and "not an image" in bad.error

    blank = records["blank.png"]
    assert blank.points is None and "no face" in blank.error
    assert (blank.width, blank.height) == (320, 240)


def test_astronaut_points_lie_on_her_face(image_folder, tmp_path):
    out = tmp_path / "labels.jsonl"
    label_folder(image_folder, out, workers=1, progress=False)
    record = _records(out)["astronaut.png"]
    p = record.points
    region = {name: p[FACE88.region_slice(name)] for name in FACE88.region_names}
    # In examples/astronaut.png the face (brow to chin, ear to ear) spans about x 180-270, y 70-180.
    assert (p[:, 0] > 160).all() and (p[:, 0] < 290).all()
    assert (p[:, 1] > 60).all() and (p[:, 1] < 200).all()
    # the outer eye corners are ~60 px apart there; the face is upright and frontal
    eye_distance = float(FACE88.inter_ocular_distance(p))
    assert 45 < eye_distance < 80
    assert p[21, 0] < p[25, 0] < p[29, 0] < p[33, 0]  # left eye left of right eye, corners in order
    assert abs(p[21, 1] - p[33, 1]) < 0.2 * eye_distance
    eyes_y = (region["left_eye"][:, 1].mean() + region["right_eye"][:, 1].mean()) / 2
    brows_y = (region["left_eyebrow"][:, 1].mean() + region["right_eyebrow"][:, 1].mean()) / 2
    nose_tip_y, mouth_y, chin_y = p[78, 1], region["mouth"][:, 1].mean(), p[10, 1]
    assert brows_y < eyes_y < nose_tip_y < mouth_y < chin_y
    # the box covers the points and is the mesh's box, so not much larger than the face
    x0, y0, x1, y1 = record.box
    assert x0 <= p[:, 0].min() + 0.01 and x1 >= p[:, 0].max() - 0.01
    assert y0 <= p[:, 1].min() + 0.01 and y1 >= p[:, 1].max() - 0.01
    assert (x1 - x0) < 2 * eye_distance and (y1 - y0) < 2.5 * eye_distance


def test_labels_match_the_teacher_run_directly(image_folder, tmp_path, astronaut_labels):
    """What label_folder writes is the teacher's answer for that image, rounded for the file."""
    _, points = astronaut_labels
    out = tmp_path / "labels.jsonl"
    label_folder(image_folder, out, workers=1, progress=False)
    np.testing.assert_allclose(_records(out)["astronaut.png"].points, points, atol=0.05)


def test_rerun_resumes_without_relabelling(image_folder, tmp_path):
    out = tmp_path / "labels.jsonl"
    label_folder(image_folder, out, workers=1, progress=False)
    before = out.read_bytes()
    summary = label_folder(image_folder, out, workers=1, progress=False)
    assert (summary.labelled, summary.no_face, summary.unreadable) == (0, 0, 0)
    assert summary.skipped_existing == 3
    assert out.read_bytes() == before  # nothing appended, nothing rewritten

    # a new image in the folder is the only one labelled on the next run
    Image.new("RGB", (64, 64), (10, 200, 30)).save(image_folder / "green.png")
    summary = label_folder(image_folder, out, workers=1, progress=False)
    assert (summary.no_face, summary.skipped_existing) == (1, 3)
    assert _line_count(out) == 4
    assert out.read_bytes().startswith(before)
    assert sorted(_records(out)) == ["astronaut.png", "bad.jpg", "blank.png", "green.png"]


def test_half_written_last_line_from_a_killed_run(image_folder, tmp_path):
    out = tmp_path / "labels.jsonl"
    label_folder(image_folder, out, workers=1, progress=False)
    lines = out.read_text(encoding="utf-8").splitlines()
    victim = json.loads(lines[-1])["image"]
    # the run was killed while writing its last record: the line is cut and has no newline
    out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25], encoding="utf-8")
    with pytest.raises(AnnotationError):
        list(read_labels(out))

    summary = label_folder(image_folder, out, workers=1, progress=False)
    assert summary.skipped_existing == 2
    assert summary.labelled + summary.no_face + summary.unreadable == 1

    problems = []
    records = list(read_labels(out, skip_bad=True, problems=problems))
    assert len(problems) == 1 and re.search(r":3: invalid JSON", problems[0])  # the cut line, on its own
    assert sorted(r.image for r in records) == ["astronaut.png", "bad.jpg", "blank.png"]
    assert records[-1].image == victim
    assert _line_count(out) == 4  # 3 records + the cut line, which was closed before appending

    # and yet another run finds nothing left to do
    summary = label_folder(image_folder, out, workers=1, progress=False)
    assert summary.skipped_existing == 3 and _line_count(out) == 4


def test_label_folder_rejects_a_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="not a folder"):
        label_folder(tmp_path / "nowhere", tmp_path / "labels.jsonl", progress=False)


def test_cli_label(image_folder, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    code = main(["label", str(image_folder), "--out", str(out), "--workers", "1", "--quiet"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("labelled 1, no face 1, unreadable 1, already in ")
    assert ": 0 (" in lines[0] and lines[0].endswith(f"-> {out}")
    assert sorted(_records(out)) == ["astronaut.png", "bad.jpg", "blank.png"]

    assert main(["label", str(image_folder), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("labelled 0, no face 0, unreadable 0, already in ")
    assert _line_count(out) == 3
