"""Faces tilted in the image plane: NME against the human labels, per angle of roll.

    python benchmarks/rotation.py                                   # 30 HELEN faces, face88, this checkout
    python benchmarks/rotation.py --model ibug68                    # the 68-point model (scored on all 68)
    python benchmarks/rotation.py --before /tmp/before              # and, beside it, another copy of the package
    python benchmarks/rotation.py --detector mtcnn --out /tmp/r.md  # another detector

`--before DIR`: a folder holding another `facemark/` package
(e.g. `git archive HEAD src/facemark | tar -x -C DIR --strip-components 1`),
measured the same way in a subprocess, for a before/after table.

Test images: the first `--faces` images of `../shared/data/300w/helen_train` (sorted by name), each face cut as
the square of twice its labelled points' box (black outside the photo), resized to 200 px and pasted in the
middle of a 320×320 grey canvas, then the canvas turned by each angle about its centre (Pillow, bicubic;
counter-clockwise on screen for positive angles). The human labels are turned the same way. The face whose
point box overlaps the turned labels' box (IoU ≥ 0.3) is scored (facemark.evaluation.scoring): face88 over the 34 points
it shares with iBUG-68, ibug68 over all 68, normalised by the human outer eye corners. A face not found counts
in "found" and not in the NME. Writes benchmarks/results/rotation.md (or `--out`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from report import write_report

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "300w" / "helen_train"
ANGLES = (0, 15, 30, 45, 60, 75, 90, 135, 180, -45, -90)
CANVAS, PATCH = 320, 200


def make_faces(folder: Path, count: int):
    """[(canvas H×W×3 uint8, labels 68×2)]: each face centred on a grey canvas (see the module docstring)."""
    from PIL import Image

    from facemark.labels.annotations import read_pts
    from facemark.images import load_image
    from facemark.pipeline.crops import CropTransform, box_from_points, crop_image

    out = []
    for pts in sorted(folder.glob("*.pts"))[:count]:
        image = next(p for p in (pts.with_suffix(e) for e in (".jpg", ".png", ".jpeg")) if p.exists())
        labels = read_pts(pts)
        x0, y0, x1, y1 = box_from_points(labels)
        t = CropTransform((x0 + x1) / 2, (y0 + y1) / 2, 2 * max(x1 - x0, y1 - y0), PATCH)
        canvas = Image.new("RGB", (CANVAS, CANVAS), (128, 128, 128))
        offset = (CANVAS - PATCH) // 2
        canvas.paste(Image.fromarray(crop_image(load_image(image), t)), (offset, offset))
        out.append((np.asarray(canvas), t.to_crop(labels) + offset))
    return out


def turned(canvas: np.ndarray, labels: np.ndarray, degrees: float):
    """The canvas turned counter-clockwise (on screen) by `degrees` about its centre, and the labels with it."""
    from PIL import Image

    image = Image.fromarray(canvas).rotate(degrees, Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    # Pillow turns about the canvas centre in edge coordinates: (W/2, H/2) is pixel (W/2 - 0.5, H/2 - 0.5)
    c = (CANVAS - 1) / 2
    a = math.radians(-degrees)  # counter-clockwise on screen is a negative angle with y down
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.asarray(image), (labels - c) @ rot.T + c


def measure(model: str, faces: int, angles, detector: str | None = None) -> dict:
    """{angle: {"found": n, "nme": mean NME, "seconds": mean seconds per image}} for this process's facemark."""
    from facemark.landmarker import Landmarker
    from facemark.evaluation.scoring import match_face, nme_against_ibug68

    options = {} if detector is None else {"detector": detector}
    landmarker = Landmarker(model=model, threads=1, **options)
    scheme = landmarker.scheme.name
    subset = "anchors34" if scheme == "face88" else "68"
    data = make_faces(DATA, faces)
    landmarker.detect(data[0][0])  # warm-up
    results = {}
    for angle in angles:
        nmes, seconds = [], 0.0
        for canvas, labels in data:
            image, truth = turned(canvas, labels, angle)
            start = time.perf_counter()
            found = landmarker.detect(image)
            seconds += time.perf_counter() - start
            i = match_face([f.points for f in found], truth)
            if i is not None:
                nmes.append(nme_against_ibug68(found[i].points, scheme, truth, subset))
        results[angle] = {"found": len(nmes), "nme": float(np.mean(nmes)) if nmes else float("nan"),
                          "seconds": seconds / len(data)}
    return {"scheme": scheme, "subset": subset, "faces": len(data), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="face88", help="built-in model name or weights file")
    parser.add_argument("--faces", type=int, default=30, help="number of HELEN faces")
    parser.add_argument("--detector", default=None, help="face detector name (default: the Landmarker's)")
    parser.add_argument("--before", default=None, metavar="DIR", help="folder holding another facemark package")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rotation.md"))
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a --before child's output
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"error: {DATA} not found (the 300-W HELEN training images with their .pts files)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.json:
        print(json.dumps(measure(args.model, args.faces, ANGLES, args.detector)))
        return
    after = measure(args.model, args.faces, ANGLES, args.detector)
    before = None
    if args.before:
        env = dict(os.environ, PYTHONPATH=str(Path(args.before).resolve()), OMP_NUM_THREADS="1")
        child = [sys.executable, __file__, "--json", "--model", args.model, "--faces", str(args.faces)]
        done = subprocess.run(child + (["--detector", args.detector] if args.detector else []),
                              env=env, capture_output=True, text=True, cwd=args.before, check=True)
        before = json.loads(done.stdout.strip().splitlines()[-1])

    zero = after["results"][0]["nme"]
    head = "| roll (°) | found | NME | × 0° | ms / image |"
    rule = "|---:|---:|---:|---:|---:|"
    if before:
        head += " found before | NME before |"
        rule += "---:|---:|"
    rows = []
    for angle in ANGLES:
        r = after["results"][angle]
        row = (f"| {angle} | {r['found']}/{after['faces']} | {r['nme']:.4f} | {r['nme'] / zero:.2f} "
               f"| {1000 * r['seconds']:.0f} |")
        if before:
            b = before["results"][str(angle)]
            row += f" {b['found']}/{before['faces']} | {b['nme']:.4f} |"
        rows.append(row)
    command = "python benchmarks/rotation.py" + (f" --model {args.model}" if args.model != "face88" else "") + (
        f" --detector {args.detector}" if args.detector else "") + (" --before DIR" if args.before else "")
    points = "the 34 points face88 shares with iBUG-68" if after["subset"] == "anchors34" else "all 68 points"
    write_report(args.out, "Tilted faces: NME per roll angle", [
        f"Model `{args.model}`, detector `{args.detector or 'default'}`, scored over {points}, normalised by "
        "the human outer eye corners; "
        f"{after['faces']} HELEN training faces (300-W), each cut to twice its labelled box, resized to "
        f"{PATCH} px on a {CANVAS}×{CANVAS} grey canvas and turned about the canvas centre (positive: "
        "counter-clockwise on screen). NME over the faces found; × 0°: this row's NME over the 0° row's. "
        "One thread." + (
            " before: the package in `--before` (there, with its own default detector unless `--detector`)."
            if before else ""), "",
        head, rule, *rows], command=command)


if __name__ == "__main__":
    main()
