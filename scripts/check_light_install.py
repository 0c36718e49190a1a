"""Check the user install (`pip install facemark`, no extras): no torch, and predict, the API and the CLI work.

    .venv-light/bin/python scripts/check_light_install.py examples/astronaut.png

Run by `make light-check` (and so by CI) in the light virtual environment. Exits non-zero, with one line saying
what failed, when torch is importable or a face is not found; prints the versions it ran with.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path


def fail(message: str) -> None:
    print(f"light install check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="an image with one face (the bundled sample)")
    args = parser.parse_args()
    if importlib.util.find_spec("torch") is not None:
        fail("torch is importable: this is not the light install")
    start = time.perf_counter()
    import facemark

    faces = facemark.Landmarker().detect(args.image)
    first_face = time.perf_counter() - start
    if len(faces) != 1:
        fail(f"{len(faces)} faces found in {args.image}, expected 1")
    import numpy as np

    points = faces[0].points
    width, height = faces[0].image_size
    if points.shape != (88, 2) or not np.isfinite(points).all() or not (
            (points >= 0).all() and (points[:, 0] < width).all() and (points[:, 1] < height).all()):
        fail("the face's 88 points are not finite points inside the image")
    if facemark.Landmarker(model="ibug68").detect(args.image)[0].points.shape != (68, 2):
        fail("the built-in ibug68 model does not give 68 points")
    if "torch" in sys.modules:
        fail("something imported torch")
    done = subprocess.run([sys.executable, "-m", "facemark", "train", "--data", ".", "--out", "run"],
                          capture_output=True, text=True)
    if done.returncode != 1 or "facemark[train]" not in done.stderr:
        fail(f"`facemark train` without torch should fail in one line naming the train extra, got "
             f"exit {done.returncode}: {done.stderr.strip()[:200]}")
    import cv2
    import onnxruntime

    print(f"light install check: ok (facemark {facemark.__version__}, numpy {np.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, OpenCV {cv2.__version__}, no torch); import facemark to the first face: "
          f"{first_face:.2f} s")


if __name__ == "__main__":
    main()
