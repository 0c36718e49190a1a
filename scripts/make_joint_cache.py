"""A training cache for one network with a face88 head and an ibug68 head (scheme "face88+ibug68"), from the
teachers' observations and the human labels (issue 20: each layout learns from every label).

    python scripts/make_joint_cache.py --params work/teacher_adult.json \\
        --teacher work/teacher_obs/celeba.jsonl=../shared/data/celeba/images \\
        --teacher work/teacher_obs/celeba_more.jsonl=work/celeba_more \\
        --teacher work/teacher_obs/utkface.jsonl=work/utkface \\
        --human work/human68 --human-val work/human68_val --human-repeat 4 --out work/cache_joint

Per teacher face (observations of `scripts/observe_teachers.py`; ensemble parameters of
`benchmarks/teachers.py --write-params`): face88 = `ensemble_face88` (dlib where its HOG detector found the face
and it agrees with MediaPipe, else MediaPipe de-biased), ibug68 = `ensemble_ibug68` where dlib is used, else
unknown (NaN): dlib on a mapped rectangle is far worse than no label (`benchmarks/results/teachers.md`).
Per human face: ibug68 = the person's 68 points, face88 = their 34 shared points (the other 54 unknown).

Crops are framed on the face88 points' box (the default model's framing); a human face's face88 box is mapped
from its iBUG box by the median ratio measured on the teacher faces. Validation = the held-out human faces
only; training = every teacher face and each human training face `--human-repeat` times.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemark.labels.annotations import read_pts_folder
from facemark.labels.cache import context_transform
from facemark.labels.ensemble import (EnsembleError, EnsembleParams, ensemble_face88, ensemble_ibug68,
                               fit_box_map, map_box)
from facemark.images import ImageError, load_image
from facemark.pipeline.crops import DEFAULT_MARGIN, DEFAULT_SIZE, box_from_points, crop_image
from facemark.layouts import FACE88, IBUG68, ibug68_as_face88, joint_scheme

MIN_FACE_PX = 40  # teacher faces narrower than this (face88 box) are left out: too few pixels to learn from


def teacher_faces(obs_path: Path, images: Path, params: EnsembleParams) -> list[tuple[Path, np.ndarray, str]]:
    """(image path, (156, 2) joint points, name) for every usable face of one observations file."""
    out = []
    for line in obs_path.read_text().splitlines():
        d = json.loads(line)
        if d.get("mediapipe88") is None:
            continue
        mp88 = np.asarray(d["mediapipe88"], np.float64)
        dlib68 = None if d.get("dlib68") is None else np.asarray(d["dlib68"], np.float64)
        face88 = ensemble_face88(params, dlib68, mp88)
        try:
            ibug68 = ensemble_ibug68(params, dlib68, mp88)
        except EnsembleError:  # no dlib, or dlib lost the face
            ibug68 = np.full((68, 2), np.nan)
        box = box_from_points(face88)
        if box[2] - box[0] < MIN_FACE_PX:
            continue
        out.append((images / d["image"], np.concatenate([face88, ibug68]), d["image"]))
    return out


def human_faces(folder: Path) -> list[tuple[Path, np.ndarray, str]]:
    """(image path, (156, 2) joint points, name) for every 68-point `.pts` face under `folder`."""
    return [(folder / r.image, np.concatenate([ibug68_as_face88(r.points), r.points]), r.image)
            for r in read_pts_folder(folder) if r.scheme == IBUG68.name]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", required=True, help="ensemble parameters (JSON)")
    p.add_argument("--teacher", action="append", default=[], metavar="OBS=IMAGES",
                   help="observations file and the folder its image names are relative to (repeatable)")
    p.add_argument("--human", required=True, help="folder of human-labelled faces (.pts beside each image)")
    p.add_argument("--human-val", required=True, help="the held-out part (same relative names)")
    p.add_argument("--human-repeat", type=int, default=4, help="copies of each human training face")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    params = EnsembleParams.load(a.params)
    scheme = joint_scheme(FACE88, IBUG68)

    teacher = []
    for spec in a.teacher:
        obs, _, images = spec.partition("=")
        teacher += teacher_faces(Path(obs), Path(images), params)
    both = [pts for _, pts, _ in teacher if np.isfinite(pts[88:]).all()]
    ibug_to_face88 = fit_box_map(np.array([box_from_points(p[88:]) for p in both]),
                                 np.array([box_from_points(p[:88]) for p in both]))
    val_names = {n for _, _, n in human_faces(Path(a.human_val))}
    human = human_faces(Path(a.human))
    human_train = [h for h in human if h[2] not in val_names]
    human_val = [h for h in human if h[2] in val_names]
    rows = ([(path, pts, name, False, box_from_points(pts[:88])) for path, pts, name in teacher]
            + [(path, pts, f"human/{name}", False, map_box(box_from_points(pts[88:]), ibug_to_face88))
               for path, pts, name in human_train for _ in range(a.human_repeat)]
            + [(path, pts, f"human/{name}", True, map_box(box_from_points(pts[88:]), ibug_to_face88))
               for path, pts, name in human_val])
    print(f"{len(teacher)} teacher faces ({len(both)} with ibug68), {len(human_train)} human training faces "
          f"x{a.human_repeat}, {len(human_val)} held out; ibug68 box -> face88 box {ibug_to_face88}", flush=True)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    probe = context_transform((0, 0, 10, 10), a.size, DEFAULT_MARGIN)
    crops = np.lib.format.open_memmap(out / "crops.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(rows), probe.size, probe.size, 3))
    points = np.full((len(rows), scheme.num_points, 2), np.nan, np.float32)
    val = np.zeros(len(rows), bool)
    names, skipped, n = [], [], 0
    last_path, image = None, None
    for path, pts, name, is_val, box in tqdm(rows, desc="cache", unit="face"):
        try:
            if path != last_path:  # repeated human faces are consecutive: decode once
                image, last_path = load_image(path), path
        except ImageError as e:
            skipped.append(str(e))
            continue
        transform = context_transform(box, a.size, DEFAULT_MARGIN)
        crops[n] = crop_image(image, transform)
        points[n] = transform.to_crop(pts)
        val[n] = is_val
        names.append(name)
        n += 1
    crops.flush()
    del crops
    if n != len(rows):
        sys.exit(f"error: {len(rows) - n} images could not be read: {skipped[:3]}")
    np.save(out / "points.npy", points)
    np.save(out / "val.npy", val)
    meta = {"scheme": scheme.to_dict(), "size": a.size, "margin": DEFAULT_MARGIN,
            "context": probe.size / a.size, "count": n, "train_count": int((~val).sum()),
            "val_count": int(val.sum()), "labels": " ".join(sys.argv[1:]), "images": names, "skipped": skipped,
            "ibug68_box_to_face88_box": ibug_to_face88}
    (out / "meta.json").write_text(json.dumps(meta))
    print(f"{n} faces -> {out}")


if __name__ == "__main__":
    main()
