"""From detections to candidates: the faces a detector finds in the detector's copy of the image (upright or in
the image turned by quarter turns), each with the first crop the landmark passes start from, in image pixels.

Each face's first crop is the detector's box mapped to the box the landmark network was trained on (a per-detector
calibration, FaceDetector.landmark_box), squared, and turned by the face's roll: from the detector's eye
keypoints when they say the face is tilted by FIRST_CROP_MIN_ROLL or more, else upright (the quarter turn it was
found in, for a turned image).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facemark.detection.core import Detection, FaceDetector, Look
from facemark.detection.nms import nms
from facemark.pipeline.crops import CropTransform, face_box_crop_transform, square_crop_transform

# The first crop stays upright below this roll of the detector's eye keypoints: BlazeFace's are a few pixels off
# (turning by them cost 5.00% -> 5.59% NME on AFW, benchmarks/human_labels.py), the network is trained on rolls
# up to ±45°, and a refining pass turns the crop by the roll of its own, better, eye points.
FIRST_CROP_MIN_ROLL = math.radians(25)
QUARTER_TURNS = (1, 3, 2)  # the image turned 90° counter-clockwise, clockwise, then 180°, for faces not upright


@dataclass
class Candidate:
    """A face the detector found, before its landmarks: where the landmark passes start."""

    detection: Detection  # box, score and keypoints in image pixels (the box may reach outside the image)
    transform: CropTransform  # the first pass's crop, turned by the face's roll
    landmark_box: tuple[float, float, float, float]  # axis-aligned estimate of the box of its points, pixels
    turn: int = 0  # quarter turns (counter-clockwise) of the image it was found in; 0: upright


def find_candidates(detector: FaceDetector, small: np.ndarray, s: float, pad: int, turns: tuple[int, ...],
                    crop_size: int, margin: float, look: Look | None = None, framing=None) -> list[Candidate]:
    """Faces found in `small` (the image scaled by 1/s: full = (small + 0.5) * s - 0.5), inside a border
    `pad` pixels wide, in each of its quarter `turns` (counter-clockwise; 0: upright), in image pixels; `look`:
    what the detector looks for in `small` (None: its own settings). A face at 45° may show in two turns: over
    several turns, overlapping boxes are merged (best score kept). `framing`: the network's
    ModelConfig.face_framing (a layout of your own), None for the built-in layouts."""
    found = [c for k in turns for c in _detect_turned(detector, small, pad, k, crop_size, margin, look, framing)]
    if len(found) > 1 and len(turns) > 1:
        boxes = np.array([c.detection.box for c in found])
        found = [found[i] for i in nms(boxes, np.array([c.detection.score for c in found]), 0.4)]
    # padded pixels -> scaled-copy pixels -> image pixels
    return [_moved(c, lambda q: (q - pad + 0.5) * s - 0.5, s) for c in found]


def _detect_turned(detector: FaceDetector, small: np.ndarray, pad: int, k: int, crop_size: int,
                   margin: float, look: Look | None, framing=None) -> list[Candidate]:
    """The detector on `small` turned counter-clockwise by k quarter turns, inside a border `pad` wide
    (FaceDetector.detect_padded); results in the pixels of `small` padded (x + pad, y + pad)."""
    height, width = small.shape[0] + 2 * pad, small.shape[1] + 2 * pad
    turned = np.ascontiguousarray(np.rot90(small, k)) if k else small
    found = []
    for d in detector.detect_padded(turned, pad, look):
        x0, y0, x1, y1 = detector.landmark_box(d.box)
        roll = keypoint_roll(d.keypoints)
        if abs(roll) < FIRST_CROP_MIN_ROLL:
            roll = 0.0  # rough eye keypoints: a refining pass levels the crop on the network's own points
        # the calibrated box's offset from the detector's box is measured on upright faces: turn it with the face
        bx, by = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
        dx, dy = (x0 + x1) / 2 - bx, (y0 + y1) / 2 - by
        c, s = math.cos(roll), math.sin(roll)
        cx, cy = bx + c * dx - s * dy, by + s * dx + c * dy
        w, h = x1 - x0, y1 - y0
        if framing is None:
            t = square_crop_transform((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), crop_size, margin)
            t = CropTransform(t.cx, t.cy, t.side, t.size, roll)
        else:  # a layout of your own: its crop relative to the face's box (ModelConfig.face_framing)
            t = face_box_crop_transform((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), crop_size, margin,
                                        framing, roll)
        half_w, half_h = (abs(c) * w + abs(s) * h) / 2, (abs(s) * w + abs(c) * h) / 2
        candidate = Candidate(d, t, (cx - half_w, cy - half_h, cx + half_w, cy + half_h), k)
        found.append(_moved(candidate, functools.partial(_unturn, k=k, width=width, height=height), 1.0,
                            k * math.pi / 2))
    return found


def _unturn(points: np.ndarray, k: int, width: int, height: int) -> np.ndarray:
    """Pixels of a width×height image turned counter-clockwise by k quarter turns (np.rot90) -> its own pixels."""
    p = np.asarray(points, np.float64)
    x, y = p[..., 0], p[..., 1]
    x, y = {0: (x, y), 1: (width - 1 - y, x), 2: (width - 1 - x, height - 1 - y), 3: (y, height - 1 - x)}[k % 4]
    return np.stack([x, y], axis=-1)


def _moved(c: Candidate, move: Callable[[np.ndarray], np.ndarray], scale: float, turn: float = 0.0) -> Candidate:
    """A candidate carried into another frame by a similarity: `move` maps points, `scale` multiplies lengths,
    `turn` (radians) is added to angles. Boxes stay axis-aligned (exact for quarter turns)."""
    def box(b):
        corners = move(np.array([[b[0], b[1]], [b[2], b[3]]], np.float64))
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    d, t = c.detection, c.transform
    keypoints = None if d.keypoints is None else move(d.keypoints)
    cx, cy = move(np.array([t.cx, t.cy], np.float64))
    angle = math.remainder(t.angle + turn, 2 * math.pi)
    return Candidate(dataclasses.replace(d, box=box(d.box), keypoints=keypoints),
                     CropTransform(float(cx), float(cy), t.side * scale, t.size, angle), box(c.landmark_box), c.turn)


def keypoint_roll(keypoints) -> float:
    """Roll (radians, as preprocessing.roll_angle) from a detection's eye keypoints (the first two: the eye on
    the image's left, then the other); 0.0 without usable keypoints."""
    if keypoints is None:
        return 0.0
    k = np.asarray(keypoints, np.float64)
    if k.ndim != 2 or len(k) < 2 or not np.isfinite(k[:2]).all():
        return 0.0
    dx, dy = k[1] - k[0]
    return math.atan2(dy, dx) if dx or dy else 0.0
