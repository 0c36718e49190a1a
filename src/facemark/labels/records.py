"""The record types of label files: `LabelRecord` (one face's labels as a JSON Lines line holds them) and
`AnnotationError`; shared by every annotation format (facemark.labels.annotations, facemark.labels.cvat)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np


class AnnotationError(ValueError):
    """A malformed annotation; the message names the file and line."""


@dataclass
class LabelRecord:
    image: str
    scheme: str = "face88"
    points: np.ndarray | None = None  # (P, 2) float64, pixel-centre coordinates
    box: tuple[float, float, float, float] | None = None
    source: str | None = None
    error: str | None = None
    width: int | None = None
    height: int | None = None

    def to_json(self) -> str:
        points = None if self.points is None else [[_num(x), _num(y)] for x, y in self.points]
        box = None if self.box is None else [_num(v) for v in self.box]
        return json.dumps({"image": self.image, "scheme": self.scheme, "points": points, "box": box,
                           "source": self.source, "error": self.error, "width": self.width,
                           "height": self.height})


def _num(v: float) -> float | None:
    """Round for compact files; NaN/inf become null so every line is strict JSON."""
    v = float(v)
    return round(v, 3) if math.isfinite(v) else None
