"""Measure a detector's LANDMARK_BOX: how its boxes relate to the box around a face's landmarks.

    python scripts/calibrate_detector_box.py work/celeba_clean.jsonl --images ../shared/data/celeba/images \
        --detector mtcnn --count 500

For each labelled face, the detection overlapping the points' box most is compared with that box: centre
shift in units of the detection's width/height, and width/height ratios. The medians are what the detector
class stores as LANDMARK_BOX; the mean IoU with the points' box is printed before and after the mapping.
"""

from __future__ import annotations

import argparse

import numpy as np

from facemark.labels.annotations import read_labels
from facemark.detection import create_detector
from facemark.detection.nms import box_overlap
from facemark.images import load_image
from facemark.pipeline.crops import box_from_points


def iou(a, b) -> float:
    return float(box_overlap(np.asarray(a, float), np.asarray([b], float))[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels")
    parser.add_argument("--images", required=True)
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    detector = create_detector(args.detector)
    records = [r for r in read_labels(args.labels) if r.points is not None]
    step = max(1, len(records) // args.count)
    pairs, missed = [], 0
    for record in records[::step][:args.count]:
        target = box_from_points(record.points)
        detections = detector.detect(load_image(f"{args.images}/{record.image}"))
        best = max(detections, key=lambda d: iou(d.box, target), default=None)
        if best is None or iou(best.box, target) < 0.3:
            missed += 1
            continue
        pairs.append((best.box, target))
    shifts = []
    for (x0, y0, x1, y1), (t0, u0, t1, u1) in pairs:
        w, h = x1 - x0, y1 - y0
        shifts.append(((t0 + t1 - x0 - x1) / 2 / w, (u0 + u1 - y0 - y1) / 2 / h, (t1 - t0) / w, (u1 - u0) / h))
    constants = tuple(round(float(v), 3) for v in np.median(np.array(shifts), axis=0))
    before = np.mean([iou(d, t) for d, t in pairs])
    detector.LANDMARK_BOX = constants
    after = np.mean([iou(detector.landmark_box(d), t) for d, t in pairs])
    print(f"{args.detector}: LANDMARK_BOX = {constants}  ({len(pairs)} faces, {missed} not found; "
          f"mean IoU with the points' box {before:.2f} -> {after:.2f})")


if __name__ == "__main__":
    main()
