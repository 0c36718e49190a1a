"""A trust score per face, in [0, 1]: how far its points can be believed. Geometry only; the network calls that
feed it are the Landmarker's (`Landmarker(trust=True)`).

A landmark network that sees a face it knows gives the same points whatever small change is made to its input;
on an upside-down face, a non-face or a badly framed crop it guesses, and its guesses disagree. Two checks on a
crop framed on points P of the face, predicted together with its mirror image (one batch of two crops):

- re-framing: the points predicted from that crop, against P (is the answer a fixed point of the framing?);
- mirror: the points predicted from the same crop flipped left/right, flipped back through the layout's
  mirror permutation, against P.

`Landmarker.detect` takes both from its last refining pass, at no extra cost: P is the previous pass's points
(the crop is framed on them), and the face's final points are the average of that pass's two predictions.
`Landmarker.trust_scores(image, points)` runs the pass for any given points (P = those points).

disagreement = (mean point distance of the first + mean point distance of the second) / the distance between
the outer eye corners (not less than a tenth of the face's box, so a collapsed shape does not divide by ~0),
and trust = exp(-disagreement / TRUST_SCALE). The means are over the points inside the image when the image's
size is given: a face cut by the image's edge is judged by what can be seen of it (the points beyond the edge
are the network's guesses, which a mirrored crop with the black beyond the edge on its other side does not
repeat), unless fewer than MIN_VISIBLE_SHARE of them are inside.

Measured on the 337 AFW faces the shipped face88 model finds (held out from its training; human labels over the
34 points face88 shares with iBUG): Spearman rank correlation between the disagreement and the NME, and the NME
of the faces kept at the threshold that keeps 95%: benchmarks/results/trust.md (`python benchmarks/trust.py`).
"""

from __future__ import annotations

import numpy as np

from facemark.layouts import Scheme
from facemark.pipeline.crops import inside_image

# disagreement at which trust is 1/e (benchmarks/results/trust.md)
TRUST_SCALE = 0.074
# the eye-corner distance never counts for less than this share of the points' box side
MIN_EYE_DISTANCE_SHARE = 0.1
# a face is judged by its points inside the image when at least this share of them is (benchmarks/results/
# hard_trust.md)
MIN_VISIBLE_SHARE = 0.25


def disagreement(points: np.ndarray, reframed: np.ndarray, mirrored: np.ndarray, scheme: Scheme,
                 image_size: tuple[int, int] | None = None) -> np.ndarray:
    """(mean ‖reframed − points‖ + mean ‖mirrored − points‖) / eye-corner distance, for (..., P, 2)
    shapes in pixels of one image; NaN points are left out of the means, and so are points outside the image
    when its (width, height) is given (unless fewer than MIN_VISIBLE_SHARE are inside)."""
    p = np.asarray(points, np.float64)
    side = np.nanmax(p, axis=-2) - np.nanmin(p, axis=-2)
    scale = np.maximum(scheme.inter_ocular_distance(p), MIN_EYE_DISTANCE_SHARE * side.max(axis=-1))
    e1 = np.linalg.norm(np.asarray(reframed, np.float64) - p, axis=-1)
    e2 = np.linalg.norm(np.asarray(mirrored, np.float64) - p, axis=-1)
    if image_size is not None:
        judged = judged_points(p, image_size)
        e1, e2 = np.where(judged, e1, np.nan), np.where(judged, e2, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1, d2 = np.nanmean(e1, axis=-1), np.nanmean(e2, axis=-1)
        return (d1 + d2) / scale


def judged_points(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(..., P) bool: the points of (..., P, 2) pixel `points` a face is judged by in an image of (width, height):
    those inside it, or every point when fewer than MIN_VISIBLE_SHARE of them are."""
    inside = inside_image(points, image_size)
    return inside | (inside.mean(axis=-1, keepdims=True) < MIN_VISIBLE_SHARE)


def trust_from_disagreement(d: np.ndarray | float) -> np.ndarray:
    """exp(-d / TRUST_SCALE) in [0, 1]; NaN or infinite disagreement -> 0."""
    d = np.asarray(d, np.float64)
    t = np.exp(-np.nan_to_num(d, nan=np.inf, posinf=np.inf) / TRUST_SCALE)
    return np.clip(t, 0.0, 1.0)
