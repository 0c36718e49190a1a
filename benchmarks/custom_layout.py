"""A layout of your own against face88 on held-out faces, through the whole pipeline (detector included).

    python benchmarks/custom_layout.py --cache work/five_cache --layout examples/layouts/five_points.json \
        --model runs/five/five.onnx [--reference face88] [--images DIR]

The held-out faces are the cache's validation split. Truth: the cache's labels, read back from the label
source it names (.pts folders are converted through the layout's from_ibug68; a teacher's label file is taken
as it is). The reference model's points are put into the layout the same way: a face88 prediction through the
layout's from_mediapipe table is not possible, so the reference is scored on the points it can give:
- for a layout made from iBUG-68 indices: face88's points through face88's own from_ibug68 correspondence
  where every index a point needs is shared, else by facemark.geometry.chips.five_points for the standard five;
- for a layout made from Face Mesh vertices: face88's points whose vertex the layout point uses alone.
NME: mean point error over the distance between the layout's two normalising points, per face, then averaged.
Prints a Markdown table and writes it to benchmarks/results/custom_layout_<layout>.md unless --no-write
(--images: the images folder of a cache made from a label file).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from facemark import Landmarker
from facemark.labels.annotations import as_layout, read_labels, read_pts_folder
from facemark.layouts import load_layout
from facemark.layouts import FACE88
from report import header, write_report

RESULTS = Path(__file__).parent / "results"


def truth_records(meta: dict, layout, images: str | None) -> dict:
    labels = Path(meta["labels"])
    if labels.is_dir():
        return {r.image: (labels / r.image, as_layout(r, layout).points)
                for r in read_pts_folder(labels, layout)}
    root = Path(images or labels.parent)
    return {r.image: (root / r.image, r.points) for r in read_labels(labels) if r.points is not None}


def reference_map(layout) -> tuple[list[int], list[int]]:
    """(layout points, face88 points) that correspond one to one, from the two layouts' files."""
    pairs = []
    for source in ("ibug68", "mediapipe"):
        mine, ref = layout.source(source), FACE88.source(source)
        if mine is None or ref is None:
            continue
        lookup = {idx: i for i, idx in enumerate(ref) if idx is not None}
        pairs = [(p, lookup[idx]) for p, idx in enumerate(mine) if idx is not None and idx in lookup]
        if pairs:
            break
    return [p for p, _ in pairs], [r for _, r in pairs]


def nearest_face(faces, truth):
    if not faces:
        return None
    centre = np.nanmean(truth, axis=0)
    return min(faces, key=lambda f: np.linalg.norm(np.nanmean(f.points, axis=0) - centre))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--layout", required=True)
    ap.add_argument("--model", required=True, help="the layout's model (.onnx or .pt)")
    ap.add_argument("--reference", default="face88")
    ap.add_argument("--images", default=None, help="images folder of a label-file cache")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    layout = load_layout(args.layout)
    meta = json.loads((Path(args.cache) / "meta.json").read_text())
    val = np.load(Path(args.cache) / "val.npy")
    names = [n for n, v in zip(meta["images"], val) if v]
    truth = truth_records(meta, layout, args.images)
    mine, ref = Landmarker(model=args.model, threads=1), Landmarker(model=args.reference, threads=1)
    five = layout.num_points == 5 and layout.source("ibug68") is not None
    ours_p, ref_p = reference_map(layout)
    rows = {"mine": [], "ref": [], "mine_on_ref_points": []}
    missed = {"mine": 0, "ref": 0}
    seconds = {"mine": 0.0, "ref": 0.0}
    for name in names:
        path, gt = truth[name]
        norm = np.linalg.norm(gt[layout.normaliser[0]] - gt[layout.normaliser[1]])
        for key, lm in (("mine", mine), ("ref", ref)):
            t = time.perf_counter()
            face = nearest_face(lm.detect(str(path)), gt)
            seconds[key] += time.perf_counter() - t
            if face is None:
                missed[key] += 1
                continue
            if key == "mine":
                err = np.linalg.norm(face.points - gt, axis=1) / norm
                rows["mine"].append(np.nanmean(err))
                if ours_p:
                    rows["mine_on_ref_points"].append(np.nanmean(err[ours_p]))
            elif five:
                from facemark.geometry.chips import five_points
                rows["ref"].append(np.mean(np.linalg.norm(five_points(face.points, face.scheme) - gt, axis=1)) / norm)
            elif ours_p:
                rows["ref"].append(np.mean(np.linalg.norm(face.points[ref_p] - gt[ours_p], axis=1)) / norm)
    n = len(names)
    lines = ["| model | points scored | faces found | NME | time per image |", "|---|---|---|---|---|"]
    lines.append(f"| {Path(args.model).name} | all {layout.num_points} | {n - missed['mine']} | "
                 f"{100 * np.mean(rows['mine']):.2f}% | {1000 * seconds['mine'] / n:.0f} ms |")
    if five:
        what = "the standard five (eye centres: the mean of face88's eye points)"
    else:
        what = f"the {len(ours_p)} points face88 has too"
        if rows["mine_on_ref_points"]:
            lines.append(f"| {Path(args.model).name} | {what} | {n - missed['mine']} | "
                         f"{100 * np.mean(rows['mine_on_ref_points']):.2f}% | |")
    if rows["ref"]:
        lines.append(f"| {args.reference} | {what} | {n - missed['ref']} | {100 * np.mean(rows['ref']):.2f}% | "
                     f"{1000 * seconds['ref'] / n:.0f} ms |")
    lines += ["", f"NME over the distance between the layout's normalising points ({layout.normaliser[0]}, "
              f"{layout.normaliser[1]}); one thread; faces found by the default detector."]
    title = f"{layout.name}: {Path(args.model).name} against {args.reference} on {n} held-out faces"
    if args.no_write:
        print("\n".join(header(title) + lines))
    else:
        write_report(RESULTS / f"custom_layout_{layout.name}.md", title, lines)


if __name__ == "__main__":
    main()
