"""`facemark chips`: aligned face chips (facemark.geometry.chips) for images, folders and globs, written as PNG files.

Each face of each image becomes DIR/SUBFOLDERS/NAME_faceK.png (K from 0, by descending detector score; the
inputs' paths below the folder they share are kept, as `predict --draw` does), and DIR/chips.jsonl gets one
line per image:

    {"image": path, "faces": [{"chip": "NAME_face0.png", "box": [...], "score": s, "trust": t,
                               "matrix": [[a, b, tx], [c, d, ty]], "residual": r}], "error": null}

`matrix` maps image pixels to chip pixels ([x', y'] = M · [x, y, 1], pixel-centre convention); `residual`:
mean distance in chip pixels between the face's five points and the template. A face under `min_trust` gets
no chip and no line. An unreadable image is recorded with its one-line error and the batch goes on. A JPEG file
cut short, read as far as it goes (`allow_truncated` in the options), gets `"truncated": true` and a notice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from facemark.images import ImageError, ImageReader, iter_image_files
from facemark.options import LandmarkerOptions


@dataclass
class ChipSummary:
    images: int = 0
    chips: int = 0
    dropped: int = 0  # faces under min_trust
    out: str = ""
    failed: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # not failures: a JPEG file cut short, read as far as it goes

    def summary_line(self) -> str:
        dropped = f", {self.dropped} faces under --min-trust left out" if self.dropped else ""
        return (f"{self.images} images, {self.chips} chips{dropped}, {len(self.failed)} failed -> {self.out}/ "
                f"(transforms in {self.out}/chips.jsonl)")


def write_chips(inputs: list[str], out: str | Path, options: LandmarkerOptions | None = None, *, size: int = 112,
                template: str = "arcface", margin: float = 0.25, min_trust: float | None = None,
                progress: bool = True) -> ChipSummary:
    """Chips of every face in the inputs, into folder `out` (module docstring), found by a Landmarker built with
    `options` (None: the defaults); faces trusted less than `min_trust` are left out and counted. Raises
    ImageError when no input exists or none is an image; ValueError for bad chip arguments (checked before any
    model loads)."""
    from facemark.geometry.chips import aligned_chip, template_points
    from facemark.cli.predict import DrawingNames, truncated_notice

    template_points(template, size, margin)  # bad arguments: their error before the model loads
    files = list(iter_image_files(inputs))
    if not files:
        raise ImageError(f"no images found in {' '.join(map(str, inputs))}")
    from facemark.landmarker import Landmarker

    landmarker = Landmarker.from_options(options or LandmarkerOptions())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = DrawingNames(out, inputs)
    summary = ChipSummary(out=str(out))
    with open(out / "chips.jsonl", "w", encoding="utf-8") as jsonl:
        for path in tqdm(files, desc="chips", unit="image", disable=not progress):
            record = {"image": str(path), "faces": [], "error": None}
            target = names(path)
            stem = target.name.removesuffix("_landmarks.png")
            try:
                reader = ImageReader(path, allow_truncated=landmarker.options.allow_truncated)
                rgb = reader.array()
                summary.images += 1
                if reader.truncated:
                    record["truncated"] = True
                    summary.notices.append(truncated_notice(path))
                for k, face in enumerate(landmarker.detect(rgb)):
                    if min_trust is not None and (face.trust is None or face.trust < min_trust):
                        summary.dropped += 1
                        continue
                    chip = aligned_chip(rgb, face.points, face.scheme, size=size, template=template, margin=margin)
                    name = target.with_name(f"{stem}_face{k}.png")
                    name.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(chip.image).save(name)
                    summary.chips += 1
                    record["faces"].append({
                        "chip": str(name.relative_to(out)), "box": [round(float(v), 2) for v in face.box],
                        "score": round(float(face.score), 4),
                        "trust": None if face.trust is None else round(face.trust, 4),
                        "matrix": np.round(chip.matrix, 6).tolist(), "residual": round(chip.residual, 3)})
            except (ImageError, OSError, ValueError) as e:
                record["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
                summary.failed.append(f"{path}: {record['error']}")
            jsonl.write(json.dumps(record) + "\n")
    return summary
