"""Faces cut by the image's border: found and right, with the detector's border mirrored or black.

    python benchmarks/border_cut.py

60 faces of ../shared/data/300w/helen_train (evenly spread, starting at the sixth), each cut by one of the four
edges so that 30 %, 50 % or 65 % of its labelled points' box lies outside the image. `Landmarker()` with its
defaults (the trust floor included) looks at each cut image three times: as shipped (the detector's border
showing the image mirrored at its edges in its inner half, facemark.detection.blazeface.detector.MIRRORED_BORDER,
and boxes reaching beyond the edge kept from a lower score, EDGE_SCORE_SHARE), without that lower score, and with
a black border (the lower score kept).
The labelled face is matched by position (facemark.evaluation.scoring.match_face); it is right when its NME over
the visible points shared with the 68-point labels (over the labelled outer-eye-corner distance) is at most 0.1.
Results: benchmarks/results/border_cut.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facemark.detection.blazeface import detector as blazeface
from facemark.evaluation.scoring import match_face
from facemark.images import load_image
from facemark.labels.annotations import read_pts_folder
from facemark.landmarker import Landmarker

from hard_trust import HELEN, RIGHT_NME, nme
from report import write_report

REPO = Path(__file__).resolve().parents[1]
SIDES = ("left", "right", "top", "bottom")
SHARES = (0.3, 0.5, 0.65)


def cut_by(rgb: np.ndarray, labels: np.ndarray, side: str, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The image cut by its `side` edge so that `share` of the labels' box lies outside it, and the labels moved
    into the cut image's pixels."""
    x0, y0 = labels.min(axis=0)
    x1, y1 = labels.max(axis=0)
    if side == "left":
        edge = int(round(x0 + share * (x1 - x0)))
        return rgb[:, edge:], labels - [edge, 0]
    if side == "right":
        return rgb[:, :int(round(x1 - share * (x1 - x0)))], labels
    if side == "top":
        edge = int(round(y0 + share * (y1 - y0)))
        return rgb[edge:], labels - [0, edge]
    return rgb[:int(round(y1 - share * (y1 - y0)))], labels


def count(landmarker: Landmarker, records: list, side: str, share: float) -> tuple[int, int]:
    """(faces found, faces right) over `records` cut by `side` at `share`."""
    found = right = 0
    for record in records:
        rgb, labels = cut_by(load_image(HELEN / record.image), record.points, side, share)
        iod = float(np.linalg.norm(record.points[36] - record.points[45]))
        faces = landmarker.detect(np.ascontiguousarray(rgb))
        i = match_face([f.points for f in faces], labels)
        if i is not None:
            found += 1
            right += nme(faces[i].points, labels, iod) <= RIGHT_NME
    return found, right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "border_cut.md"))
    args = parser.parse_args()

    records = list(read_pts_folder(HELEN))
    records = records[5::max(1, len(records) // args.count)][:args.count]
    landmarker = Landmarker(threads=1)
    shipped = blazeface.MIRRORED_BORDER, blazeface.EDGE_SCORE_SHARE
    settings = {"as shipped": shipped, "no lower edge score": (True, 1.0), "black border": (False, shipped[1])}
    rows = ["| edge | cut | " + " | ".join(f"{name}: found | right" for name in settings) + " |",
            "|---" * (2 + 2 * len(settings)) + "|"]
    totals = {}
    for side in SIDES:
        for share in SHARES:
            cells = []
            for name, (mirrored, edge_share) in settings.items():
                blazeface.MIRRORED_BORDER, blazeface.EDGE_SCORE_SHARE = mirrored, edge_share
                found, right = count(landmarker, records, side, share)
                totals[share, name] = np.add(totals.get((share, name), (0, 0)), (found, right))
                cells += [f"{found}/{len(records)}", str(right)]
            blazeface.MIRRORED_BORDER, blazeface.EDGE_SCORE_SHARE = shipped
            rows.append(f"| {side} | {share:.0%} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    n = len(SIDES) * len(records)
    for share in SHARES:
        cells = [f"{totals[share, name][0]}/{n} | {totals[share, name][1]}" for name in settings]
        rows.append(f"| all four | {share:.0%} | " + " | ".join(cells) + " |")
    lines = [f"{len(records)} HELEN-train faces, each cut by each edge; `Landmarker()` defaults, trust floor included. "
             f"Found: the labelled face matched by position; right: NME ≤ {RIGHT_NME} over its visible shared "
             "points. As shipped: the inner half of the detector's border shows the image mirrored at its edges, and a "
             f"box reaching beyond the edge is kept from {shipped[1]:g} of the detector's min_score; no lower edge "
             "score: every box needs min_score (the code before); black border: the border not mirrored.", "", *rows]
    write_report(args.out, "Faces cut by the image's border", lines)


if __name__ == "__main__":
    main()
