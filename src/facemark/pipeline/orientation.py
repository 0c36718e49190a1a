"""Which way up a face is: faces lying on their side or upside down, in their crop or in the image.

A face is **surely upright** when its last batch's mirror images agree (passes.ORIENTATION_CHECK) and its points are
trusted (ORIENTATION_TRUST): a face upside down in its crop gets a mirror-consistent upright shape drawn on it
(faces are left/right symmetric either way up), but not one the re-framing agrees with.

- A face that is not surely upright is tried the four ways up in its crop (`four_ways_up`); one the detector found
  only for reaching beyond the image's edge, only from passes.EDGE_FIRST_TRUST.
- When no face found upright in the image is surely upright, the detector looks again in the image turned by 90°,
  180° and 270° (candidates.QUARTER_TURNS; `Landmarker(find_turned=False)` skips it). A face found only there,
  or still not surely upright, is kept only when its trust reaches UNSURE_MIN_TRUST: on face-free images (noise,
  textures) that is where most false faces came from.
"""

from __future__ import annotations

import dataclasses
import math

from facemark.pipeline.passes import ORIENTATION_CHECK, LandmarkPasses, Cropper
from facemark.pipeline.crops import CropTransform, roll_angle

# A face whose trust is below this is not surely upright (benchmarks/results/rotation.md)
ORIENTATION_TRUST = 0.2
# Ways up tried, every 360° / ORIENTATION_STEPS (benchmarks/results/rotation.md)
ORIENTATION_STEPS = 4
# Another way up replaces the detector's only when its re-framed mirror gap is at most this share of the
# detector's way's (benchmarks/results/rotation.md)
KEEP_DETECTED_WAY = 0.7
# The trust a face found only in a turned copy, or still not surely upright, needs to be kept
# (benchmarks/results/false_faces.md)
UNSURE_MIN_TRUST = 0.3


def surely_upright(mirror_gap: float, trust: float) -> bool:
    return mirror_gap <= ORIENTATION_CHECK and trust >= ORIENTATION_TRUST


def four_ways_up(passes: LandmarkPasses, crop: Cropper, transforms: list[CropTransform],
                 image_size: tuple[int, int] | None = None) -> list[tuple]:
    """For faces whose way up is in doubt, from their first crops: each quarter turn of the crop (every
    360° / ORIENTATION_STEPS), predicted with its mirror, re-framed on its own points and roll and predicted again
    with its mirror; the way whose re-framed mirror images agree best is kept, unless it wins by less than
    KEEP_DETECTED_WAY over the detector's own way. Per face: (its averaged points, its mirror disagreement: over
    its points inside an image of `image_size` (width, height), when given)."""
    steps = ORIENTATION_STEPS
    tried = [dataclasses.replace(t, angle=math.remainder(t.angle + 2 * math.pi * k / steps, 2 * math.pi))
             for t in transforms for k in range(steps)]
    rough, _, _, _ = passes.predict_mirrored(crop, tried)
    framed = [passes.framing(p, roll_angle(p, passes.scheme)) for p in rough]
    better, gaps, _, _ = passes.predict_mirrored(crop, framed, image_size)
    out = []
    for n in range(len(transforms)):
        best = min(range(steps * n, steps * (n + 1)), key=lambda j: gaps[j])
        if gaps[best] > KEEP_DETECTED_WAY * gaps[steps * n]:
            best = steps * n  # another way wins only by a little: the detector's own way up stands
        out.append((better[best], gaps[best]))
    return out
