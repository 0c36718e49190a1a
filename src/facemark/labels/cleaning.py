"""Error analysis: find teacher labels that are wrong, drop them, and say why.

Each rule is a plain function of one shape (or, for outliers, of the whole set). Geometric rules work in a
frame taken from the face profile's two ends, not from the eyes, so that swapped eyes are still visible as
swapped. Rules only use region names: a layout of your own gets every rule whose regions it has
(RULE_REGIONS; without a face_profile the frame comes from the eyes), and the report names the rules left out.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facemark.labels.annotations import LabelRecord, read_labels
from facemark.layouts import Scheme, get_scheme

RULES = {
    "duplicate": "the image appears earlier in the file (the first record is kept)",
    "missing": "no points (no face found, unreadable image) or NaN/inf coordinates",
    "outside_image": "a point lies further outside the image than 10% of the face size",
    "implausible_size": "eye distance under 8 px, or the face far larger than the image",
    "eyes_swapped": "the left eye is not left of the right eye along the face's own left-right axis",
    "eyes_overlap": "the two eyes overlap along the left-right axis",
    "mouth_above_nose": "the mouth centre is not below the nose centre",
    "profile_not_below_eyes": "the chin is not below the eyes and the mouth",
    "contour_folded": "the face profile crosses itself or turns back on itself",
    "shape_outlier": "after removing position, scale and rotation, the shape is far from all others",
}

# the regions each shape rule needs; "duplicate", "missing", "outside_image", "implausible_size" and
# "shape_outlier" apply to any layout
RULE_REGIONS = {
    "eyes_swapped": ("face_profile", "left_eye", "right_eye"),
    "eyes_overlap": ("face_profile", "left_eye", "right_eye"),
    "mouth_above_nose": ("left_eye", "right_eye", "nose", "mouth"),
    "profile_not_below_eyes": ("face_profile", "left_eye", "right_eye", "mouth"),
    "contour_folded": ("face_profile",),
}


def rules_left_out(scheme: Scheme) -> dict[str, list[str]]:
    """Rule -> the regions `scheme` lacks for it (only the rules it cannot apply)."""
    have = set(scheme.region_names)
    out = {rule: [r for r in need if r not in have] for rule, need in RULE_REGIONS.items()}
    return {rule: missing for rule, missing in out.items() if missing}


OUTSIDE_TOLERANCE = 0.10  # of the face size
MIN_EYE_DISTANCE = 8.0  # px: below this the points carry no usable detail
DEFAULT_OUTLIER_THRESHOLD = 6.0  # robust z-score of the Procrustes residual


def _centre(points: np.ndarray, scheme: Scheme, region: str) -> np.ndarray:
    return points[scheme.region_slice(region)].mean(axis=0)


def face_frame(points: np.ndarray, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (right, down) of the face, from the profile's first point (image-left) to its last (a
    layout without a profile: from the left eye's centre to the right eye's)."""
    if "face_profile" in scheme.region_names:
        profile = points[scheme.region_slice("face_profile")]
        right = profile[-1] - profile[0]
    else:
        right = _centre(points, scheme, "right_eye") - _centre(points, scheme, "left_eye")
    norm = np.linalg.norm(right)
    right = right / norm if norm > 0 else np.array([1.0, 0.0])
    down = np.array([-right[1], right[0]])
    return right, down


def _segments_cross(p1, p2, q1, q2) -> bool:
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    return (orient(p1, p2, q1) * orient(p1, p2, q2) < 0) and (orient(q1, q2, p1) * orient(q1, q2, p2) < 0)


