"""Which way up a face is: faces lying on their side or upside down, in their crop or in the image.

A face is **surely upright** when its last batch's mirror images agree (passes.ORIENTATION_CHECK) and its points are
trusted (ORIENTATION_TRUST): a face upside down in its crop gets a mirror-consistent upright shape drawn on it
(faces are left/right symmetric either way up), but not one the re-framing agrees with.

- A face that is not surely upright is tried the four ways up in its crop (`four_ways_up`).
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

# A face whose trust is below this is not surely upright (see the module docstring). Upright HELEN faces, even
# turned by 45°, score above 0.28. 0.2 against 0.1, 30 HELEN faces turned by 135° / 180°: NME ×1.22 / ×1.01 of 0°
# against ×1.22 / ×1.15 (benchmarks/rotation.py).
ORIENTATION_TRUST = 0.2
# Ways up tried (every 360° / ORIENTATION_STEPS). 8 (every 45°) was measured too: better at 60° of roll, but the
# mirror agreement then picks more wrong ways for faces at 90-180° (benchmarks/rotation.py).
ORIENTATION_STEPS = 4
# A face is turned away from the way the detector found it only when that way's re-framed mirror images agree at
# least this much better (its gap at most this share of the detector's way's). Motion-blurred upright faces (the
# first 60 HELEN-train faces, a 25-px line at 45°: issue 22, mediapipe#221) came back turned 2 times in 60 with
# the plain minimum, 0 with 0.7; rotation.md's turned faces: benchmarks/rotation.py.
KEEP_DETECTED_WAY = 0.7
# A face found only in a turned copy of the image, or still not surely upright after `four_ways_up`, is kept
# only when its trust is at least this. Of 222 false faces on 200 face-free images, 171 came from turned copies
# and nearly all were not surely upright, trust ≤ 0.36 (2 at 0.3 or more). Of 1,331 real faces (AFW, LFPW train,
# infants), 35 are not surely upright: 14 with trust 0.15-0.3 (5 of them with NME under 0.1), which this drops
# (benchmarks/results/false_faces.md).
UNSURE_MIN_TRUST = 0.3


def surely_upright(mirror_gap: float, trust: float) -> bool:
    return mirror_gap <= ORIENTATION_CHECK and trust >= ORIENTATION_TRUST


def four_ways_up(passes: LandmarkPasses, crop: Cropper, transforms: list[CropTransform]) -> list[tuple]:
    """For faces whose way up is in doubt, from their first crops: each quarter turn of the crop (every
    360° / ORIENTATION_STEPS), predicted with its mirror, re-framed on its own points and roll and predicted again
    with its mirror; the way whose re-framed mirror images agree best is kept, unless it wins by less than
    KEEP_DETECTED_WAY over the detector's own way. (The trust score's disagreement,
    re-framing and mirror together, picks a face upside down better, but more often a wrong way on hard upright
    faces: AFW 4.25% against 4.03% NME, benchmarks/rotation.py 135° ×1.91 against ×1.50.)
    Per face: (its averaged points, its mirror disagreement)."""
    steps = ORIENTATION_STEPS
    tried = [dataclasses.replace(t, angle=math.remainder(t.angle + 2 * math.pi * k / steps, 2 * math.pi))
             for t in transforms for k in range(steps)]
    rough, _, _, _ = passes.predict_mirrored(crop, tried)
    framed = [passes.framing(p, roll_angle(p, passes.scheme)) for p in rough]
    better, gaps, _, _ = passes.predict_mirrored(crop, framed)
    out = []
    for n in range(len(transforms)):
        best = min(range(steps * n, steps * (n + 1)), key=lambda j: gaps[j])
        if gaps[best] > KEEP_DETECTED_WAY * gaps[steps * n]:
            best = steps * n  # another way wins only by a little: the detector's own way up stands
        out.append((better[best], gaps[best]))
    return out
