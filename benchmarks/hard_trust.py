"""Trust on hard photos: does the trust floor drop wrong answers, and not hard right ones?

    python benchmarks/hard_trust.py

Real faces with human labels (30 of ../shared/data/300w/helen_train, evenly spread, as benchmarks/detector.py
takes them), made hard two ways:

- dark: the photo's values scaled to 8 % (0..20 of 255), as a photo taken with too little light and no gain,
  and very dark: to 4 % (0..10);
- cut through the middle: the image cut so that half of the face's points' box width lies left of its left
  edge (benchmarks/detector.py's 50 % border cut).

Each is run with the default trust floor and with none (`min_trust=0`). A face is right when its NME over the
visible points shared with the 68-point labels (over the labelled outer-eye-corner distance) is at most 0.1.
Per condition: faces found with the floor, faces found without it, the faces the floor drops (how many of them
right, their NMEs), and wrong faces kept. Results: benchmarks/results/hard_trust.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facemark.evaluation.scoring import match_face
from facemark.images import load_image
from facemark.labels.annotations import read_pts_folder
from facemark.landmarker import Landmarker
from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS

from report import write_report

REPO = Path(__file__).resolve().parents[1]
HELEN = REPO.parent / "shared" / "data" / "300w" / "helen_train"
RIGHT_NME = 0.1
DARK_SHARE = 0.08


def dark(rgb: np.ndarray, labels: np.ndarray, share: float = DARK_SHARE) -> tuple[np.ndarray, np.ndarray]:
    return np.round(rgb.astype(np.float32) * share).astype(np.uint8), labels


def very_dark(rgb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return dark(rgb, labels, DARK_SHARE / 2)


def cut(rgb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x0, x1 = labels[:, 0].min(), labels[:, 0].max()
    edge = int(round(x0 + 0.5 * (x1 - x0)))
    return np.ascontiguousarray(rgb[:, edge:]), labels - [edge, 0]


CONDITIONS = {"dark (8 %)": dark, "very dark (4 %)": very_dark, "cut through the middle": cut}


def nme(points: np.ndarray, labels: np.ndarray, iod: float) -> float:
    """Mean error over the visible shared points, over the labelled outer-eye-corner distance."""
    predicted, labelled = points[FACE88_ANCHORS], labels[IBUG68_ANCHORS]
    seen = (labelled >= 0).all(axis=1)
    return float(np.linalg.norm(predicted[seen] - labelled[seen], axis=1).mean() / iod)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--title", default="Trust on hard photos")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "hard_trust.md"))
    args = parser.parse_args()

    floored, unfloored = Landmarker(threads=1), Landmarker(threads=1, min_trust=0)
    records = list(read_pts_folder(HELEN))
    records = records[::max(1, len(records) // args.count)][:args.count]
    rows = ["| condition | found (floor) | found (no floor) | dropped by the floor: wrong / right | NME of the right "
            "ones dropped | wrong faces kept | trust of right faces (median) | trust of wrong faces (median) |",
            "|---" * 8 + "|"]
    for name, make in CONDITIONS.items():
        found = found_all = kept_wrong = 0
        dropped_wrong, dropped_right, right_trusts, wrong_trusts = [], [], [], []
        for record in records:
            rgb, labels = make(load_image(HELEN / record.image), record.points)
            iod = float(np.linalg.norm(record.points[36] - record.points[45]))
            every = unfloored.detect(rgb)
            i = match_face([f.points for f in every], labels)
            if i is None:
                continue
            found_all += 1
            error = nme(every[i].points, labels, iod)
            (right_trusts if error <= RIGHT_NME else wrong_trusts).append(every[i].trust)
            kept = floored.detect(rgb)
            j = match_face([f.points for f in kept], labels)
            if j is not None:
                found += 1
                kept_wrong += nme(kept[j].points, labels, iod) > RIGHT_NME
            elif error > RIGHT_NME:
                dropped_wrong.append(error)
            else:
                dropped_right.append(error)
        rows.append(f"| {name} | {found}/{len(records)} | {found_all}/{len(records)} | {len(dropped_wrong)} / "
                    f"{len(dropped_right)} | {', '.join(f'{e:.3f}' for e in sorted(dropped_right)) or '-'} | "
                    f"{kept_wrong} | {np.median(right_trusts) if right_trusts else float('nan'):.2f} | "
                    f"{np.median(wrong_trusts) if wrong_trusts else float('nan'):.2f} |")
        print(rows[-1], flush=True)
    lines = [f"{len(records)} HELEN-train faces; a face is right at NME ≤ {RIGHT_NME} over its visible "
             "shared points; the floor is the default one (facemark.options.DEFAULT_MIN_TRUST, and the higher floors "
             "of faces not surely upright).", "", *rows]
    write_report(args.out, args.title, lines)


if __name__ == "__main__":
    main()
