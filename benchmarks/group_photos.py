"""Every face in a group photo: faces found by facemark (defaults, from JPEG files as `facemark predict` reads
them) and by dlib's HOG detector, on scenes of real human-labelled faces pasted on textured canvases.

    python benchmarks/group_photos.py            # -> benchmarks/results/group_photos.md

Scenes (benchmarks/scenes.py; faces from 300-W's HELEN train, LFPW train and AFW, each at least 90 px):
- the replayed public reports: six 150-px faces at 1920×1080, the same behind a near face (a group selfie),
  eight 300-px faces behind a 1000-px face at 4032×3024, a 3456×4608 phone photo of six 420-px faces, a 12-MP
  grid of 60 faces of 120 px, crowds of 40 and 60 faces at 1/16 and 1/19 of the width, 100 faces at 1/21 of a
  3840×2160 frame;
- a grid by image size (640×480 to 4032×3024) and face size (1/5 to 1/40 of the longer side), with and
  without a near face of half the frame's height.
A face is found when a found face's points' box lies where its labelled box is (`scenes.matched`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from facemark import Landmarker
from report import write_report
from scenes import fitting, grid_scene, human_faces, matched

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "300w"

# (name, size, faces, face side in px, near face side in px or None)
REPORTED = [
    ("six 150-px faces (1/13 of the width)", (1920, 1080), 6, 150, None),
    ("the same behind a near face (a group selfie)", (1920, 1080), 6, 150, 400),
    ("eight 300-px faces behind a 1000-px face, 12 MP", (4032, 3024), 8, 300, 1000),
    ("phone photo 3456×4608, six 420-px faces", (3456, 4608), 6, 420, None),
    ("12-MP grid of 120-px faces", (4032, 3024), 60, 120, None),
    ("40 faces at 1/16 of the width", (1920, 1080), 40, 1920 / 16, None),
    ("60 faces at 1/19 of the width", (1920, 1080), 60, 1920 / 19, None),
    ("100 faces at 1/21 of the width, 3840×2160", (3840, 2160), 100, 3840 / 21, None),
]
GRID_SIZES = [(640, 480), (1280, 720), (1920, 1080), (4032, 3024)]
GRID_SHARES = [5, 10, 15, 20, 30, 40]  # face side = longer side / share
GRID_FACES = 6


def dlib_found(rgb: np.ndarray, labelled: list[np.ndarray]) -> int:
    import dlib

    rects = dlib.get_frontal_face_detector()(rgb, 0)
    # dlib's square box is about 0.8 of the points' box: matched on its centre and a scaled side
    boxes = [np.array([[r.left(), r.top()], [r.right(), r.bottom()]], np.float64) for r in rects]
    grown = [(b - b.mean(axis=0)) * 1.25 + b.mean(axis=0) for b in boxes]
    return sum(matched(grown, labelled))


def run(scene, landmarker: Landmarker, folder: Path, with_dlib: bool) -> dict:
    path = folder / "scene.jpg"
    scene.image.save(path, quality=90)
    faces = landmarker.detect(path)
    hits = matched([f.points for f in faces], scene.faces)
    behind = [h for i, h in enumerate(hits) if i != scene.near]
    row = {"scene": scene.name, "size": f"{scene.image.width}×{scene.image.height}", "faces": len(behind),
           "found": sum(behind), "near": None if scene.near is None else hits[scene.near],
           "extra": len(faces) - sum(hits)}
    if with_dlib:
        row["dlib"] = dlib_found(np.asarray(scene.image), [f for i, f in enumerate(scene.faces) if i != scene.near])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "group_photos.md"))
    parser.add_argument("--no-dlib", action="store_true", help="leave dlib out (the `teacher` extra)")
    args = parser.parse_args()
    faces = human_faces([SHARED / "helen_train", SHARED / "lfpw_train", SHARED / "afw"], 120)
    near_faces = human_faces([SHARED / "helen_train"], 4, min_side=250)
    landmarker = Landmarker()
    rows, grid = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, size, count, side, near) in enumerate(REPORTED):
            scene = grid_scene(name, size, faces[k:] + faces[:k], count, side, seed=k,
                               near=None if near is None else (near_faces[k % len(near_faces)], near))
            rows.append(run(scene, landmarker, Path(tmp), not args.no_dlib))
            print(rows[-1], flush=True)
        for size in GRID_SIZES:
            for share in GRID_SHARES:
                for near in (False, True):
                    side = max(size) / share
                    scene = grid_scene(f"{size} 1/{share}{' near' if near else ''}", size, faces,
                                       fitting(size, side, GRID_FACES), side, seed=share,
                                       near=(near_faces[0], size[1] / 2) if near else None)
                    grid.append((size, share, near, run(scene, landmarker, Path(tmp), False)))
    lines = ["Real human-labelled faces (300-W HELEN train, LFPW train, AFW) pasted on textured canvases, saved as "
             "JPEG (quality 90) and given to `Landmarker()` with its defaults as files; dlib's HOG detector "
             "(`get_frontal_face_detector()`, no upsampling) on the same pixels. Found: a face whose points' box "
             "lies where the labelled face's is (benchmarks/scenes.py). Faces: those left in sight behind the near face, if any (a near face hides the ones under it); other faces: found faces matching no labelled face (a face the near one half hides counts there). Time: benchmarks/results/speed.md.", "",
             "| scene | image | faces | facemark | dlib (HOG) | near face | other faces |",
             "|---|---|---:|---:|---:|---|---:|"]
    for r in rows:
        near = "" if r["near"] is None else ("found" if r["near"] else "missed")
        lines.append(f"| {r['scene']} | {r['size']} | {r['faces']} | {r['found']}/{r['faces']} | "
                     f"{r.get('dlib', '')}/{r['faces']} | {near} | {r['extra']} |")
    lines += ["", "## Faces found by image size and face size", "",
              f"Up to {GRID_FACES} faces of one size (the image's longer side / share; as many as fit) per scene; "
              "with a near face: one more face half the frame's height in front, low on the right. Cells: faces found of those behind (near face found?).",
              "", "| image | " + " | ".join(f"1/{s}" for s in GRID_SHARES) + " | "
              + " | ".join(f"1/{s} + near" for s in GRID_SHARES) + " |",
              "|---|" + "---:|" * (2 * len(GRID_SHARES))]
    for size in GRID_SIZES:
        cells = {(share, near): r for s, share, near, r in grid if s == size}
        plain = [f"{cells[(s, False)]['found']}/{cells[(s, False)]['faces']}" for s in GRID_SHARES]
        near = [f"{cells[(s, True)]['found']}/{cells[(s, True)]['faces']} ({'✓' if cells[(s, True)]['near'] else '✗'})"
                for s in GRID_SHARES]
        lines.append(f"| {size[0]}×{size[1]} | " + " | ".join(plain + near) + " |")
    write_report(args.out, "Every face in a group photo", lines)


if __name__ == "__main__":
    main()
