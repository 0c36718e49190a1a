"""Label cleaning: a plausible population survives, each kind of wrong label is caught by its own rule."""

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemark.labels.annotations import LabelRecord, read_labels
from facemark.labels.cleaning import RULES, clean_label_file, clean_records, geometry_problems
from facemark.layouts import FACE88

ASTRONAUT = Path(__file__).resolve().parents[3] / "examples" / "astronaut.png"
CANVAS = 640  # population canvas: every generated shape lies inside it


def _rule(problem: str) -> str:
    """The rule name of a problem string ("shape_outlier (z=12.3)" -> "shape_outlier")."""
    return problem.split(" ")[0]


def _eye_axis(p):
    """(centre between the eyes, unit vector left eye -> right eye, unit normal pointing down the face)."""
    a = p[FACE88.region_slice("left_eye")].mean(axis=0)
    b = p[FACE88.region_slice("right_eye")].mean(axis=0)
    d = (b - a) / np.linalg.norm(b - a)
    return (a + b) / 2, d, np.array([-d[1], d[0]])


def _reflect(points, centre, normal):
    return points - 2 * ((points - centre) @ normal)[:, None] * normal


def make_population(base, n=200, seed=0, canvas=CANVAS, margin=1.0):
    """n face88 shapes: random similarity transforms of `base` plus ~1% (of eye distance) noise per point.

    Each shape's centre keeps `margin` times the shape's radius (plus 2 px) away from the canvas edges.
    """
    rng = np.random.default_rng(seed)
    centre = base.mean(axis=0)
    iod = float(FACE88.inter_ocular_distance(base))
    radius = np.linalg.norm(base - centre, axis=1).max()
    records = []
    for k in range(n):
        angle = np.radians(rng.uniform(-15, 15))
        scale = rng.uniform(0.7, 1.3)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        reach = margin * radius * scale + 2
        shift = rng.uniform(reach, canvas - 1 - reach, size=2)
        p = (base - centre) @ rot.T * scale + shift
        p += rng.normal(0.0, 0.01 * iod * scale, size=p.shape)
        records.append(LabelRecord(image=f"face_{k:03d}.png", points=p, source="test", width=canvas,
                                   height=canvas))
    return records


@pytest.fixture(scope="module")
def population(astronaut_labels):
    _, points = astronaut_labels
    # room around each face for the corruptions below (e.g. a chin reflected above the eyes) to stay on the canvas
    return make_population(np.array(points), margin=2.0)


def test_population_is_inside_its_canvas(population):
    allp = np.stack([r.points for r in population])
    assert allp.min() > 0 and allp.max() < CANVAS - 1


def test_clean_population_is_kept(population):
    for record in population:
        assert geometry_problems(record.points, FACE88, record.width, record.height) == []
    result = clean_records(population)
    assert result.total == len(population)
    assert len(result.kept) >= 0.98 * len(population)
    assert len(result.kept) + len(result.rejected) == len(population)
    # kept records stay in file order
    order = [int(r.image[5:8]) for r in result.kept]
    assert order == sorted(order)


# --- corruptions: each takes a copy of a (P, 2) shape and returns the broken shape -----------------------

def _nan_point(p):
    p[40, 0] = np.nan
    return p


def _inf_point(p):
    p[70, 1] = np.inf
    return p


def _far_outside(p):
    return p + np.array([2.0 * CANVAS, 0.3 * CANVAS])


def _tiny(p):
    c = p.mean(axis=0)
    return (p - c) * (6.0 / FACE88.inter_ocular_distance(p)) + c


def _eyes_swapped(p):
    left, right = FACE88.region_slice("left_eye"), FACE88.region_slice("right_eye")
    p[left], p[right] = p[right].copy(), p[left].copy()
    return p


def _mouth_reflected_over_eye_line(p):
    centre, _, normal = _eye_axis(p)
    mouth = FACE88.region_slice("mouth")
    p[mouth] = _reflect(p[mouth], centre, normal)
    return p


def _mouth_moved_up(p):
    mouth = FACE88.region_slice("mouth")
    nose_to_mouth = p[mouth].mean(axis=0) - p[FACE88.region_slice("nose")].mean(axis=0)
    p[mouth] -= 1.5 * nose_to_mouth
    return p


