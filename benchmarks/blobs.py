"""Images of bright blobs at known sub-pixel places, and finding them again: a check of a warp's pixel convention
that needs no face. Used by benchmarks/chips.py and tests/unit/geometry/test_chips.py."""

from __future__ import annotations

import numpy as np

from facemark.layouts import FACE88


def blob_image(centres: np.ndarray, size=(400, 300), sigma=2.0) -> np.ndarray:
    """A black RGB image with a bright Gaussian blob at each (sub-pixel) centre, pixel-centre convention."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.float64)
    for cx, cy in centres:
        img += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
    return np.repeat((np.clip(img, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def blob_centre(image: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    """The intensity-weighted centre of the blob within `radius` pixels of `near`."""
    g = image[..., 0].astype(np.float64)
    x0, y0 = np.round(near).astype(int) - radius
    patch = g[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
    ys, xs = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
    return np.array([(xs * patch).sum(), (ys * patch).sum()]) / patch.sum() + [x0, y0]


def face88_with_five(five: np.ndarray) -> np.ndarray:
    """face88 points whose five standard points are `five` (eye contours centred on the eye centres)."""
    p = np.zeros((88, 2))
    s = FACE88.region_slice
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                     0.4 * np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False))], axis=1) * 10
    p[s("left_eye")] = five[0] + ring
    p[s("right_eye")] = five[1] + ring
    p[s("nose").start + 3] = five[2]
    p[s("mouth").start], p[s("mouth").start + 6] = five[3], five[4]
    return p
