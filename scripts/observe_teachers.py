"""Run both teachers once per image and keep what they said, for `make_teacher_labels.py` and
`benchmarks/teachers.py` (issue 20: dlib on its own HOG rectangles, at scale).

    python scripts/observe_teachers.py IMAGES_DIR --out work/teacher_obs/celeba.jsonl --workers 2
    python scripts/observe_teachers.py work/human68/helen --pts --out work/teacher_obs/helen.jsonl

One JSON line per image (resumable: images already in `--out` are skipped), pixel-centre coordinates:
`mediapipe88` (88, 2) MediaPipe Face Mesh's face88 points or null; `hog` dlib's HOG rectangles (x0, y0, x1, y1);
`dlib68` (68, 2) dlib's predictor on the HOG rectangle that is the face (or null); `target` the person's box
(with `--pts`). The face: with `--pts` the one the person labelled (matched by position: the detection
overlapping the box of their points most), else MediaPipe's most prominent face, else the largest HOG face.

dlib's Python API rounds its points to whole pixels (±0.5 px: 1.2 % of the eye-corner distance on a 178-px
CelebA face). The predictor runs on the image upscaled `--upscale` times (bilinear) and the points are mapped
back, which divides that rounding by the factor (measured in `benchmarks/results/teachers.md`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemark.labels.annotations import read_pts
from facemark.detection.nms import box_overlap
from facemark.images import ImageError, iter_image_files, load_image
from facemark.pipeline.crops import box_from_points

MIN_MATCH_IOU = 0.3  # a detection is the labelled face when it overlaps the person's box this much

_state: dict = {}


def _init(upscale: int) -> None:
    from facemark.labels.teachers import DlibTeacher, MediaPipeTeacher

    _state["mp"] = MediaPipeTeacher(max_faces=4)
    _state["dlib"] = DlibTeacher(fallback=None)
    _state["upscale"] = upscale


def matching(boxes: list, anchor) -> int | None:
    """Index of the box overlapping `anchor` most, when it overlaps at least MIN_MATCH_IOU; else None."""
    if not boxes:
        return None
    iou = box_overlap(np.asarray(anchor, np.float64), np.asarray(boxes, np.float64))
    return int(iou.argmax()) if iou.max() >= MIN_MATCH_IOU else None


def observe(job: tuple[str, str, list | None]) -> str:
    path, name, target = job
    try:
        rgb = load_image(path)
    except ImageError as e:
        return json.dumps({"image": name, "error": str(e)})
    faces = _state["mp"].label_all(rgb)
    mp_boxes = [box_from_points(f) for f in faces]
    k = (0 if faces else None) if target is None else matching(mp_boxes, target)
    mp88 = None if k is None else faces[k]
    # dlib's face: the HOG rectangle that overlaps the target (the person's box, else MediaPipe's face), or
    # with neither the largest one
    dlib, factor = _state["dlib"], _state["upscale"]
    big = dlib.upscaled(rgb, factor)
    rects = dlib.detect_upscaled(big, factor)
    anchor = target if target is not None else (None if mp88 is None else mp_boxes[k])
    if anchor is not None:
        i = matching(rects, anchor)
    else:
        i = int(np.argmax([(r[2] - r[0]) * (r[3] - r[1]) for r in rects])) if rects else None
    dlib68 = None if i is None else dlib.shape_upscaled(big, rects[i], factor)
    r = lambda a: None if a is None else np.round(np.asarray(a, np.float64), 3).tolist()  # noqa: E731
    return json.dumps({"image": name, "width": rgb.shape[1], "height": rgb.shape[0], "mediapipe88": r(mp88),
                       "mediapipe_faces": len(faces), "hog": r(rects), "dlib68": r(dlib68), "target": r(target)})


def jobs(folder: Path, pts: bool, done: set[str]):
    for path in iter_image_files([folder]):
        name = path.relative_to(folder).as_posix()
        if name in done:
            continue
        target = None
        if pts:
            pts_file = path.with_suffix(".pts")
            if not pts_file.is_file():
                continue
            target = list(box_from_points(read_pts(pts_file)))
        yield str(path), name, target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("images", help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="observations file (JSON Lines; resumed when it exists)")
    p.add_argument("--pts", action="store_true", help="the images have person-made .pts files: match that face")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--upscale", type=int, default=2, help="image scale for dlib (1: as is)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (a quick check)")
    a = p.parse_args()
    folder, out = Path(a.images), Path(a.out)
    if not folder.is_dir():
        sys.exit(f"error: not a folder: {folder}")
    done = set()
    if out.is_file():
        done = {json.loads(line)["image"] for line in out.read_text().splitlines() if line.strip()}
    todo = list(jobs(folder, a.pts, done))[: a.limit]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh, tqdm(total=len(todo), unit="img", desc="observe") as bar:
        if a.workers <= 1:
            _init(a.upscale)
            results = map(observe, todo)
        else:
            pool = multiprocessing.get_context("spawn").Pool(a.workers, _init, (a.upscale,))
            results = pool.imap(observe, todo, chunksize=16)
        for line in results:
            fh.write(line + "\n")
            fh.flush()
            bar.update(1)


if __name__ == "__main__":
    main()
