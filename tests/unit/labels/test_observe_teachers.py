"""scripts/observe_teachers.py: both teachers once per image, dlib on its own HOG rectangle of an upscaled copy
(issue 20). Run as a user would, on copies of the bundled sample image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemark.labels.annotations import write_pts
from facemark.images import load_image

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "observe_teachers.py"
ASTRONAUT = REPO / "examples" / "astronaut.png"


def _observe(folder: Path, out: Path, *extra: str) -> list[dict]:
    run = subprocess.run([sys.executable, str(SCRIPT), str(folder), "--out", str(out), *extra],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    pytest.importorskip("dlib")
    pytest.importorskip("mediapipe")
    d = tmp_path_factory.mktemp("faces")
    rgb = load_image(ASTRONAUT)
    Image.fromarray(rgb).save(d / "a.png")
    Image.fromarray(np.ascontiguousarray(rgb[:, ::-1])).save(d / "b_mirrored.png")
    (d / "c_broken.jpg").write_bytes(b"not an image")
    return d


def test_upscaled_dlib_lands_on_the_plain_one_and_both_teachers_agree(folder, tmp_path):
    one = {r["image"]: r for r in _observe(folder, tmp_path / "u1.jsonl", "--upscale", "1")}
    two = {r["image"]: r for r in _observe(folder, tmp_path / "u2.jsonl", "--upscale", "2")}
    assert set(two) == {"a.png", "b_mirrored.png", "c_broken.jpg"}
    assert "error" in two["c_broken.jpg"] and "width" not in two["c_broken.jpg"]  # named, and the batch went on
    a1, a2 = np.array(one["a.png"]["dlib68"]), np.array(two["a.png"]["dlib68"])
    eye = np.linalg.norm(a2[36] - a2[45])
    # the same predictor on a twice-as-fine copy: the points map back to the same places (pixel-centre mapping)
    assert np.abs(a1 - a2).mean() < 0.03 * eye
    assert np.abs(a1.mean(axis=0) - a2.mean(axis=0)).max() < 0.01 * eye
    # upscaled, dlib's whole pixels k of the copy are (k + 0.5) / 2 - 0.5 in the image: finer than whole pixels
    assert np.allclose(((a2 + 0.25) * 2) % 1, 0, atol=1e-3) and not np.allclose(a2 % 1, 0, atol=1e-3)
    # MediaPipe's and dlib's shapes are of the same face, and the mirrored image gives the mirrored face
    mp = np.array(two["a.png"]["mediapipe88"])
    from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS
    assert np.linalg.norm(mp[FACE88_ANCHORS] - a2[IBUG68_ANCHORS], axis=1).mean() < 0.15 * eye
    width = two["a.png"]["width"]
    b2 = np.array(two["b_mirrored.png"]["dlib68"])
    assert abs((width - 1 - b2[:, 0]).mean() - a2[:, 0].mean()) < 0.02 * eye
    # resumable: a second run over the same output adds nothing
    again = _observe(folder, tmp_path / "u2.jsonl", "--upscale", "2")
    assert len(again) == 3


def test_pts_folders_keep_only_the_labelled_face(folder, tmp_path):
    rgb = load_image(ASTRONAUT)
    first = _observe(folder, tmp_path / "plain.jsonl")
    points = np.array(next(r for r in first if r["image"] == "a.png")["dlib68"])
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    Image.fromarray(rgb).save(labelled / "here.png")
    write_pts(labelled / "here.pts", points)  # the person labelled this face
    Image.fromarray(rgb).save(labelled / "elsewhere.png")
    write_pts(labelled / "elsewhere.pts", points * 0.2)  # ... a face in the corner that no teacher finds
    Image.fromarray(rgb).save(labelled / "unlabelled.png")  # no .pts: not observed
    records = {r["image"]: r for r in _observe(labelled, tmp_path / "pts.jsonl", "--pts")}
    assert set(records) == {"here.png", "elsewhere.png"}
    here, elsewhere = records["here.png"], records["elsewhere.png"]
    np.testing.assert_allclose(here["target"], [*points.min(axis=0), *points.max(axis=0)], atol=1e-2)
    assert here["dlib68"] is not None and here["mediapipe88"] is not None
    # the teachers' face is not the labelled one: neither is kept (the rectangles found are, for the record)
    assert elsewhere["dlib68"] is None and elsewhere["mediapipe88"] is None and len(elsewhere["hog"]) >= 1


def test_joint_cache_from_observations_and_human_labels(folder, tmp_path):
    """scripts/make_joint_cache.py: teacher faces give both layouts, human faces ibug68 + face88's 34 shared
    points; the held-out human faces are the validation split and nothing else is."""
    from facemark.labels.cache import open_cache
    from facemark.labels.ensemble import EnsembleParams
    from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS

    obs = tmp_path / "obs.jsonl"
    records = _observe(folder, obs)
    points = np.array(next(r for r in records if r["image"] == "a.png")["dlib68"])
    human, held_out = tmp_path / "human", tmp_path / "human_val"
    for d, names in ((human, ("p1.png", "p2.png")), (held_out, ("p2.png",))):
        d.mkdir()
        for name in names:
            Image.fromarray(load_image(ASTRONAUT)).save(d / name)
            write_pts((d / name).with_suffix(".pts"), points)
    params = tmp_path / "params.json"
    EnsembleParams.identity(1.0).save(params)  # dlib's points as they are
    out = tmp_path / "cache"
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "make_joint_cache.py"), "--params", str(params),
                          "--teacher", f"{obs}={folder}", "--human", str(human), "--human-val", str(held_out),
                          "--human-repeat", "3", "--size", "64", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    cache = open_cache(out)
    assert cache.scheme.name == "face88+ibug68" and cache.points.shape[1:] == (156, 2)
    # 2 readable teacher images (the broken one has no observation to use), p1 ×3 for training, p2 held out
    assert cache.names == ["a.png", "b_mirrored.png"] + ["human/p1.png"] * 3 + ["human/p2.png"]
    np.testing.assert_array_equal(cache.val, [False] * 5 + [True])
    teacher, person = cache.points[0], cache.points[-1]
    assert np.isfinite(teacher).all()  # both layouts known
    assert np.isfinite(person[88:]).all() and np.isfinite(person[FACE88_ANCHORS]).all()
    assert np.isnan(person[:88]).all(axis=1).sum() == 54
    # identity ensemble: the teacher's iBUG points are dlib's, its shared face88 points the same ones
    np.testing.assert_allclose(teacher[88 + IBUG68_ANCHORS], teacher[FACE88_ANCHORS], atol=1e-3)
    # the person's points equal dlib's here, so their face lands where the teacher's does in the crop
    assert np.abs(person[88:] - teacher[88:]).max() < 0.1 * cache.size