def _profile_above_eyes(p):
    centre, _, normal = _eye_axis(p)
    profile = FACE88.region_slice("face_profile")
    p[profile] = _reflect(p[profile], centre, normal)  # the chin and the jaw go up above the eyes
    return p


def _profile_folded(p):
    p[[3, 8]] = p[[8, 3]]
    return p


def _nose_shifted(p):
    _, right, _ = _eye_axis(p)
    p[FACE88.region_slice("nose")] += 0.4 * FACE88.inter_ocular_distance(p) * right
    return p


CORRUPTIONS = [
    (_nan_point, "missing"),
    (_inf_point, "missing"),
    (_far_outside, "outside_image"),
    (_tiny, "implausible_size"),
    (_eyes_swapped, "eyes_swapped"),
    (_mouth_reflected_over_eye_line, "mouth_above_nose"),
    (_mouth_moved_up, "mouth_above_nose"),
    (_profile_above_eyes, "profile_not_below_eyes"),
    (_profile_folded, "contour_folded"),
    (_nose_shifted, "shape_outlier"),
]


def test_rule_names_are_the_documented_ones():
    assert {rule for _, rule in CORRUPTIONS} | {"duplicate"} <= set(RULES)


@pytest.mark.parametrize("corrupt, rule", CORRUPTIONS, ids=[f.__name__.strip("_") for f, _ in CORRUPTIONS])
@pytest.mark.parametrize("victim", [0, 57, 199])
def test_each_corruption_is_rejected_by_its_rule(population, corrupt, rule, victim):
    records = copy.deepcopy(population)
    records[victim].points = corrupt(records[victim].points.copy())
    result = clean_records(records)
    rejected = {r.image: [_rule(p) for p in problems] for r, problems in result.rejected}
    name = records[victim].image
    assert name in rejected, f"{rule}: the corrupted record was kept"
    assert rejected[name] == [rule]  # caught by that rule alone: the others are not confused by it
    assert name not in {r.image for r in result.kept}
    assert result.counts[rule] >= 1
    # the corruption does not cost the rest of the population
    assert len(result.kept) >= 0.98 * (len(records) - 1)


def test_points_none_is_missing(population):
    records = copy.deepcopy(population)
    records[3].points = None
    records[3].error = "no face found by the teacher"
    result = clean_records(records)
    assert [(r.image, problems) for r, problems in result.rejected if r.image == records[3].image] == [
        (records[3].image, ["missing"])]
    assert result.counts["missing"] == 1


def test_duplicate_image_keeps_the_first_record(population):
    records = copy.deepcopy(population)
    again = copy.deepcopy(records[10])
    again.points = records[11].points.copy()
    records.insert(150, again)
    result = clean_records(records)
    duplicates = [(r, problems) for r, problems in result.rejected if problems == ["duplicate"]]
    assert len(duplicates) == 1 and duplicates[0][0] is again
    kept = [r for r in result.kept if r.image == again.image]
    assert len(kept) == 1 and kept[0] is records[10]
    assert result.counts["duplicate"] == 1 and result.total == len(records)


def test_several_corruptions_at_once_are_each_named(population):
    records = copy.deepcopy(population)
    plan = {5: (_eyes_swapped, "eyes_swapped"), 50: (_profile_folded, "contour_folded"),
            90: (_nose_shifted, "shape_outlier"), 130: (_far_outside, "outside_image")}
    for k, (corrupt, _) in plan.items():
        records[k].points = corrupt(records[k].points.copy())
    result = clean_records(records)
    rejected = {r.image: [_rule(p) for p in problems] for r, problems in result.rejected}
    for k, (_, rule) in plan.items():
        assert rejected.get(records[k].image) == [rule]
    assert len(result.kept) >= 0.98 * (len(records) - len(plan))
    line = result.summary_line()
    assert line.startswith(f"kept {len(result.kept)} of {len(records)}, removed {len(result.rejected)}")
    for rule in ("eyes_swapped", "contour_folded", "shape_outlier", "outside_image"):
        assert rule in line


# --- clean_label_file end to end ------------------------------------------------------------------------

