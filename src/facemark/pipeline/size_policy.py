"""What the face detector sees: the image scaled, and what it looks for in it (a `Look`), so that the work costs
what the photo needs and no face a person would call part of the photo is missed.

By default (`min_face=None`):
- BlazeFace (the default detector) sees a copy whose look side (the longer side; the shorter one for a long
  image) is at most LOOK_SIDE pixels and looks at it whole: faces down to about a tenth of the look side.
- Above TILED_LOOK_SIDE it also looks for a crowd: faces down to CROWD_FACE_SHARE of the look side, or
  CROWD_FACE_PX where that is smaller (a 12-MP photo), with a `Look(crowd=True)` (BlazeFace finds them with YuNet's
  passes, a fraction of its own tiles' time), the copy kept large enough for them (MIN_FACE_IN_COPY). A near
  face in front (a group selfie) does not stop the look (benchmarks/results/group_photos.md).
- A long image (the longer side over the detector's LONG_ASPECT times the shorter: a panorama, a strip of
  photos) is covered along its length by squares of its shorter side.
- MTCNN (a fixed smallest face, `fixed_min_face`) sees the image scaled so a DEFAULT_MIN_FACE (40-px) face becomes
  its own smallest face: every pixel up to LARGE_IMAGE_SIDE.
- An image thinner than MIN_IMAGE_SIDE is not searched.

With `min_face` (pixels of the input image) BlazeFace adds tiles down to that size (time grows with the image's
area over min_face²; the copy is never enlarged), MTCNN sees the image scaled for it. Images above
LARGE_IMAGE_SIDE given as files are never decoded whole (facemark.pipeline.large_images).

Default face sizes found, held by tests/unit/pipeline/test_size_policy.py and tests/scenarios/test_group_photos.py:

| image | smallest face found by default (BlazeFace) |
|---|---|
| up to 1024 px (640×480) | ~1/10 of the longer side (~64 px) |
| 1280×720, 1920×1080 | 1/30 of the longer side (43 px, 64 px) |
| 3840×2160, 4032×3024 (12 MP) | 80 px |
| 8000×1400 (panorama) | 1/30 of its shorter side (47 px) |
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from facemark.detection.core import FaceDetector, Look

# Files and PIL images with a longer side above this are never decoded whole (facemark.pipeline.large_images); up to
# it (a 24-MP phone photo, 6000×4000) the image is decoded whole and everything runs on it
LARGE_IMAGE_SIDE = 6144
# The detector's copy has a look side of at most this (BlazeFace, default look): 3.3× the full-range network's
# 192-px input; more only costs resampling time
LOOK_SIDE = 640
# Smallest face looked for by default by a detector with a fixed smallest face (MTCNN): it then runs on every
# pixel up to LARGE_IMAGE_SIDE
DEFAULT_MIN_FACE = 40.0
# The detector's copy never holds more pixels than this (a small min_face on a big photo would enlarge it)...
MAX_DETECT_PIXELS = 50_000_000
# ...nor, on the reduced path (images above LARGE_IMAGE_SIDE, never decoded whole) with a min_face or a detector
# of fixed smallest face, more than this: its copy must stay small next to the image (pass load_image(path) with
# a smaller min_face to look at every pixel, at the memory cost of a full decode).
HUGE_DETECT_PIXELS = 640 * 640
# Black border around the detector's copy, as a fraction of its shorter side: a face whose centre lies on the
# image's edge is then still a whole face-sized window for the detector (tests/scenarios/test_small_and_border_faces.py)
BORDER_PAD = 0.25
# Above this look side, the default look of a detector that takes a min_face also looks for the faces of a crowd
# (CROWD_FACE_SHARE, CROWD_FACE_PX); up to it, one whole-image look (benchmarks/results/group_photos.md)
TILED_LOOK_SIDE = 1024
# ...down to this share of the look side (a twentieth, with room to spare; 1/24 costs 8 ms less per HD photo but
# finds fewer faces beyond it: docs/decisions.md)...
CROWD_FACE_SHARE = 1 / 30
# ...or down to this many pixels where that is smaller (a 12-MP group photo's faces of ~120 px)
CROWD_FACE_PX = 80.0
# A face looked for keeps at least this many pixels in the detector's copy (it is shrunk by a whole factor no
# larger than that allows): smaller, it would be blurred away before a tile enlarges it
MIN_FACE_IN_COPY = 24.0
# Images whose shorter side is below this are not searched: too thin to hold a face with the context a detector
# needs (a strip of noise a few pixels wide)
MIN_IMAGE_SIDE = 32
# The smallest face BlazeFace's default look finds, as a share of the look side (its 20-px smallest face at the
# 192-px input: benchmarks/detector.py).
FACES_FOUND_BY_DEFAULT = 0.1


def look_side(width: int, height: int, long_aspect: float | None) -> float:
    """The side of the squares a detector's default look sees: the longer side, or for an image longer than
    `long_aspect` times its width (None: never), the shorter side (it is covered along its length)."""
    longer, shorter = max(width, height), min(width, height)
    return float(shorter if long_aspect is not None and longer > long_aspect * shorter else longer)


def detector_look(detector: FaceDetector, width: int, height: int, min_face: float | None, *, reduced: bool,
                  sized: bool) -> tuple[float, Look | None]:
    """(s, look) for a width×height image: image pixels per detector pixel (s ≥ 1 shrinks), and what the detector
    is to look for in its copy (a `Look` in the copy's pixels; None: the detector's own look from its
    construction). A pure function of the detector's declared capabilities (facemark.detection.core.FaceDetector).

    sized: the detector was made by the Landmarker, which then decides what it looks for; a detector given to
    the Landmarker keeps its own look (its min_face, if set, is in pixels of the image).
    - A detector that takes a min_face (BlazeFace), with no min_face asked for: one look at the whole image, the
      look side (see `look_side`) shrunk to at most LOOK_SIDE by a whole factor; above TILED_LOOK_SIDE it also
      looks for a crowd's faces (`crowd_face`), the copy then kept large enough to hold them.
    - The same with a min_face: tiles down to that face, in a copy shrunk only as far as that face allows (never
      enlarged: the tiles enlarge).
    - A detector with a fixed smallest face (MTCNN): scaled so a min_face face (default DEFAULT_MIN_FACE)
      becomes that size; on the reduced path (`reduced`) or for an image above LARGE_IMAGE_SIDE without
      min_face, a copy of at most HUGE_DETECT_PIXELS (so an array and its file give the same faces).
    - Any copy holds at most MAX_DETECT_PIXELS."""
    smallest = detector.fixed_min_face
    tiles = detector.TAKES_MIN_FACE and not smallest
    area = float(width) * float(height)
    s = math.sqrt(area / MAX_DETECT_PIXELS)
    if tiles and min_face is None and (sized or detector.look.min_face is None):
        side = look_side(width, height, detector.LONG_ASPECT)
        # a whole number: the copy's pixel grid then falls on the image's (shrinking by 2 averages 2×2 pixels)
        whole = max(float(math.ceil(side / LOOK_SIDE - 1e-9)), s)
        # the reduced path looks at the whole image only: a crowd's small faces would need a full decode to crop
        crowd = crowd_face(width, height, detector.LONG_ASPECT) if sized and not reduced else None
        if crowd is None:
            return whole, (Look() if sized else None)
        s = max(min(whole, _whole_factor(crowd)), s, 1.0)
        return s, Look(crowd / s, crowd=True)
    if tiles and sized and min_face is not None:
        s = max(s, _whole_factor(min_face), math.sqrt(area / HUGE_DETECT_PIXELS) if reduced else 1.0)
        return s, Look(min_face / s)
    capped = reduced or (min_face is None and max(width, height) > LARGE_IMAGE_SIDE)
    if capped:
        s = max(s, math.sqrt(area / HUGE_DETECT_PIXELS))
    if smallest:
        s = max(s, (DEFAULT_MIN_FACE if min_face is None else min_face) / float(smallest))
    return s, None


def crowd_face(width: int, height: int, long_aspect: float | None) -> float | None:
    """The smallest face the default look looks for, in image pixels: CROWD_FACE_SHARE of the look side or
    CROWD_FACE_PX, the smaller; None up to TILED_LOOK_SIDE (the whole-image look alone)."""
    side = look_side(width, height, long_aspect)
    if side <= TILED_LOOK_SIDE:
        return None
    return min(side * CROWD_FACE_SHARE, CROWD_FACE_PX)


def too_thin(width: int, height: int) -> bool:
    """Whether an image is too thin to hold a face (its shorter side under MIN_IMAGE_SIDE): not searched."""
    return min(width, height) < MIN_IMAGE_SIDE


def _whole_factor(face: float) -> float:
    """The largest whole shrinking factor (≥ 1) that keeps a `face`-pixel face MIN_FACE_IN_COPY pixels wide."""
    return max(1.0, float(math.floor(face / MIN_FACE_IN_COPY + 1e-9)))


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
