"""Greedy non-maximum suppression for axis-aligned boxes (x0, y0, x1, y1), in numpy."""

from __future__ import annotations

import numpy as np


def box_overlap(box: np.ndarray, others: np.ndarray, mode: str = "union") -> np.ndarray:
    """Overlap of one box with each of `others`: intersection over union, or over the smaller area ("min").

    "min" also catches a small box lying inside a large one, which IoU rates low.
    """
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = iw * ih
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    areas = np.clip(others[:, 2] - others[:, 0], 0, None) * np.clip(others[:, 3] - others[:, 1], 0, None)
    if mode == "union":
        denom = area + areas - inter
    elif mode == "min":
        denom = np.minimum(area, areas)
    else:
        raise ValueError(f"unknown overlap mode {mode!r} (use 'union' or 'min')")
    return np.divide(inter, denom, out=np.zeros_like(inter, dtype=np.float64), where=denom > 0)


PAIRWISE_LIMIT = 3000  # up to this many boxes, all overlaps are computed at once (n² floats: 72 MB at most)


def pairwise_overlap(boxes: np.ndarray, mode: str = "union") -> np.ndarray:
    """(n, n) overlaps of every pair of boxes, as `box_overlap` computes them row by row."""
    x0, y0, x1, y1 = (boxes[:, k] for k in range(4))
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    inter = iw * ih
    areas = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    if mode == "union":
        denom = areas[:, None] + areas[None] - inter
    elif mode == "min":
        denom = np.minimum(areas[:, None], areas[None])
    else:
        raise ValueError(f"unknown overlap mode {mode!r} (use 'union' or 'min')")
    return np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices of the boxes kept, best score first: each kept box removes every lower-scored box that
    overlaps it by more than `threshold` (see `box_overlap` for `mode`)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")  # ties keep their input order
    if len(order) > PAIRWISE_LIMIT:
        keep = []
        while len(order):
            best, rest = order[0], order[1:]
            keep.append(best)
            order = rest[box_overlap(boxes[best], boxes[rest], mode) <= threshold]
        return np.asarray(keep, dtype=np.int64)
    # the same greedy pass over a precomputed overlap matrix: one numpy call instead of one per kept box
    suppresses = pairwise_overlap(boxes[order], mode) > threshold
    removed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not removed[i]:
            keep.append(i)
            removed |= suppresses[i]
    return order[np.asarray(keep, dtype=np.int64)]


def nms_groups(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> list[np.ndarray]:
    """Greedy NMS that also says what each kept box removed: one index array per kept box, best score first,
    holding the kept box first and then every box it removed (the same kept boxes as `nms`).

    For detectors that merge a cluster instead of keeping its best box alone (MediaPipe's weighted NMS)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    groups = []
    if len(order) > PAIRWISE_LIMIT:
        while len(order):
            best, rest = order[0], order[1:]
            near = box_overlap(boxes[best], boxes[rest], mode) > threshold
            groups.append(np.concatenate([[best], rest[near]]).astype(np.int64))
            order = rest[~near]
        return groups
    suppresses = pairwise_overlap(boxes[order], mode) > threshold
    removed = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        if not removed[i]:
            members = np.nonzero(suppresses[i] & ~removed)[0]
            members = np.concatenate([[i], members[members != i]])
            groups.append(order[members])
            removed[members] = True
    return groups
