"""Images too large to decode whole (a 12000×12000 scan, given as a file or a PIL image).

The detector sees a shrunk copy (facemark.pipeline.size_policy); each face is then cut from the image decoded at the
smallest size that keeps it sharp: a JPEG file at 1/2, 1/4 or 1/8 size by libjpeg (nearly free), other formats
decoded once, whole, and cut from without further copies. Points always come in full-resolution pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator

import numpy as np

from facemark.images import ImageReader
from facemark.pipeline.crops import CropTransform, crop_image

# A face is cut from the smallest decode in which its crop square still spans this many pixels per crop pixel,
# so the crop's own antialiased resize does the last shrinking. Measured on the upscaled sample with the same
# boxes, the worst point moves 0.07-0.09% of the face's size from the full-resolution crop's (0.10-0.14% at 1.0,
# 0.7% at 0.5); the detector's box, found on a differently shrunk copy, moves it more (tests/unit/pipeline/test_large_images.py).
CROP_DETAIL = 2.0

Cropper = Callable[[CropTransform], np.ndarray]  # a full-resolution crop transform -> its S×S×3 uint8 crop


def croppers_by_decode(reader: ImageReader, transforms: list[CropTransform], crop_size: int,
                       detail: float = CROP_DETAIL) -> Iterator[tuple[list[int], Cropper]]:
    """(indices of the faces, a cropper for them), one decode at a time, smallest decode first: each face is
    cut from the largest reduction at which its first crop square keeps `detail` pixels per crop pixel (the
    refined square is about as large, so it serves every pass)."""
    reductions = [max(r for r in reader.reductions if r == 1 or t.side / r >= detail * crop_size)
                  for t in transforms]
    for r in sorted(set(reductions), reverse=True):
        yield [i for i, ri in enumerate(reductions) if ri == r], functools.partial(reduced_crop, reader, r)


def reduced_crop(reader: ImageReader, reduction: int, t: CropTransform) -> np.ndarray:
    """The crop of full-resolution transform `t`, cut from the image decoded at 1/`reduction` size."""
    cx, cy = reader.to_reduced((t.cx, t.cy), reduction)
    reduced = CropTransform(cx=float(cx), cy=float(cy), side=t.side / reduction, size=t.size, angle=t.angle)
    return region_crop(functools.partial(reader.region, reduction=reduction), reduced)


def region_crop(region: Callable[[tuple[int, int, int, int]], np.ndarray], t: CropTransform) -> np.ndarray:
    """`crop_image(image, t)` for an image we only cut parts of: `region(box)` gives the pixels of an integer
    box (black outside the image), so the whole image is never converted (Pillow copies an array it is given).

    The part is one pixel wider on each side than the square's integer box: crop_image cuts that box out of it
    itself, so the crop is the one the whole image gives, whichever way the floats round."""
    left, top, right, bottom = t.edge_box()
    x0, y0 = math.floor(left) - 1, math.floor(top) - 1
    part = region((x0, y0, math.ceil(right) + 1, math.ceil(bottom) + 1))
    return crop_image(part, CropTransform(cx=t.cx - x0, cy=t.cy - y0, side=t.side, size=t.size, angle=t.angle))


def cut_from_decodes(reader: ImageReader, transforms: list[CropTransform]) -> list[np.ndarray]:
    """The crops of full-resolution `transforms` (eye patches' squares), in their order, each cut from the
    smallest decode that still has a pixel per crop pixel: the faces' decode, as a rule, which the reader keeps."""
    out: list[np.ndarray | None] = [None] * len(transforms)
    for indices, crop in croppers_by_decode(reader, transforms, transforms[0].size if transforms else 1, detail=1.0):
        for i in indices:
            out[i] = crop(transforms[i])
    return out
