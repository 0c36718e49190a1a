"""Scoring predictions against human 68-point (iBUG / 300-W) annotations, whatever layout the predictor has.

- ibug68 predictions are scored over all 68 points or the inner 51 (eyebrows, eyes, nose, mouth: 17-67).
- face88 predictions are scored over the 34 points the two layouts share (`IBUG68_TO_FACE88`, face88.md):
  the "anchor NME". ibug68 predictions can be scored over the same 34 points, for one column across tools.
- "5pt": the five points of the MTFL / AFLW-style benchmarks (eye centres, nose tip, mouth corners), from
  either layout: an eye centre is the mean of that eye's contour points (iBUG 36-41 / 42-47, face88 21-28 /
  29-36); nose tip iBUG 30 = face88 78, mouth corners iBUG 48 / 54 = face88 53 / 59.
- The normaliser is always the human shape's outer eye corners (iBUG 36 and 45).
- A tool that finds no face (or none on the annotated one) gets no NME: the face counts as a failure in
  the failure rate and the AUC, and is listed as not found.
"""

from __future__ import annotations

import numpy as np

from facemark.detection.nms import box_overlap
from facemark.evaluation.metrics import auc, failure_rate
from facemark.pipeline.crops import box_from_points
from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS, IBUG68_TO_FACE88, get_scheme

SUBSETS = ("68", "inner51", "anchors34", "5pt")
INNER51 = np.arange(17, 68)
MATCH_IOU = 0.3  # a predicted face is the annotated one when their point boxes overlap at least this much


def five_points(points: np.ndarray, scheme: str) -> np.ndarray:
    """(5, 2) left eye centre, right eye centre, nose tip, left and right mouth corner (image left first) of an
    ibug68 or face88 shape (see the module docstring)."""
    layout = get_scheme(scheme)
    # nose tip and mouth corners by their iBUG index, through the shared-point mapping for face88
    single = [IBUG68_TO_FACE88[i] if layout.name == "face88" else i for i in (30, 48, 54)]
    p = np.asarray(points, np.float64)
    eyes = [p[layout.region_slice(eye)].mean(axis=0) for eye in ("left_eye", "right_eye")]
    return np.stack(eyes + [p[i] for i in single])


def match_face(candidates: list[np.ndarray], truth68: np.ndarray) -> int | None:
    """Index of the predicted shape that is the annotated face (best point-box overlap), or None."""
    truth_box = box_from_points(truth68)
    best, best_iou = None, MATCH_IOU
    for i, points in enumerate(candidates):
        finite = points[np.isfinite(points).all(axis=1)]
        if len(finite) < 2:
            continue
        iou = float(box_overlap(np.asarray(box_from_points(finite)), np.asarray([truth_box]))[0])
        if iou >= best_iou:
            best, best_iou = i, iou
    return best


def scorable_points(pred: np.ndarray, scheme: str, truth68: np.ndarray,
                    subset: str) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) points of one subset, in matching order. Raises ValueError when the predictor's layout
    cannot be scored over that subset (face88 has only the 34 anchors)."""
    scheme = get_scheme(scheme).name
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; known: {', '.join(SUBSETS)}")
    if subset == "5pt" and scheme in ("face88", "ibug68"):
        return five_points(pred, scheme), five_points(truth68, "ibug68")
    if scheme == "face88":
        if subset != "anchors34":
            raise ValueError(f"face88 predictions are scored over the 34 shared points or 5pt, not {subset}")
        return pred[FACE88_ANCHORS], truth68[IBUG68_ANCHORS]
    if scheme != "ibug68":
        raise ValueError(f"cannot score {scheme} predictions against iBUG 68-point labels")
    index = {"68": np.arange(68), "inner51": INNER51, "anchors34": IBUG68_ANCHORS}[subset]
    return pred[index], truth68[index]


def nme_against_ibug68(pred: np.ndarray, scheme: str, truth68: np.ndarray, subset: str) -> float:
    """Mean point error over the subset / distance between the human outer eye corners (iBUG 36, 45)."""
    truth68 = np.asarray(truth68, np.float64)
    if truth68.shape != (68, 2):
        raise ValueError(f"expected 68 human points, got {truth68.shape}")
    p, t = scorable_points(np.asarray(pred, np.float64), scheme, truth68, subset)
    normaliser = float(np.linalg.norm(truth68[36] - truth68[45]))
    if normaliser <= 0:
        raise ValueError("the human outer eye corners coincide; the face cannot be scored")
    return float(np.linalg.norm(p - t, axis=1).mean() / normaliser)


def summarise(nmes: list[float | None], threshold: float = 0.10) -> dict:
    """NME over the faces found; failure rate and AUC at `threshold` with faces not found as failures."""
    found = np.array([v for v in nmes if v is not None], np.float64)
    with_missed = np.array([np.inf if v is None else v for v in nmes], np.float64)
    return {"faces": len(nmes), "not_found": len(nmes) - len(found),
            "nme": float(found.mean()) if len(found) else float("nan"),
            f"failure_rate@{threshold:g}": failure_rate(with_missed, threshold) if len(nmes) else float("nan"),
            f"auc@{threshold:g}": auc(with_missed, threshold) if len(nmes) else float("nan")}
