"""MediaPipe Face Mesh (refined landmarks) on every photo of a folder: its face88 points and the eye and mouth
openness they give, to find the closed, half-closed and open-mouthed faces in the teacher data.

    python scripts/mine_eyes.py work/celeba_more --out work/eyes/celeba_more.jsonl --workers 2

One JSON line per image (resumable: images already in `--out` are skipped): `image` (relative name),
`mp88` (88, 2) pixel-centre points of the most prominent face or null, `eyes` (image-left, image-right eye
aspect ratio), `mouth` (inner-lip gap over mouth width). MediaPipe alone: dlib's lids are measured on the
closed-eye faces only (`benchmarks/eyelids.py --teachers`), it is too slow to run on every photo here.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GLOG_minloglevel", "2")

from facemark.images import ImageError, iter_image_files, load_image  # noqa: E402

from facemark.geometry.openness import eye_openness, mouth_openness  # noqa: E402

_state: dict = {}


def _init() -> None:
    from facemark.labels.teachers import MediaPipeTeacher

    _state["mp"] = MediaPipeTeacher(max_faces=1)


def observe(job: tuple[str, str]) -> str:
    path, name = job
    try:
        rgb = load_image(path)
    except ImageError as e:
        return json.dumps({"image": name, "error": str(e)})
    found = _state["mp"].label(rgb).points
    if found is None:
        return json.dumps({"image": name, "mp88": None})
    pts = np.asarray(found, np.float64)
    return json.dumps({"image": name, "mp88": np.round(pts, 2).tolist(),
                       "eyes": np.round(eye_openness(pts), 4).tolist(), "mouth": round(float(mouth_openness(pts)), 4)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("images", help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="JSON Lines file (resumed when it exists)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--limit", type=int, default=None, help="only the first N images (a quick check)")
    a = p.parse_args()
    folder, out = Path(a.images), Path(a.out)
    done = set()
    if out.is_file():
        done = {json.loads(line)["image"] for line in out.read_text().splitlines() if line.strip()}
    todo = [(str(f), f.relative_to(folder).as_posix()) for f in iter_image_files([folder])]
    todo = [j for j in todo if j[1] not in done][: a.limit]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh, tqdm(total=len(todo), unit="img", desc=folder.name, mininterval=10) as bar:
        if a.workers <= 1:
            _init()
            results = map(observe, todo)
        else:
            pool = multiprocessing.get_context("spawn").Pool(a.workers, _init)
            results = pool.imap(observe, todo, chunksize=32)
        for line in results:
            fh.write(line + "\n")
            bar.update(1)


if __name__ == "__main__":
    main()
