"""`facemark predict`: landmarks for files, folders and globs, one JSON line per input image.

Every input appears in the output exactly once, with its faces or with the reason it failed; a bad file
never stops the batch. Lines are written (and flushed) as images finish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from facemark.images import ImageError, iter_image_files, load_image


@dataclass
class PredictSummary:
    images: int = 0
    faces: int = 0
    failed: list[str] = field(default_factory=list)


def predict_record(landmarker, path: Path) -> tuple[dict, object, list]:
    """(JSON record, RGB image or None, faces) for one image; errors go into the record."""
    record = {"image": str(path), "width": None, "height": None, "faces": [], "error": None}
    try:
        rgb = load_image(path)
    except ImageError as e:
        record["error"] = str(e)
        return record, None, []
    record["height"], record["width"] = rgb.shape[:2]
    faces = landmarker.detect(rgb)
    record["faces"] = [f.to_dict() for f in faces]
    return record, rgb, faces


def predict_inputs(landmarker, inputs: list[str], *, json_path: str | Path | None = None,
                   draw_dir: str | Path | None = None, progress: bool = True) -> PredictSummary:
    summary = PredictSummary()
    files = list(iter_image_files(inputs))
    if not files:
        raise ImageError(f"no images found in {', '.join(map(str, inputs))}")
    out = None
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        out = open(json_path, "w", encoding="utf-8")
    if draw_dir is not None:
        Path(draw_dir).mkdir(parents=True, exist_ok=True)
    try:
        for path in tqdm(files, desc="predict", unit="img", disable=not progress or len(files) < 2):
            record, rgb, faces = predict_record(landmarker, path)
            summary.images += 1
            summary.faces += len(faces)
            if record["error"]:
                summary.failed.append(record["error"])
            elif draw_dir is not None:
                _draw(rgb, faces, landmarker.scheme, Path(draw_dir) / f"{path.stem}_landmarks.png")
            if out is not None:
                out.write(json.dumps(record) + "\n")
                out.flush()
    finally:
        if out is not None:
            out.close()
    return summary


def _draw(rgb, faces, scheme, path: Path) -> None:
    from PIL import Image, ImageDraw

    from facemark.drawing import draw_points

    image = Image.fromarray(rgb)
    for face in faces:
        size = max(face.box[2] - face.box[0], 1)
        image = draw_points(image, face.points, scheme, radius=max(1.0, size / 90))
        ImageDraw.Draw(image).rectangle(face.box, outline=(255, 255, 255), width=max(1, int(size / 150)))
    image.save(path)
