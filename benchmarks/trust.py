"""Does the trust score (facemark.pipeline.trust) predict how wrong a face's points are?

    python benchmarks/trust.py --pts-dir work/human68_val   # writes benchmarks/results/trust.md

On faces with human 68-point labels that the model never trained on: since session 5 the built-in models train
on AFW, HELEN train and LFPW train but their validation identities, which `scripts/make_human_split.py` links into
work/human68_val (234 faces; the default, AFW, is held out only for models trained before). Each face the
Landmarker finds (min_trust=0, so every face found is scored; matched to the annotated face by point-box
overlap, facemark.evaluation.scoring) gets its NME over the 34
points face88 shares with iBUG, normalised by the human outer eye corners, and its trust score. Reported:
Spearman's rank correlation between (1 - trust) and NME (the target: ≥ 0.5), the NME of all faces and of those
kept at the trust threshold that keeps 95% of them, and at a few fixed thresholds. Also the trust of faces made
wrong on purpose: the same AFW faces upside down (first crop upright, as a detector box gives it), boxes
shifted by half a face, boxes three times too large, and crops of noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facemark.labels.annotations import read_pts_folder
from facemark.images import load_image
from facemark.pipeline.crops import box_from_points
from facemark.layouts import IBUG68
from facemark.evaluation.scoring import match_face, nme_against_ibug68
from report import write_report

REPO = Path(__file__).resolve().parents[1]


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).correlation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pts-dir", default=str(REPO.parent / "shared" / "data" / "300w" / "afw"))
    parser.add_argument("--model", default=None, help="facemark weights (default: the built-in face88)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "trust.md"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    from facemark.landmarker import Landmarker

    landmarker = Landmarker(args.model, threads=args.threads, min_trust=0)  # every face found is scored
    one_pass = Landmarker(args.model, threads=args.threads, refine=False, trust=False)
    upside_nme: list[float] = []
    pts_dir = Path(args.pts_dir)
    records = [r for r in read_pts_folder(pts_dir) if r.scheme == "ibug68"]
    nmes, trusts, broken = [], [], {"upside down": [], "box shifted by half a face": [],
                                    "box 3× too large": [], "noise": []}
    rng = np.random.default_rng(0)
    for i, r in enumerate(records):
        rgb = load_image(pts_dir / r.image)
        faces = landmarker.detect(rgb)
        k = match_face([f.points for f in faces], r.points)
        if k is not None:
            nmes.append(nme_against_ibug68(faces[k].points, "face88", r.points, "anchors34"))
            trusts.append(faces[k].trust)
        # the annotated face made wrong on purpose: boxes from the human points
        x0, y0, x1, y1 = box_from_points(r.points)
        w, h = x1 - x0, y1 - y0
        height = rgb.shape[0]
        cases = {
            "upside down": (np.ascontiguousarray(rgb[::-1]), (x0, height - 1 - y1, x1, height - 1 - y0)),
            "box shifted by half a face": (rgb, (x0 + w / 2, y0 + h / 2, x1 + w / 2, y1 + h / 2)),
            "box 3× too large": (rgb, (x0 - w, y0 - h, x1 + w, y1 + h)),
            "noise": (rng.integers(0, 256, rgb.shape, dtype=np.uint8), (x0, y0, x1, y1)),
        }
        for name, (image, box) in cases.items():
            # upside down: one pass, so the network itself must read the upside-down crop (the Landmarker's
            # refinement would turn the crop by the points' roll)
            points = (one_pass if name == "upside down" else landmarker).landmarks_for_boxes(image, [box])
            broken[name].append(landmarker.trust_scores(image, points)[0])
            if name == "upside down":  # how wrong are those points? (either left/right naming)
                truth = r.points.copy()
                truth[:, 1] = height - 1 - truth[:, 1]
                upside_nme.append(min(nme_against_ibug68(points[0], "face88", t, "anchors34")
                                      for t in (truth, truth[list(IBUG68.flip)])))
        if not args.quiet and (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(records)}", file=sys.stderr, flush=True)

    nmes, trusts = np.array(nmes), np.array(trusts)
    rho = spearman(1 - trusts, nmes)
    keep95 = float(np.quantile(trusts, 0.05))
    kept = trusts >= keep95
    lines = [f"Model: {args.model or 'face88'}.", "",
             f"{len(nmes)} of the {len(records)} annotated faces of `{pts_dir.name}` found (human labels, never "
             "trained on); NME over the 34 points face88 shares with iBUG, normalised by the human outer eye "
             "corners.", "",
             f"**Spearman rank correlation between (1 − trust) and NME: {rho:.3f}** (target ≥ 0.5).", "",
             "| faces kept | trust threshold | share kept | mean NME | NME 90th pct | NME > 0.10 |",
             "|---|---|---|---|---|---|",
             f"| all | – | 100% | {100 * nmes.mean():.2f}% | {100 * np.percentile(nmes, 90):.2f}% | "
             f"{(nmes > 0.1).sum()} |"]
    for label, threshold in [("95%", keep95), ("trust ≥ 0.5", 0.5), ("trust ≥ 0.3", 0.3)]:
        k = trusts >= threshold
        lines.append(f"| {label} | {threshold:.3f} | {100 * k.mean():.1f}% | {100 * nmes[k].mean():.2f}% | "
                     f"{100 * np.percentile(nmes[k], 90):.2f}% | {(nmes[k] > 0.1).sum()} |")
    lines += ["", f"The 5% with the lowest trust: mean NME {100 * nmes[~kept].mean():.2f}% "
              f"(the rest {100 * nmes[kept].mean():.2f}%).", "",
              "Faces made wrong on purpose (the same annotated faces; first crop from the box given):", "",
              "| case | faces | mean trust | share under 0.5 | share under the 95% threshold |", "|---|---|---|---|---|",
              f"| real faces (above) | {len(trusts)} | {trusts.mean():.3f} | {100 * (trusts < 0.5).mean():.1f}% | 5.0% |"]
    for name, values in broken.items():
        v = np.array(values)
        lines.append(f"| {name} | {len(v)} | {v.mean():.3f} | {100 * (v < 0.5).mean():.1f}% | "
                     f"{100 * (v < keep95).mean():.1f}% |")
    u, un = np.array(broken["upside down"]), np.array(upside_nme)
    wrong = un > 0.10
    lines += ["", f"Upside down, the network's one pass gets {100 * (~wrong).mean():.1f}% of the faces right anyway "
              f"(NME ≤ 0.10; median NME {100 * np.median(un):.1f}%): trust follows the points, not the "
              f"orientation: mean trust {u[~wrong].mean() if (~wrong).any() else float('nan'):.3f} where they are "
              f"right, {u[wrong].mean() if wrong.any() else float('nan'):.3f} where they are wrong "
              f"({wrong.sum()} faces), of which {100 * (u[wrong] < keep95).mean() if wrong.any() else float('nan'):.0f}% "
              "fall under the 95% threshold. (`Landmarker.detect` finds upside-down faces turned and turns their "
              "crops upright, so their points are right and trusted.)"]
    from facemark.pipeline.trust import TRUST_SCALE

    d93 = float(np.percentile(-TRUST_SCALE * np.log(np.clip(trusts, 1e-300, 1.0)), 93))
    lines += ["", f"Calibration (facemark.pipeline.trust.TRUST_SCALE = {TRUST_SCALE}): the 93rd percentile of these faces' "
              f"disagreement is {d93:.4f}; trust is 0.5 there with TRUST_SCALE = {d93 / np.log(2):.4f}."]
    write_report(args.out, "Trust score against actual error", lines)


if __name__ == "__main__":
    main()