def polyline_folds(line: np.ndarray, max_turn_deg: float = 150.0) -> bool:
    """True if an open polyline crosses itself or makes a hairpin turn."""
    n = len(line)
    for i in range(n - 1):
        for j in range(i + 2, n - 1):
            if _segments_cross(line[i], line[i + 1], line[j], line[j + 1]):
                return True
    seg = np.diff(line, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    ok = (lengths[:-1] > 1e-9) & (lengths[1:] > 1e-9)
    cos = np.sum(seg[:-1] * seg[1:], axis=1)[ok] / (lengths[:-1] * lengths[1:])[ok]
    return bool(np.any(cos < np.cos(np.radians(max_turn_deg))))


def geometry_problems(points: np.ndarray, scheme: Scheme, width: int | None = None,
                      height: int | None = None) -> list[str]:
    """Names of the per-shape rules this shape breaks (empty when it looks like a face)."""
    if points is None or not np.isfinite(points).all():
        return ["missing"]
    problems = []
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    face_size = max(x1 - x0, y1 - y0)
    if width and height:
        tol = OUTSIDE_TOLERANCE * face_size
        if x0 < -0.5 - tol or y0 < -0.5 - tol or x1 > width - 0.5 + tol or y1 > height - 0.5 + tol:
            problems.append("outside_image")
    iod = float(scheme.inter_ocular_distance(points))
    if iod < MIN_EYE_DISTANCE or (width and height and face_size > 3 * max(width, height)):
        problems.append("implausible_size")

    left_out = rules_left_out(scheme)
    if len(left_out) == len(RULE_REGIONS):
        return problems
    right, down = face_frame(points, scheme)
    if "mouth_above_nose" not in left_out:
        nose, mouth = _centre(points, scheme, "nose") @ down, _centre(points, scheme, "mouth") @ down
        if mouth <= nose:
            problems.append("mouth_above_nose")
    if "eyes_swapped" in left_out:
        return problems
    left_eye = points[scheme.region_slice("left_eye")] @ right
    right_eye = points[scheme.region_slice("right_eye")] @ right
    if right_eye.mean() <= left_eye.mean():
        problems.append("eyes_swapped")
    elif left_eye.max() >= right_eye.min():
        problems.append("eyes_overlap")
    profile = points[scheme.region_slice("face_profile")]
    if "profile_not_below_eyes" not in left_out:
        chin = profile[len(profile) // 2] @ down
        eyes = (_centre(points, scheme, "left_eye") + _centre(points, scheme, "right_eye")) / 2 @ down
        if chin <= max(eyes, _centre(points, scheme, "mouth") @ down):
            problems.append("profile_not_below_eyes")
    if polyline_folds(profile):
        problems.append("contour_folded")
    return problems


def procrustes_residuals(shapes: np.ndarray, iterations: int = 3) -> np.ndarray:
    """RMS distance of each shape (N, P, 2) to the mean shape after a best similarity alignment.

    Shapes are centred and scaled to unit RMS radius, then rotated onto the mean (generalised Procrustes),
    so the residual measures shape alone, in units of the face's own size.
    """
    x = shapes - shapes.mean(axis=1, keepdims=True)
    x = x / np.sqrt((x ** 2).sum(axis=(1, 2), keepdims=True) / x.shape[1])
    mean = x[0]
    for _ in range(iterations):
        # optimal rotation per shape: angle of sum(conj(x) * mean) in complex form
        z, m = x[..., 0] + 1j * x[..., 1], mean[:, 0] + 1j * mean[:, 1]
        rot = np.exp(1j * np.angle((np.conj(z) * m).sum(axis=1)))
        aligned = z * rot[:, None]
        new_mean = aligned.mean(axis=0)
        new_mean = new_mean / np.sqrt((np.abs(new_mean) ** 2).mean())
        mean = np.stack([new_mean.real, new_mean.imag], axis=1)
    return np.sqrt((np.abs(aligned - new_mean) ** 2).mean(axis=1))


def robust_z(values: np.ndarray) -> np.ndarray:
    median = np.median(values)
    mad = np.median(np.abs(values - median)) * 1.4826
    return (values - median) / max(mad, 1e-12)


@dataclass
class CleanResult:
    kept: list[LabelRecord]
    rejected: list[tuple[LabelRecord, list[str]]]
    counts: Counter = field(default_factory=Counter)  # per rule; a record breaking two rules counts twice
    total: int = 0
    report_path: Path | None = None
    left_out: dict = field(default_factory=dict)  # rule -> regions its layout lacks (rules not applied)

    def summary_line(self) -> str:
        removed = len(self.rejected)
        share = 100.0 * removed / max(self.total, 1)
        rules = ", ".join(f"{k} {v}" for k, v in self.counts.most_common()) or "none"
        return (f"kept {len(self.kept)} of {self.total}, removed {removed} ({share:.2f}%): {rules}"
                + (f"; not applied (the layout lacks their regions): {', '.join(self.left_out)}"
                   if self.left_out else "")
                + (f"; report {self.report_path}" if self.report_path else ""))


def clean_records(records: list[LabelRecord], *,
                  outlier_threshold: float | None = None) -> CleanResult:
    threshold = DEFAULT_OUTLIER_THRESHOLD if outlier_threshold is None else outlier_threshold
    seen = set()
    candidates, rejected, counts = [], [], Counter()
    for record in records:
        problems = []
        if record.image in seen:
            problems = ["duplicate"]
        else:
            seen.add(record.image)
            problems = geometry_problems(record.points, get_scheme(record.scheme), record.width, record.height)
        if problems:
            rejected.append((record, problems))
            counts.update(problems)
        else:
            candidates.append(record)

    kept = []
    by_scheme: dict[str, list[LabelRecord]] = {}
    for record in candidates:
        by_scheme.setdefault(record.scheme, []).append(record)
    for group in by_scheme.values():
        if len(group) < 20:  # too few shapes for statistics to mean anything
            kept.extend(group)
            continue
        z = robust_z(procrustes_residuals(np.stack([r.points for r in group])))
        for record, score in zip(group, z):
            if score > threshold:
                rejected.append((record, [f"shape_outlier (z={score:.1f})"]))
                counts["shape_outlier"] += 1
            else:
                kept.append(record)
    order = {id(r): k for k, r in enumerate(records)}
    kept.sort(key=lambda r: order[id(r)])
    left_out = {}
    for name in by_scheme:
        left_out.update(rules_left_out(get_scheme(name)))
    return CleanResult(kept=kept, rejected=rejected, counts=counts, total=len(records), left_out=left_out)


def clean_label_file(labels: str | Path, out: str | Path, *, report_path: str | Path | None = None,
                     images_dir: str | Path | None = None,
                     outlier_threshold: float | None = None) -> CleanResult:
    """Clean a label file. Malformed lines are skipped and listed in the report (never fatal)."""
    problems: list[str] = []
    records = list(read_labels(labels, skip_bad=True, problems=problems))
    result = clean_records(records, outlier_threshold=outlier_threshold)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in result.kept:
            fh.write(record.to_json() + "\n")
    tmp.replace(out)
    if report_path is not None:
        images_dir = Path(images_dir) if images_dir else Path(labels).parent
        result.report_path = Path(report_path)
        write_report(result, result.report_path, images_dir, bad_lines=problems, labels=labels)
    return result


def write_report(result: CleanResult, path: Path, images_dir: Path, *, bad_lines: list[str],
                 labels) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet_path = path.with_suffix(".png")
    removed = len(result.rejected)
    lines = [f"# Label cleaning report: {labels}", "",
             f"- records read: {result.total} (malformed lines skipped: {len(bad_lines)})",
             f"- kept: {len(result.kept)} ({100 * len(result.kept) / max(result.total, 1):.2f}%)",
             f"- removed: {removed} ({100 * removed / max(result.total, 1):.2f}%; the original work removed 0.5%)",
             "", "| rule | removed | what it means |", "|---|---|---|"]
    for rule, meaning in RULES.items():
        lines.append(f"| {rule} | {result.counts.get(rule, 0)} | {meaning} |")
    lines += ["", "A record breaking several rules is counted under each.", ""]
    if result.left_out:
        lines += ["Not applied, for the layout lacks the regions they need: "
                  + "; ".join(f"{rule} (needs {', '.join(missing)})" for rule, missing in result.left_out.items()),
                  ""]
    if bad_lines:
        lines += ["## Malformed lines", ""] + [f"- {p}" for p in bad_lines[:50]] + [""]
    sheet_path.unlink(missing_ok=True)  # never leave an earlier run's sheet beside this report
    if result.rejected:
        sheet = rejected_contact_sheet(result.rejected, images_dir)
        sheet.save(sheet_path)
        lines += ["## Examples of removed labels", "",
                  f"![rejected examples]({sheet_path.name})", "",
                  "A sample per rule, points drawn as the teacher gave them.", ""]
        lines += ["| image | rules |", "|---|---|"]
        lines += [f"| {r.image} | {', '.join(p)} |" for r, p in result.rejected[:200]]
    path.write_text("\n".join(lines) + "\n")


def rejected_contact_sheet(rejected, images_dir: Path, per_rule: int = 8, seed: int = 0):
    """A sample of up to `per_rule` rejected records for each rule, points drawn on the face."""
    from facemark.drawing import contact_sheet, draw_points
    from facemark.images import ImageError, load_image

    rng = random.Random(seed)
    by_rule: dict[str, list] = {}
    for record, problems in rejected:
        by_rule.setdefault(problems[0].split(" ")[0], []).append((record, problems))
    tiles, captions = [], []
    for rule in RULES:
        group = by_rule.get(rule, [])
        for record, problems in rng.sample(group, min(per_rule, len(group))):
            try:
                image = load_image(images_dir / record.image)
            except ImageError:
                continue
            if record.points is not None and np.isfinite(record.points).all():
                tile = draw_points(image, record.points, get_scheme(record.scheme))
            else:
                from PIL import Image
                tile = Image.fromarray(image)
            tiles.append(tile)
            captions.append(f"{Path(record.image).name[:28]}\n{', '.join(problems)[:30]}")
    return contact_sheet(tiles, captions)
