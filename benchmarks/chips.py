"""Aligned face chips (facemark.geometry.chips): do the five points land on the template?

    python benchmarks/chips.py        # writes benchmarks/results/chips.md

1. Exactness of the cut: images of five bright blobs placed at an exact similarity image of the template (random
   rotations ±60°, scales 0.5-4, sub-pixel shifts), chipped for each template and size; the blobs' centroids in
   the chip against the template (the warp's pixel convention is what decides this; target ≤ 0.5 px).
2. Real faces (AFW): the mean distance between a face's five points mapped into the chip and the template (the
   least-squares residual: how far a real face's proportions are from the template's), in chip pixels.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from facemark.geometry.chips import aligned_chip, template_points
from facemark.layouts import FACE88

from blobs import blob_centre, blob_image, face88_with_five
from report import write_report

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50, help="random similarities per template and size")
    parser.add_argument("--pts-dir", default=str(REPO.parent / "shared" / "data" / "300w" / "afw"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "chips.md"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    lines = ["## 1. The cut itself (blobs at an exact similarity image of the template)", "",
             "| template | size | cases | mean error | max error |", "|---|---|---|---|---|"]
    worst = 0.0
    for template, size in [("arcface", 112), ("arcface", 224), ("square", 112), ("square", 256)]:
        target = template_points(template, size)
        errors = []
        for _ in range(args.cases):
            a, scale = math.radians(rng.uniform(-60, 60)), rng.uniform(0.5, 4.0)
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            five = (target * (112 / size)) @ (scale * rot).T
            five += rng.uniform(40, 60, 2) - five.min(axis=0)
            image = blob_image(five, size=(int(five[:, 0].max() + 60), int(five[:, 1].max() + 60)), sigma=2.0)
            chip = aligned_chip(image, face88_with_five(five), FACE88, size=size, template=template)
            found = np.array([blob_centre(chip.image, t, radius=max(4, size // 20)) for t in target])
            errors.append(np.linalg.norm(found - target, axis=1))
        e = np.concatenate(errors)
        worst = max(worst, float(e.max()))
        lines.append(f"| {template} | {size} | {args.cases} | {e.mean():.3f} px | {e.max():.3f} px |")
    lines += ["", f"**Worst point: {worst:.3f} px** (target ≤ 0.5 px).", ""]

    pts_dir = Path(args.pts_dir)
    if pts_dir.is_dir():
        from facemark.labels.annotations import read_pts_folder
        from facemark.landmarker import Landmarker
        from facemark.images import load_image

        landmarker = Landmarker(threads=1, trust=False)
        residuals = []
        for r in read_pts_folder(pts_dir):
            rgb = load_image(pts_dir / r.image)
            for face in landmarker.detect(rgb)[:1]:
                residuals.append(face.chip().residual)
        res = np.array(residuals)
        lines += ["## 2. Real faces (AFW, facemark's points, ArcFace 112)", "",
                  f"{len(res)} faces: the five points land on average {res.mean():.2f} px from the template "
                  f"(median {np.median(res):.2f}, 90th percentile {np.percentile(res, 90):.2f}); a similarity "
                  "cannot bend a face to the template's proportions, and no one asks it to.", ""]
    write_report(args.out, "Aligned chips: the five points against the template", lines)


if __name__ == "__main__":
    main()
