"""Make a short clip from the bundled sample image (a slow pan and zoom over the astronaut's face), so the
video demo needs no data of its own: `python scripts/make_sample_video.py out/astronaut_clip.mp4`."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from facemark.images import load_image
from facemark.pipeline.crops import CropTransform, crop_image

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help=".mp4 file to write")
    parser.add_argument("--frames", type=int, default=75)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--fps", type=float, default=25.0)
    args = parser.parse_args()
    rgb = load_image(SAMPLE)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (args.size, args.size))
    for k in range(args.frames):
        t = k / max(args.frames - 1, 1)
        side = 300 - 80 * np.sin(np.pi * t)  # zoom in and out again
        cx, cy = 225 + 40 * np.sin(2 * np.pi * t), 130 + 15 * np.cos(2 * np.pi * t)  # a slow circle
        frame = crop_image(rgb, CropTransform(cx, cy, side, args.size))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    print(f"{args.frames} frames ({args.size}×{args.size}, {args.fps:g} fps) -> {args.out}")


if __name__ == "__main__":
    main()
