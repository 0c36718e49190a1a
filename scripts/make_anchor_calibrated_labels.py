"""Teacher labels whose 34 iBUG-shared points move toward human placement, the other 54 following smoothly.

    python scripts/make_anchor_calibrated_labels.py --teacher work/all_clean_shuffled.jsonl \
        --teacher-images work/faces --model ibug68 --max-teacher 9000 --weight 0.5 --out work/anchored.jsonl

For each teacher face (MediaPipe's 88 points), a 68-point network trained on human labels alone (`ibug68`)
predicts the face in two passes (the crop framed on the teacher's points, then on its own). The 34 points the
layouts share become (1 - w) × teacher + w × network (`--weight`), and the teacher's whole shape is carried onto
them by a thin-plate spline (`facemark.labels.ensemble.warp_points`, the ensemble teacher's warp), so lids, lips, brows
and the profile stay coherent with the moved points. Records keep the image path (absolute) and say
`source: "<teacher source>+anchors(<model>, w)"`; feed the file to `scripts/make_calibration_labels.py
--teacher FILE --teacher-images /` to mix in the human faces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemark.labels.annotations import read_labels
from facemark.labels.ensemble import warp_points
from facemark.images import ImageError, load_image
from facemark.train.model import predict_crops
from facemark.pipeline.crops import box_from_points, crop_image, square_crop_transform
from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS
from facemark.train.weights import load_weights


def network_points(network, rgb: np.ndarray, box) -> np.ndarray:
    """(P, 2) image points of `network` in two passes, the first framed on `box`."""
    size, margin = network.config.input_size, network.config.margin
    for _ in range(2):
        t = square_crop_transform(box, size, margin)
        points = t.to_image(predict_crops(network, crop_image(rgb, t)[None])[0])
        box = box_from_points(points)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="clean face88 label file")
    parser.add_argument("--teacher-images", required=True, help="folder the teacher label file refers to")
    parser.add_argument("--model", default="ibug68", help="68-point network trained on human labels")
    parser.add_argument("--max-teacher", type=int, default=9000, help="teacher faces to keep (the first N)")
    parser.add_argument("--weight", type=float, default=0.5, help="the network's share of the 34 shared points")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not 0 <= args.weight <= 1:
        parser.error(f"--weight must lie in [0, 1], got {args.weight}")
    network = load_weights(args.model, expect_scheme="ibug68")
    images = Path(args.teacher_images).resolve()
    records = [r for r in read_labels(args.teacher) if r.points is not None and r.scheme == "face88"
               and np.isfinite(r.points).all()][:args.max_teacher]
    lines, moved = [], []
    for record in tqdm(records, desc="anchor", unit="img"):
        path = images / record.image
        try:
            rgb = load_image(path)
        except ImageError as e:
            print(f"skipped: {e}", file=sys.stderr)
            continue
        teacher = np.asarray(record.points, np.float64)
        human68 = network_points(network, rgb, box_from_points(teacher))
        target = (1 - args.weight) * teacher[FACE88_ANCHORS] + args.weight * human68[IBUG68_ANCHORS]
        points = warp_points(teacher[FACE88_ANCHORS], target, teacher)
        points[FACE88_ANCHORS] = target
        eye = np.linalg.norm(teacher[21] - teacher[33])
        moved.append(float(np.linalg.norm(points - teacher, axis=1).mean() / eye))
        record.image, record.points, record.box = str(path), points, box_from_points(points)
        record.source = f"{record.source}+anchors({Path(str(args.model)).stem}, {args.weight})"
        lines.append(record.to_json())
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} faces -> {args.out}; mean move {100 * np.mean(moved):.2f}% of the eye distance")


if __name__ == "__main__":
    main()
