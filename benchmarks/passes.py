"""Landmark passes on human labels: accuracy, faces missed, batches per face and the trust of real faces.

    python benchmarks/passes.py --pts-dir ../shared/data/300w/afw ../shared/data/infants --out benchmarks/results/passes

For each folder of images with 68-point `.pts` files: `Landmarker()` with its defaults (one batch per face where
the detector's framing is good, a refining pass elsewhere: facemark.pipeline.passes) and, with `--always-refine`, every
face refined (the framing tolerances set to zero, as before issue 21). The labelled face is matched by position
(facemark.evaluation.scoring.match_face). Per set: faces, not found, anchors34 NME (face88's 34 points shared with iBUG),
failure rate at 0.1, the share of faces that took a refining pass, and Spearman's rank correlation of
(1 - trust) with the NME. The trust of every matched face is written to <out>_trust.json (for the default trust
floor: benchmarks/false_faces.py). Writes <out>.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from facemark.labels.annotations import read_pts_folder
from facemark.images import load_image
from facemark.evaluation.scoring import match_face, nme_against_ibug68, summarise
from report import write_report

REPO = Path(__file__).resolve().parents[1]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (no tie correction: trusts and NMEs are continuous)."""
    if len(a) < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def run_set(landmarker, folder: Path, limit: int | None) -> dict:
    import facemark.pipeline.passes as passes

    batches_seen = []
    original = passes.LandmarkPasses.run

    def counting(self, crop, transforms):
        result = original(self, crop, transforms)
        batches_seen.append(result.batches)
        return result

    passes.LandmarkPasses.run = counting
    try:
        nmes, trusts, refined, seconds = [], [], [], []
        records = list(read_pts_folder(folder))[:limit]
        for record in records:
            rgb = load_image(folder / record.image)
            batches_seen.clear()
            start = time.perf_counter()
            faces = landmarker.detect(rgb)
            seconds.append(time.perf_counter() - start)
            i = match_face([f.points for f in faces], record.points)
            if i is None:
                nmes.append(None)
                continue
            nmes.append(nme_against_ibug68(faces[i].points, landmarker.scheme.name, record.points, "anchors34"))
            trusts.append(faces[i].trust)
            refined.append(any(b > 1 for run in batches_seen for b in run))
    finally:
        passes.LandmarkPasses.run = original
    summary = summarise(nmes)
    found = np.array([v for v in nmes if v is not None])
    summary.update(refined=float(np.mean(refined)) if refined else float("nan"),
                   spearman=spearman(1 - np.array(trusts, float), found),
                   ms=1000 * float(np.median(seconds)), trusts=[float(t) for t in trusts],
                   nmes=[float(v) for v in found])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pts-dir", nargs="+", required=True, help="folders of images with .pts files")
    parser.add_argument("--model", default=None, help="weights (default: face88)")
    parser.add_argument("--always-refine", action="store_true", help="also run with every face refined")
    parser.add_argument("--limit", type=int, default=None, help="first N faces of each set")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "passes"))
    args = parser.parse_args()

    import facemark.pipeline.passes as passes
    from facemark.landmarker import Landmarker

    configs = [("default (one batch where framing is good)", {})]
    if args.always_refine:
        configs.append(("every face refined", {"FRAMING_SHIFT": 0.0, "FRAMING_SCALE": 0.0, "FRAMING_ROLL": 0.0}))
    rows, trust_dump = [], {}
    for name, overrides in configs:
        saved = {k: getattr(passes, k) for k in overrides}
        for k, v in overrides.items():
            setattr(passes, k, v)
        try:
            landmarker = Landmarker(model=args.model, min_trust=0)
            for folder in map(Path, args.pts_dir):
                s = run_set(landmarker, folder, args.limit)
                rows.append((name, folder.name, s))
                trust_dump[f"{name} / {folder.name}"] = {"trust": s["trusts"], "nme": s["nmes"]}
                print(f"{name:45s} {folder.name:12s} faces {s['faces']:4d} missed {s['not_found']:3d} "
                      f"NME {100 * s['nme']:.2f}% FR {100 * s['failure_rate@0.1']:.1f}% refined "
                      f"{100 * s['refined']:.0f}% spearman {s['spearman']:.3f} {s['ms']:.1f} ms", flush=True)
        finally:
            for k, v in saved.items():
                setattr(passes, k, v)
    lines = [f"Model {args.model or 'face88'}, `Landmarker(min_trust=0)` (every face found is scored). NME over the 34 "
             "points face88 shares with iBUG, normalised by the human outer eye corners; the labelled face "
             "matched by position. Spearman: rank correlation of (1 - trust) with the NME.", "",
             "| passes | set | faces | not found | NME | FR@0.1 | faces refined | Spearman | median ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, folder, s in rows:
        lines.append(f"| {name} | {folder} | {s['faces']} | {s['not_found']} | {100 * s['nme']:.2f}% | "
                     f"{100 * s['failure_rate@0.1']:.1f}% | {100 * s['refined']:.0f}% | {s['spearman']:.3f} | "
                     f"{s['ms']:.1f} |")
    write_report(args.out + ".md", "Landmark passes on human labels", lines)
    Path(args.out + "_trust.json").write_text(json.dumps(trust_dump))


if __name__ == "__main__":
    main()
