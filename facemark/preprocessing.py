"""The network's input: face box -> square -> crop (padded where it leaves the image) -> S×S -> normalised.

`CropTransform` holds the one similarity transform between image and crop, so points go both ways exactly:
`to_crop(points)` and `to_image(points)` are inverses (a test proves the round trip). Pixel-centre
convention on both sides: the square of side `side` centred on (cx, cy) in the image covers the crop's
pixels 0..S-1 edge to edge, i.e. x_crop = (x - cx) * S / side + S / 2 - 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Default crop: the original's 160-px input, the face box widened by this margin so the jaw stays inside.
DEFAULT_SIZE = 160
DEFAULT_MARGIN = 1.25


@dataclass(frozen=True)
class CropTransform:
    cx: float  # centre of the square in image pixels
    cy: float
    side: float  # side of the square in image pixels
    size: int  # output crop size S

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return self.size / self.side

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        out = np.empty_like(p)
        out[..., 0] = (p[..., 0] - self.cx) * self.scale + self.size / 2 - 0.5
        out[..., 1] = (p[..., 1] - self.cy) * self.scale + self.size / 2 - 0.5
        return out

    def to_image(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        out = np.empty_like(p)
        out[..., 0] = (p[..., 0] + 0.5 - self.size / 2) / self.scale + self.cx
        out[..., 1] = (p[..., 1] + 0.5 - self.size / 2) / self.scale + self.cy
        return out

    def edge_box(self) -> tuple[float, float, float, float]:
        """The square in pixel-edge coordinates (what PIL's resize box expects)."""
        left = self.cx + 0.5 - self.side / 2
        top = self.cy + 0.5 - self.side / 2
        return left, top, left + self.side, top + self.side


def box_from_points(points: np.ndarray) -> tuple[float, float, float, float]:
    """Tight box (x0, y0, x1, y1) around the finite points."""
    p = np.asarray(points, dtype=np.float64)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        raise ValueError("no finite points to make a box from")
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def square_crop_transform(box, size: int = DEFAULT_SIZE, margin: float = DEFAULT_MARGIN) -> CropTransform:
    """Extend a face box to a square (longer side × margin, same centre) that maps onto an S×S crop."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 < x0 or y1 < y0:
        raise ValueError(f"invalid face box {box}")
    side = max(x1 - x0, y1 - y0, 1.0) * margin
    return CropTransform(cx=(x0 + x1) / 2, cy=(y0 + y1) / 2, side=side, size=int(size))


def crop_image(image: np.ndarray | Image.Image, transform: CropTransform) -> np.ndarray:
    """The S×S RGB uint8 crop; parts of the square outside the image are black."""
    left, top, right, bottom = transform.edge_box()
    # Cut the integer region around the square first (black outside the image), so the resize only ever
    # touches the face, then resize with an antialiasing filter from the float box. An array is sliced
    # before Pillow sees it: Image.fromarray would copy the whole image for every crop.
    l0, t0 = math.floor(left), math.floor(top)
    r0, b0 = math.ceil(right), math.ceil(bottom)
    if isinstance(image, Image.Image):
        region = image.crop((l0, t0, r0, b0))
    else:
        region = Image.fromarray(array_region(image, (l0, t0, r0, b0)))
    resample = Image.Resampling.BILINEAR
    out = region.resize((transform.size, transform.size), resample,
                        box=(left - l0, top - t0, right - l0, bottom - t0))
    return np.asarray(out)


def array_region(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """rgb[top:bottom, left:right] of an H×W×3 array, black where the box leaves the image (as Pillow's
    crop pads)."""
    left, top, right, bottom = box
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    if (x0, y0, x1, y1) == (left, top, right, bottom):
        return np.ascontiguousarray(rgb[top:bottom, left:right])
    part = np.zeros((bottom - top, right - left) + rgb.shape[2:], np.uint8)
    if x0 < x1 and y0 < y1:
        part[y0 - top:y1 - top, x0 - left:x1 - left] = rgb[y0:y1, x0:x1]
    return part


def normalise_crop(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB (…, H, W, 3) -> float32 (…, 3, H, W) in [-1, 1], the network's input."""
    x = np.asarray(crops, dtype=np.float32)
    x = np.moveaxis(x, -1, -3)
    return x / 127.5 - 1.0
