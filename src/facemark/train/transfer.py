"""Transfer to a new layout: a network for a layout of your own starts from a trained one (face88, ibug68) with
every new point's output made from the trained points around it, not from scratch.

Where a new point lies among the trained ones is measured, not assumed: the trained network predicts its own
points on the training faces of the cache, and each new point is written as the mix of (at most MIX_POINTS of)
its nearest trained points that best reproduces the new point's labels there (least squares, weights >= 0
summing to 1). The head's last layer then starts as that mix of the trained points' outputs:

- heatmap head: a new point's 1×1 convolution is the weighted mean of the trained points' (weights and bias).
  Soft-argmax of a weighted mean of logits is the weighted geometric mean of the heatmaps, whose peak lies at
  the weighted mean of their peaks (exactly so for Gaussian-shaped heatmaps): the new point starts where the
  mix of trained points is.
- regression heads (flatten, gap): the output rows are mixed the same way, which makes the new point's start
  exactly the weighted mean of the trained points' predictions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MIX_POINTS = 4  # trained points a new point may be mixed from: its nearest ones in the mean shape
FIT_FACES = 256  # training faces the mix is measured on


def fit_mix(source_points: np.ndarray, target_points: np.ndarray, k: int = MIX_POINTS) -> np.ndarray:
    """(P_new, P_src) weights, each row >= 0 summing to 1, that write every target point as a mix of its `k`
    nearest source points (in the mean shape), fitted by least squares over the faces.

    source_points (N, P_src, 2), target_points (N, P_new, 2) on the same N faces, in one frame (crop pixels);
    NaN targets (points a label lacks) are left out of the fit."""
    src = np.asarray(source_points, np.float64)
    tgt = np.asarray(target_points, np.float64)
    with np.errstate(invalid="ignore"):
        mean_src, mean_tgt = np.nanmean(src, axis=0), np.nanmean(tgt, axis=0)
    weights = np.zeros((tgt.shape[1], src.shape[1]))
    for i in range(tgt.shape[1]):
        d = np.linalg.norm(mean_src - mean_tgt[i], axis=1)
        near = np.argsort(d)[:k]
        known = np.isfinite(tgt[:, i]).all(axis=1)
        if not known.any():
            weights[i, near[0]] = 1.0
            continue
        # equations: per face and coordinate, sum_j w_j src_j = tgt_i; one heavy row keeps sum_j w_j = 1
        a = src[known][:, near].transpose(0, 2, 1).reshape(-1, len(near))
        b = tgt[known, i].reshape(-1)
        scale = 10.0 * np.sqrt(len(b))
        a = np.vstack([a, np.full((1, len(near)), scale)])
        b = np.append(b, scale)
        w = _nonnegative_least_squares(a, b)
        weights[i, near] = w / w.sum() if w.sum() > 0 else np.eye(len(near))[0]
    return weights


def _nonnegative_least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        from scipy.optimize import nnls
        return nnls(a, b)[0]
    except ImportError:  # scipy is optional: least squares with the negative weights dropped and refitted
        keep = np.ones(a.shape[1], bool)
        while keep.any():
            w = np.zeros(a.shape[1])
            w[keep] = np.linalg.lstsq(a[:, keep], b, rcond=None)[0]
            if (w >= 0).all():
                return w
            keep &= w > 0
        return np.eye(a.shape[1])[0]


def face_framing(face_points: np.ndarray, size: int) -> list[float]:
    """Where a layout's crops lie relative to the box of the face's (face88 or ibug68) points, which is what a
    face detector's calibrated box gives at run time: [side, dx, dy] (ModelConfig.face_framing), the medians over
    the faces. face_points (N, P, 2): the trained network's points in the layout's S×S crops (size S)."""
    pts = np.asarray(face_points, np.float64)
    with np.errstate(invalid="ignore"):
        low, high = np.nanmin(pts, axis=1), np.nanmax(pts, axis=1)
    side = np.max(high - low, axis=1)
    centre = (low + high) / 2
    ok = np.isfinite(side) & (side > 0)
    crop_centre = (size - 1) / 2
    return [float(np.median(size / side[ok])),
            *(float(v) for v in np.median((crop_centre - centre[ok]) / side[ok, None], axis=0))]


def _last_layer(model: nn.Module) -> nn.Module:
    return model.head.heatmaps if model.config.head == "heatmap" else model.head[-1]


@torch.no_grad()
def mix_head(model: nn.Module, source: nn.Module, weights: np.ndarray) -> None:
    """Write `model`'s last head layer as `weights` (P_new, P_src) mixes of `source`'s (same head kind)."""
    if model.config.head != source.config.head:
        raise ValueError(f"the head kinds differ ({model.config.head} and {source.config.head})")
    dst, src = _last_layer(model), _last_layer(source)
    w = torch.as_tensor(weights, dtype=src.weight.dtype)
    if model.config.head == "heatmap":  # (P, C, 1, 1) convolution: one output channel per point
        dst.weight.copy_(torch.einsum("ps,schw->pchw", w, src.weight))
        dst.bias.copy_(w @ src.bias)
    else:  # Linear with 2P outputs, (x, y) per point
        sw = src.weight.reshape(-1, 2, src.weight.shape[1])
        dst.weight.copy_(torch.einsum("ps,sci->pci", w, sw).reshape(dst.weight.shape))
        dst.bias.copy_((w @ src.bias.reshape(-1, 2)).reshape(-1))


def init_new_layout_head(model: nn.Module, source: nn.Module, cache, predict_cache) -> dict:
    """Start the head of `model` (a layout of your own) from `source` (a trained network of another layout),
    placing each new point by `fit_mix` on up to FIT_FACES training faces of `cache` (a FaceCache of the new
    layout). `predict_cache(network, cache, indices) -> (predictions, labels)` in crop pixels (the trainer's,
    facemark.train.training.predict_cache). Returns {"faces": N, "start_error_px": mean distance of the mixed
    source predictions to the labels, in crop pixels}."""
    idx = cache.indices("train")[:FIT_FACES]
    if len(idx) == 0:
        idx = cache.indices("all")[:FIT_FACES]
    source_pred, target = predict_cache(source, cache, idx)
    weights = fit_mix(source_pred, target)
    mix_head(model, source, weights)
    if source.config.face_framing is None:  # the source is framed on its own points, as detectors' boxes are
        model.config.face_framing = face_framing(source_pred, cache.size)
    start = np.einsum("ps,nsc->npc", weights, source_pred)
    with np.errstate(invalid="ignore"):
        error = float(np.nanmean(np.linalg.norm(start - target, axis=-1)))
    return {"faces": int(len(idx)), "start_error_px": error, "weights": weights}
