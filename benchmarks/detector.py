"""Face detectors on human-annotated faces: share of faces found and milliseconds per image.

    python benchmarks/detector.py --data ../shared/data/300w --threads 2

A face counts as found when some detection, mapped to the landmark box the detector is calibrated for
(`detector.landmark_box`), overlaps the box of the annotated 68 points with IoU ≥ 0.5. Every `.pts` file is
one face (300-W crops hold one annotated face each, sometimes with other people around it).
Writes benchmarks/results/detector.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from facemark.annotations import read_pts
from facemark.detection import create_detector
from facemark.detection.nms import box_overlap
from facemark.images import load_image
from facemark.preprocessing import box_from_points


def iou(a, b) -> float:
    return float(box_overlap(np.asarray(a, float), np.asarray([b], float))[0])


def faces_of(folder: Path) -> list[tuple[Path, np.ndarray]]:
    """(image, 68 points) for every .pts file; images are the .jpg/.png of the same name up to '_N'."""
    pairs = []
    for pts in sorted(folder.rglob("*.pts")):
        for suffix in (".jpg", ".png", ".ppm"):
            image = pts.with_suffix(suffix)
            if image.exists():
                pairs.append((image, read_pts(pts)))
                break
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/300w")
    parser.add_argument("--detectors", nargs="*", default=["mtcnn", "mediapipe"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/detector.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    subsets = sorted(p for p in data.iterdir() if p.is_dir()) or [data]
    rows = []
    for name in args.detectors:
        try:
            detector = create_detector(name)
        except RuntimeError as e:
            rows.append((name, "-", f"not available: {e}", "", "", ""))
            continue
        for subset in subsets:
            faces = faces_of(subset)
            found, times, misses = 0, [], []
            for image_path, points in faces:
                rgb = load_image(image_path)
                start = time.perf_counter()
                detections = detector.detect(rgb)
                times.append(time.perf_counter() - start)
                target = box_from_points(points)
                if any(iou(detector.landmark_box(d.box), target) >= 0.5 for d in detections):
                    found += 1
                else:
                    misses.append(image_path.name)
            rows.append((name, subset.name, f"{found}/{len(faces)}", f"{100 * found / max(len(faces), 1):.1f}%",
                         f"{1000 * np.median(times):.1f}", ", ".join(misses[:6]) + (" …" if len(misses) > 6 else "")))
            print(rows[-1], flush=True)
        detector.close()
    lines = ["# Face detectors on 300-W (human-annotated faces)", "",
             f"`python {' '.join(sys.argv)}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} "
             "threads. Found: some detection's landmark box has IoU ≥ 0.5 with the box of the 68 annotated "
             "points. Images are the 300-W crops (≤ 320 px).", "",
             "| detector | subset | found | share | median ms / image | missed (first few) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {' | '.join(map(str, row))} |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