def test_clean_label_file_end_to_end(tmp_path, astronaut_labels):
    _, points = astronaut_labels
    images = tmp_path / "images"
    images.mkdir()
    records = make_population(np.array(points), n=24, seed=3, canvas=512)
    for record in records:
        shutil.copyfile(ASTRONAUT, images / record.image)
    records[2].points = _eyes_swapped(records[2].points.copy())
    records[7].points, records[7].error = None, "no face found by the teacher"
    records[9].points = _profile_folded(records[9].points.copy())
    records.append(copy.deepcopy(records[0]))  # duplicate
    lines = [r.to_json() for r in records]
    lines.insert(12, '{"image": "face_999.png", "points": [[1, 2], ')  # malformed: skipped, reported
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")

    out = tmp_path / "out" / "clean.jsonl"
    report = tmp_path / "out" / "report.md"
    result = clean_label_file(labels, out, report_path=report, images_dir=images)

    expected_removed = {records[2].image: "eyes_swapped", records[7].image: "missing",
                        records[9].image: "contour_folded"}
    assert result.total == 25
    assert sorted(_rule(p[0]) for _, p in result.rejected) == sorted(["contour_folded", "duplicate",
                                                                        "eyes_swapped", "missing"])
    kept = list(read_labels(out))
    assert [r.image for r in kept] == [r.image for r in records[:24] if r.image not in expected_removed]
    for r in kept:
        np.testing.assert_allclose(r.points, next(x for x in records if x.image == r.image).points, atol=5e-4)
    assert not out.with_name(out.name + ".tmp").exists()

    text = report.read_text()
    assert "malformed lines skipped: 1" in text
    assert f"{labels}:13:" in text  # the malformed line, named
    counts = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in RULES:
            counts[cells[0]] = int(cells[1])
    assert set(counts) == set(RULES)
    expected = {rule: 0 for rule in RULES}
    expected.update(eyes_swapped=1, missing=1, contour_folded=1, duplicate=1)
    assert counts == expected
    for image, rule in expected_removed.items():
        assert any(line.startswith(f"| {image} | {rule}") for line in text.splitlines())

    sheet_path = report.with_suffix(".png")
    assert sheet_path.exists() and sheet_path.stat().st_size > 0
    assert sheet_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(sheet_path) as sheet:
        sheet.verify()
    with Image.open(sheet_path) as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    assert f"]({sheet_path.name})" in text
    # the tiles hold the astronaut's picture, not just the background: plenty of distinct colours
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000


def test_clean_label_file_without_report(tmp_path, population):
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(r.to_json() + "\n" for r in population[:30]), encoding="utf-8")
    out = tmp_path / "clean.jsonl"
    result = clean_label_file(labels, out)
    assert result.report_path is None and len(result.kept) == 30
    assert [r.image for r in read_labels(out)] == [r.image for r in population[:30]]
    assert list(tmp_path.glob("*.md")) == [] and list(tmp_path.glob("*.png")) == []


# --- real data ------------------------------------------------------------------------------------------

@pytest.mark.shared
def test_real_celeba_sample_is_mostly_kept(shared_data, tmp_path):
    pytest.importorskip("mediapipe")
    from facemark.labels.labelling import label_folder

    source = shared_data / "celeba" / "images"
    names = sorted(p.name for p in source.iterdir() if p.suffix.lower() == ".jpg")[::60][:300]
    assert len(names) == 300, f"{source} holds too few images for this sample"
    images = tmp_path / "celeba"
    images.mkdir()
    for name in names:
        shutil.copyfile(source / name, images / name)
    labels = tmp_path / "labels.jsonl"
    summary = label_folder(images, labels, workers=2, progress=False)
    assert summary.labelled + summary.no_face + summary.unreadable == 300
    assert summary.unreadable == 0
    assert summary.labelled > 0.9 * 300  # the teacher finds nearly every aligned CelebA face

    result = clean_label_file(labels, tmp_path / "clean.jsonl", report_path=tmp_path / "report.md",
                              images_dir=images)
    assert result.total == 300
    labelled = summary.labelled
    kept = len(result.kept)
    assert kept > 0.97 * labelled, result.summary_line()
    assert result.counts["missing"] == summary.no_face
    assert kept == len(list(read_labels(tmp_path / "clean.jsonl")))
