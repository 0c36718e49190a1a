"""Each teacher, and the ensemble, against human labels (issue 20): which one to train on, measured.

    OMP_NUM_THREADS=1 python benchmarks/teachers.py              # needs scripts/observe_teachers.py's files
    OMP_NUM_THREADS=1 python benchmarks/teachers.py --write-params work/teacher_adult.json

The observations come from `scripts/observe_teachers.py --pts` on `work/human68/{afw,helen,lfpw}` (all 2,012
adult faces), `work/human68_val/...` (the 234 held out by `scripts/make_human_split.py`) and
`../shared/data/infants` (210), with dlib run on the image upscaled twice (its points are whole pixels).

dlib's 68-point model was trained on 300-W's training faces: AFW, HELEN train and LFPW train are all in it,
so on the adult sets dlib is scored on faces it learned from, and an ensemble fitted there leans on dlib more
than unseen faces would justify. The infants are the faces neither teacher saw.

Scores: NME over the 34 points face88 shares with iBUG-68 (and over all 68 for dlib), normalised by the
person's outer eye corners (iBUG 36, 45); mean over the faces every compared teacher found. Teachers:
MediaPipe Face Mesh; dlib on its own HOG rectangle; dlib on the rectangle mapped from MediaPipe's points (the
fallback where HOG misses; the mapping is fitted on the adult training faces); the shipped ensemble (fitted on
infants); the ensemble refitted on the adult training faces (`fit_ensemble`, "robust", gate "auto").
Writes `benchmarks/results/teachers.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from facemark.labels.annotations import read_pts
from facemark.labels.ensemble import (EnsembleParams, combine, ensemble_ibug68, fit_box_map, fit_ensemble,
                               map_box, uses_dlib)
from facemark.pipeline.crops import box_from_points
from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS

from report import command_line, write_report

REPO = Path(__file__).resolve().parents[1]

SETS = [("AFW", "afw"), ("HELEN train", "helen"), ("LFPW train", "lfpw")]


def load_obs(path: Path) -> dict[str, dict]:
    return {d["image"]: d for d in map(json.loads, path.read_text().splitlines())} if path.is_file() else {}


def faces(obs: dict[str, dict], root: Path, exclude: set[str] = frozenset()) -> list[dict]:
    out = []
    for name, d in sorted(obs.items()):
        if name in exclude or "error" in d and "width" not in d:
            continue
        truth = read_pts(root / (name.rsplit(".", 1)[0] + ".pts"))
        out.append({"name": name, "root": root, "truth": truth,
                    "mp88": None if d["mediapipe88"] is None else np.array(d["mediapipe88"]),
                    "dlib68": None if d["dlib68"] is None else np.array(d["dlib68"]), "hog": d["hog"]})
    return out


def nme(pred: np.ndarray, truth68: np.ndarray, idx=None) -> float:
    t = truth68 if idx is None else truth68[idx]
    return float(np.linalg.norm(pred - t, axis=1).mean() / np.linalg.norm(truth68[36] - truth68[45]))


def mapped_dlib(rows: list[dict], mapping) -> None:
    """dlib's predictor on the rectangle mapped from MediaPipe's points, for every face MediaPipe found."""
    from facemark.images import load_image
    from facemark.labels.teachers import DlibTeacher

    teacher = DlibTeacher(fallback=None)
    for r in rows:
        if r["mp88"] is None:
            r["mapped68"] = None
            continue
        big = teacher.upscaled(load_image(r["root"] / r["name"]), 2)  # as observe_teachers.py runs dlib
        r["mapped68"] = teacher.shape_upscaled(big, map_box(box_from_points(r["mp88"]), mapping), 2)


def score_rows(rows: list[dict], teachers: dict) -> dict[str, tuple[float, float, int]]:
    """name -> (mean NME 34 points, mean NME 68 (NaN where the teacher has no 68), faces) on the faces every
    teacher in `teachers` (name -> function(row) -> (68, 2) or (34, 2) points or None) answered."""
    answers = {k: [f(r) for r in rows] for k, f in teachers.items()}
    common = [i for i in range(len(rows)) if all(a[i] is not None for a in answers.values())]
    out = {}
    for k, a in answers.items():
        e34 = [nme(a[i][IBUG68_ANCHORS] if len(a[i]) == 68 else a[i], rows[i]["truth"], IBUG68_ANCHORS)
               for i in common]
        e68 = [nme(a[i], rows[i]["truth"]) for i in common if len(a[i]) == 68]
        out[k] = (float(np.mean(e34)) if e34 else np.nan, float(np.mean(e68)) if e68 else np.nan, len(common))
    return out


def teacher_functions(shipped: EnsembleParams, adult: EnsembleParams) -> dict:
    def mp(r):
        return None if r["mp88"] is None else r["mp88"][FACE88_ANCHORS]

    def ens(params):
        def f(r):
            if r["dlib68"] is None or r["mp88"] is None:
                return None
            if not uses_dlib(params, r["dlib68"][IBUG68_ANCHORS], r["mp88"][FACE88_ANCHORS]):
                return combine(params, None, r["mp88"][FACE88_ANCHORS])
            return ensemble_ibug68(params, r["dlib68"], r["mp88"])
        return f

    return {"MediaPipe": mp, "dlib (HOG rectangle)": lambda r: r["dlib68"],
            "dlib (MediaPipe-mapped rectangle)": lambda r: r.get("mapped68"),
            "ensemble, shipped (fitted on infants)": ens(shipped),
            "ensemble, refitted on adult training faces": ens(adult)}


def pct(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{100 * v:.2f}%"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--obs", default=str(REPO / "work" / "teacher_obs"), help="observations folder")
    p.add_argument("--human", default=str(REPO / "work" / "human68"), help="all adult human labels (.pts)")
    p.add_argument("--human-val", default=str(REPO / "work" / "human68_val"), help="the held-out part")
    p.add_argument("--infants", default=str(REPO.parent / "shared" / "data" / "infants"))
    p.add_argument("--write-params", help="write the adult-refitted ensemble parameters here (JSON)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "teachers.md"))
    a = p.parse_args()
    obs = Path(a.obs)
    sets = {}
    for title, key in SETS:
        val = load_obs(obs / f"val_{key}.jsonl")
        sets[f"{title}, held out"] = faces(val, Path(a.human_val) / key)
        sets[f"{title}, training part"] = faces(load_obs(obs / f"train_{key}.jsonl"), Path(a.human) / key, set(val))
    sets["infants"] = faces(load_obs(obs / "infants.jsonl"), Path(a.infants))
    if not all(sets.values()):
        sys.exit("error: missing observations; run scripts/observe_teachers.py first (see the docstring)")
    train = [r for k, rows in sets.items() if k.endswith("training part") for r in rows]

    # the fallback rectangle and the adult ensemble: fitted on the adult training faces only
    both = [r for r in train if r["mp88"] is not None and r["dlib68"] is not None]
    rect_map = _fit_rect_map(train)
    adult = fit_ensemble(np.stack([r["dlib68"][IBUG68_ANCHORS] for r in both]),
                         np.stack([r["mp88"][FACE88_ANCHORS] for r in both]),
                         np.stack([r["truth"][IBUG68_ANCHORS] for r in both]), "robust", "auto")
    adult.box_to_dlib_rect = {"mediapipe": rect_map}
    adult.notes = {"fitted_on": f"{len(both)} adult training faces of AFW + HELEN train + LFPW train "
                                "(dlib trained on them: its weights are optimistic)",
                   "command": "python benchmarks/teachers.py --write-params PATH"}
    if a.write_params:
        adult.save(a.write_params)
    shipped = EnsembleParams.load()
    for rows in sets.values():
        mapped_dlib(rows, rect_map)
    fns = teacher_functions(shipped, adult)

    lines = [__doc__.split("\n\n", 2)[2].split("Writes")[0].strip(), "",
             "## Who finds the face", "",
             "| set | faces | MediaPipe | dlib HOG | both |", "|---|---|---|---|---|"]
    for k, rows in sets.items():
        n = len(rows)
        m = sum(r["mp88"] is not None for r in rows)
        d = sum(r["dlib68"] is not None for r in rows)
        b = sum(r["mp88"] is not None and r["dlib68"] is not None for r in rows)
        lines.append(f"| {k} | {n} | {m} ({100 * m / n:.1f}%) | {d} ({100 * d / n:.1f}%) | {b} |")
    lines += ["", "## NME on the faces both teachers found (34 shared points / all 68)", "",
              "| set | faces | " + " | ".join(fns) + " |", "|---|---|" + "---|" * len(fns)]
    for k, rows in sets.items():
        s = score_rows(rows, fns)
        n = next(iter(s.values()))[2]
        lines.append(f"| {k} | {n} | " + " | ".join(
            pct(v[0]) + ("" if not np.isfinite(v[1]) else f" / {pct(v[1])}") for v in s.values()) + " |")
    lines += ["", "## Where HOG misses the face: MediaPipe vs dlib on the mapped rectangle (34 points)", "",
              "| set | faces | MediaPipe | dlib (mapped rectangle) |", "|---|---|---|---|"]
    for k, rows in sets.items():
        missed = [r for r in rows if r["dlib68"] is None and r["mp88"] is not None]
        if not missed:
            lines.append(f"| {k} | 0 | – | – |")
            continue
        s = score_rows(missed, {"m": fns["MediaPipe"], "d": fns["dlib (MediaPipe-mapped rectangle)"]})
        lines.append(f"| {k} | {s['m'][2]} | {pct(s['m'][0])} | {pct(s['d'][0])} |")
    lines += ["", f"Adult refit: gate (largest dlib–MediaPipe disagreement kept) {adult.max_disagreement:g}; "
              f"mean dlib weight {adult.weights.mean():.2f} (min {adult.weights.min():.2f}, max "
              f"{adult.weights.max():.2f}). Mapping MediaPipe points box → dlib HOG rectangle "
              f"(centre shift x, y; width, height ratios): {tuple(round(v, 3) for v in rect_map)}."]
    write_report(a.out, "Teachers against human labels", lines, command=f"OMP_NUM_THREADS=1 {command_line()}")


def _fit_rect_map(train: list[dict]):
    """MediaPipe points box -> HOG rectangle, from the HOG rectangles of the adult training faces both teachers
    found (the rectangle overlapping the dlib points box most is the face's)."""
    from facemark.detection.nms import box_overlap

    a, b = [], []
    for r in train:
        if r["mp88"] is None or r["dlib68"] is None or not r["hog"]:
            continue
        rects = np.asarray(r["hog"], np.float64)
        iou = box_overlap(np.asarray(box_from_points(r["dlib68"])), rects)
        a.append(box_from_points(r["mp88"]))
        b.append(rects[int(iou.argmax())])
    return fit_box_map(np.array(a), np.array(b))


if __name__ == "__main__":
    main()
