"""docs/answers.png: the sample image with what `Face` answers drawn on it (points, head pose axes, eye and
mouth openness, trust) and its ArcFace chip beside it.

    python scripts/make_answers_figure.py [--model WEIGHTS]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from facemark.landmarker import Landmarker
from facemark.drawing import draw_points
from facemark.images import load_image

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default=str(REPO / "docs" / "answers.png"))
    args = parser.parse_args()
    rgb = load_image(REPO / "examples" / "astronaut.png")
    face = Landmarker(args.model, threads=1).detect(rgb)[0]
    pose = face.pose
    drawn = draw_points(rgb, face.points, face.scheme, radius=1.5)
    # head pose: the model's axes (50 mm) from between the outer eye corners, projected through the same camera
    axes = np.float64([[0, 0, 0], [50, 0, 0], [0, 50, 0], [0, 0, -50]])
    ends, _ = cv2.projectPoints(axes, pose.rotation_vector, pose.translation, pose.camera_matrix, None)
    ends = ends.reshape(-1, 2)
    draw = ImageDraw.Draw(drawn)
    for end, colour in zip(ends[1:], [(230, 40, 40), (40, 200, 40), (60, 90, 255)]):
        draw.line([tuple(ends[0]), tuple(end)], fill=colour, width=3)
    left, right = face.eye_openness
    text = (f"yaw {pose.yaw:+.1f}°  pitch {pose.pitch:+.1f}°  roll {pose.roll:+.1f}°\n"
            f"eyes {left:.2f} / {right:.2f}   mouth {face.mouth_openness:.2f}\ntrust {face.trust:.2f}")
    x0, y0, x1, y1 = (int(v) for v in face.box)
    crop = drawn.crop((max(0, x0 - 50), max(0, y0 - 30), min(rgb.shape[1], x1 + 50), min(rgb.shape[0], y1 + 80)))
    crop = crop.resize((crop.width * 3 // 2, crop.height * 3 // 2), Image.Resampling.LANCZOS)
    chip = Image.fromarray(face.chip(size=112).image).resize((224, 224), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (crop.width + 224 + 30, max(crop.height, 224 + 90)), "white")
    canvas.paste(crop, (0, 0))
    canvas.paste(chip, (crop.width + 20, 10))
    d = ImageDraw.Draw(canvas)
    d.text((crop.width + 20, 240), "face.chip(size=112)\n(ArcFace template)", fill="black")
    d.multiline_text((10, crop.height - 58), text, fill="white", stroke_width=2, stroke_fill="black")
    canvas.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)  # a small file
    print(f"-> {args.out} ({Path(args.out).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
