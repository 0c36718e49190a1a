"""What the face detector sees: the image scaled (and, for BlazeFace, the smallest face it is asked for), so that
the work costs what the photo needs.

By default (`min_face=None`) the detector takes **one look at the whole image**: the faces a person would call
the subjects of a photo, at any size, in bounded time.

- BlazeFace (the default detector) sees a copy whose look side (the longer side; the shorter one for a long image,
  see below) is at most LOOK_SIDE pixels: its networks take 128- and 192-px inputs, so a larger copy only costs
  resampling time. It finds faces down to about a tenth of the look side (`FACES_FOUND_BY_DEFAULT`).
- A long image (the longer side over BlazeFace's LONG_IMAGE_ASPECT times the shorter: a panorama, a strip of
  photos) is covered along its length by squares of its shorter side, so a face filling a tenth of the strip's
  height is found wherever it is.
- MTCNN (a fixed smallest face, `min_face_size`) sees the image scaled so a DEFAULT_MIN_FACE (40-px) face becomes
  its own smallest face: every pixel up to LARGE_IMAGE_SIDE.

With `min_face` (pixels of the input image) smaller faces are looked for: BlazeFace adds tiled passes down to
that size (time grows with the image's area over min_face²), MTCNN sees the image scaled for it. Images above
LARGE_IMAGE_SIDE given as files are never decoded whole (facemark.pipeline.large_images); the detector's copy then holds at
most HUGE_DETECT_PIXELS unless the default look needs more (a long image keeps its short side up to LOOK_SIDE).

Default face sizes found, as the smallest face's side over the image's look side (held by
tests/test_size_policy.py on the sample face pasted at known sizes; `FACES_FOUND_BY_DEFAULT`):

| image | look side | smallest face found by default (BlazeFace) |
|---|---|---|
| 640×480 | 640 | ~64 px |
| 1280×720 | 1280 | ~128 px |
| 1920×1080 | 1920 | ~192 px |
| 4032×3024 (12 MP) | 4032 | ~400 px |
| 8000×1400 (panorama) | 1400 | ~140 px |
| 20000×200 (strip) | 200 | ~20 px |
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

# Files and PIL images with a longer side above this are never decoded whole (facemark.pipeline.large_images). Up to this
# size (a 12-MP phone photo, 4032×3024) the image is decoded whole and everything runs on it.
LARGE_IMAGE_SIDE = 4096
# The detector's copy has a look side of at most this (BlazeFace, default look): 3.3× the full-range network's
# 192-px input, so the network sees the same pixels; more only costs resampling time.
LOOK_SIDE = 640
# Smallest face looked for by default by a detector with a fixed smallest face (MTCNN): 40 px, so it runs on
# every pixel up to LARGE_IMAGE_SIDE (a 12-MP photo: ~0.6 s of detection on one core).
DEFAULT_MIN_FACE = 40.0
# The detector's copy never holds more pixels than this (a small min_face on a big photo would enlarge it)...
MAX_DETECT_PIXELS = 50_000_000
# ...nor, on the reduced path (images above LARGE_IMAGE_SIDE, never decoded whole) with a min_face or a detector
# of fixed smallest face, more than this: its copy must stay small next to the image (pass load_image(path) with
# a smaller min_face to look at every pixel, at the memory cost of a full decode).
HUGE_DETECT_PIXELS = 640 * 640
# Black border around the detector's copy, as a fraction of its shorter side: a face whose centre lies on the
# image's edge is then still a whole face-sized window for the detector. 30 HELEN faces cut through their middle
# by the left edge: found 21 without, 26 / 27 / 28 with 0.10 / 0.15 / 0.25 (tests/test_small_and_border_faces.py).
BORDER_PAD = 0.25
# Above this longer side, BlazeFace's default look adds one level of tiles twice as fine as the whole image (unless
# its short-range network finds a face filling a quarter of the image): group photos keep faces down to ~1/20 of
# the longer side. Up to it, one whole-image pass (faces from ~1/10: 64 px in a 640-px photo); tiles there changed
# the framing of 17 infant faces and lost 6 (benchmarks/passes.py).
TILED_LOOK_SIDE = 1024
# The smallest face BlazeFace's default look finds, as a share of the look side (its 20-px smallest face at the
# 192-px input: benchmarks/detector.py).
FACES_FOUND_BY_DEFAULT = 0.1


def look_side(width: int, height: int, long_aspect: float | None) -> float:
    """The side of the squares a detector's default look sees: the longer side, or for an image longer than
    `long_aspect` times its width (None: never), the shorter side (it is covered along its length)."""
    longer, shorter = max(width, height), min(width, height)
    return float(shorter if long_aspect is not None and longer > long_aspect * shorter else longer)


def detect_scale(detector, width: int, height: int, min_face: float | None, *, reduced: bool,
                 own_min_face: float | None, owns_detector: bool) -> float:
    """Image pixels per detector pixel (s ≥ 1 shrinks) for a width×height image, and, for a detector that tiles
    (a `min_face` attribute, BlazeFace) created by the Landmarker (`owns_detector`), its `min_face` set in its own
    pixels: the one asked for, or its own default (`own_min_face`, None: the default look). A tiling detector
    given to the Landmarker with no min_face of its own gets the default look's scale too.

    - A tiling detector without min_face: the look side (see `look_side`) shrunk to at most LOOK_SIDE by a whole
      factor.
    - A detector with a fixed smallest face (`min_face_size`, MTCNN): scaled so a min_face face (default
      DEFAULT_MIN_FACE) becomes that size; on the reduced path (`reduced`) or for an image above
      LARGE_IMAGE_SIDE without min_face, a copy of at most HUGE_DETECT_PIXELS (so an array and its file give
      the same faces).
    - Any copy holds at most MAX_DETECT_PIXELS."""
    smallest = getattr(detector, "min_face_size", None)
    tiles = hasattr(detector, "min_face") and not smallest
    area = float(width) * float(height)
    s = math.sqrt(area / MAX_DETECT_PIXELS)
    # a detector given to the Landmarker keeps its settings; its min_face, if set, is in pixels of the image
    default_look = tiles and min_face is None and (owns_detector or detector.min_face is None)
    if default_look:
        side = look_side(width, height, getattr(detector, "long_aspect", None))
        if owns_detector:
            detector.min_face = own_min_face
            if hasattr(detector, "default_tiles"):
                detector.default_tiles = max(width, height) > TILED_LOOK_SIDE
        # a whole number: the copy's pixel grid then falls on the image's (shrinking by 2 averages 2×2 pixels)
        return max(float(math.ceil(side / LOOK_SIDE - 1e-9)), s)
    capped = reduced or (min_face is None and max(width, height) > LARGE_IMAGE_SIDE)
    if capped:
        s = max(s, math.sqrt(area / HUGE_DETECT_PIXELS))
    if smallest:
        s = max(s, (DEFAULT_MIN_FACE if min_face is None else min_face) / float(smallest))
    if tiles and owns_detector:
        detector.min_face = min_face / max(s, 1.0)
    return s


def scaled_for_detector(rgb: np.ndarray, s: float) -> tuple[np.ndarray, float]:
    """(copy, exact s): `rgb` at about 1/s of its size, with full = (small + 0.5) * s - 0.5 exactly; `rgb` itself
    and 1.0 when s rounds to 1. Bilinear both ways (OpenCV's INTER_LINEAR, which samples the input near each
    output pixel, as MediaPipe prepares its detector's input): 0.5 ms to shrink a 12-MP photo by 7, against 11 ms
    for an area average; a detector does not need the antialiasing (the size tests and the group photos find the
    same faces), and the landmark crops are cut from the full image."""
    height, width = rgb.shape[:2]
    longer = max(width, height)
    side = max(12, math.floor(longer / s + 1e-9))  # as the reduced path asks ImageReader.downscaled: the same copy
    if side == longer:
        return rgb, 1.0
    s = longer / side
    out = (side, max(1, math.floor(height / s))) if width >= height else (max(1, math.floor(width / s)), side)
    if side < longer:
        # fx, fy given (no dsize): OpenCV keeps exactly that scale on both axes, so the convention above holds
        small = cv2.resize(rgb, None, fx=1.0 / s, fy=1.0 / s, interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(small[:out[1], :out[0]]), s
    pil = Image.fromarray(rgb).resize(out, Image.Resampling.BILINEAR, box=(0, 0, out[0] * s, out[1] * s))
    return np.asarray(pil), s
