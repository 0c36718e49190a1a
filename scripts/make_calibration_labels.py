"""Label file for calibrating face88 toward human placement: teacher faces plus human 68-point faces.

    python scripts/make_calibration_labels.py --teacher work/celeba_clean.jsonl \
        --teacher-images ../shared/data/celeba/images --human ../shared/data/300w/helen_train \
        --max-teacher 6000 --repeat-human 3 --out work/calibration.jsonl

Teacher records keep all 88 points. Each human iBUG face becomes a *partial* face88 record: the 34 points the
layouts share (face88.md) and null for the other 54, framed on the box of all 68 human points, so the loss
pulls the shared points toward where people put them while the teacher faces keep the other 54 in shape.
Human faces are repeated `--repeat-human` times (each copy is augmented differently) to weigh them up.
Image paths are written absolute, so `facemark cache` takes any --images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facemark.labels.annotations import LabelRecord, read_labels, read_pts_folder
from facemark.pipeline.crops import box_from_points
from facemark.layouts import ibug68_as_face88


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="clean face88 label file")
    parser.add_argument("--teacher-images", required=True, help="folder the teacher label file refers to")
    parser.add_argument("--human", required=True, nargs="+", help="folders of images with 68-point .pts files")
    parser.add_argument("--max-teacher", type=int, default=6000, help="teacher faces to keep (the first N)")
    parser.add_argument("--repeat-human", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    teacher_dir = Path(args.teacher_images).resolve()
    lines = []
    for record in read_labels(args.teacher):
        if len(lines) >= args.max_teacher:
            break
        if record.points is not None and record.scheme == "face88":
            record.image = str(teacher_dir / record.image)
            lines.append(record.to_json())
    teacher_count = len(lines)
    human = []
    for folder in args.human:
        for record in read_pts_folder(folder):
            if record.scheme != "ibug68":
                continue
            human.append(LabelRecord(image=str((Path(folder) / record.image).absolute()), scheme="face88",
                                     points=ibug68_as_face88(record.points), box=box_from_points(record.points),
                                     source="human-ibug68-anchors").to_json())
    lines += human * args.repeat_human
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"{teacher_count} teacher faces + {len(human)} human faces × {args.repeat_human} -> {args.out}")


if __name__ == "__main__":
    main()
