"""Landmark error metrics, on numpy arrays of shape (N, P, 2).

- MSE / MAE: the original's numbers, over every coordinate (x and y separately, as a 2P-output regressor
  sees them), in pixels of the crop the points are given in.
- NME: per image, the mean point-to-point distance divided by the normalising distance (outer eye corners
  of the *true* shape), then averaged over images.
- Missing true points (NaN, e.g. face88 points a human 68-point label has no partner for) are left out of
  every mean; the normalising points must be present.
- failure rate at t: share of images with NME > t. AUC at t: area under the cumulative error distribution
  (CED) from 0 to t, divided by t (1.0 = every image perfect).
"""

from __future__ import annotations

import numpy as np

from facemark.layouts import Scheme


def per_image_nme(pred: np.ndarray, true: np.ndarray, normaliser: np.ndarray,
                  point_indices: np.ndarray | None = None) -> np.ndarray:
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if point_indices is not None:
        pred, true = pred[:, point_indices], true[:, point_indices]
    dist = np.linalg.norm(pred - true, axis=-1)
    with np.errstate(invalid="ignore"):
        return _nanmean(dist, axis=1) / normaliser


def _nanmean(x: np.ndarray, axis=None):
    """Mean over the finite entries (NaN where there are none), without numpy's empty-slice warning."""
    known = np.isfinite(x)
    count = known.sum(axis=axis)
    total = np.where(known, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / np.where(count > 0, count, np.nan)


def ced(nme: np.ndarray, threshold: float = 0.10, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: (error thresholds, share of images at or below each)."""
    x = np.linspace(0.0, threshold, steps)
    nme = np.sort(np.asarray(nme))
    return x, np.searchsorted(nme, x, side="right") / max(len(nme), 1)


def auc(nme: np.ndarray, threshold: float = 0.10) -> float:
    x, y = ced(nme, threshold)
    return float(np.trapz(y, x) / threshold)


def failure_rate(nme: np.ndarray, threshold: float = 0.10) -> float:
    return float(np.mean(np.asarray(nme) > threshold))


def landmark_metrics(pred: np.ndarray, true: np.ndarray, scheme: Scheme, threshold: float = 0.10) -> dict:
    """Every metric the model card reports; per-region NME under 'region_nme'."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"pred {pred.shape} and true {true.shape} must both be (N, P, 2)")
    diff = pred - true
    iod = scheme.inter_ocular_distance(true)
    nme = per_image_nme(pred, true, iod)
    return {
        "count": int(len(pred)),
        "mse_px": float(_nanmean(diff ** 2)),
        "mae_px": float(_nanmean(np.abs(diff))),
        "nme": float(nme.mean()),
        f"failure_rate@{threshold:g}": failure_rate(nme, threshold),
        f"auc@{threshold:g}": auc(nme, threshold),
        "region_nme": {name: float(_nanmean(per_image_nme(pred, true, iod, scheme.region_indices(name))))
                       for name in scheme.region_names},
        "per_image_nme": nme,
    }
