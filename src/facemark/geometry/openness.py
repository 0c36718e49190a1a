"""Eye and mouth openness from landmarks, and blinks in a series of them. Geometry only, no network.

- Eye openness: the eye aspect ratio (EAR) of Soukupová & Čech, "Real-Time Eye Blink Detection using Facial
  Landmarks" (CVWW 2016): the mean distance between facing upper- and lower-lid points over the distance
  between the eye's corners. Unitless, independent of the face's size and in-plane rotation; about 0.25-0.35
  for an open eye, near 0.05 for a closed one (it also drops as a head turns away or bows).
- Mouth openness: the same ratio for the inner lips: the mean gap between facing inner upper- and lower-lip
  points over the distance between the mouth's outer corners. 0 for closed lips, about 0.3-0.6 wide open.

Facing points, by offset inside each region (the layouts' point order: ../shared/docs/face88.md for face88;
the usual iBUG-68 order for ibug68):
- face88 eye (8): corners 0 and 4, upper lid 1-3 left to right, lower lid 5-7 right to left: 1-7, 2-6, 3-5.
- face88 mouth (22): outer corners 0 and 6; inner upper 12-16 left to right, inner lower 17-21 right to left:
  13-20, 14-19, 15-18.
- ibug68 eye (6): corners 0 and 3; 1-5, 2-4.  ibug68 mouth (20): outer corners 0 and 6; inner 13-19, 14-18, 15-17.

"left_eye" is the eye on the image's left (the subject's right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facemark.layouts import Scheme, get_scheme

# A blink: the mean openness of both eyes under this share of the series' median (a person's open-eye ratio
# varies, 0.2-0.4 on the shared clips, so an absolute threshold cannot serve all). With lids that follow the
# eye (MediaPipe's), 0.6-0.7 finds all 7 visible blinks of the shared clips and nothing else, where the best
# absolute threshold finds 6 or adds false ones: benchmarks/results/blinks.md.
BLINK_SHARE_OF_MEDIAN = 0.65


@dataclass(frozen=True)
class _Layout:
    eye_corners: tuple[int, int]
    eye_pairs: tuple[tuple[int, int], ...]
    mouth_corners: tuple[int, int]
    mouth_pairs: tuple[tuple[int, int], ...]


_LAYOUTS = {
    "face88": _Layout((0, 4), ((1, 7), (2, 6), (3, 5)), (0, 6), ((13, 20), (14, 19), (15, 18))),
    "ibug68": _Layout((0, 3), ((1, 5), (2, 4)), (0, 6), ((13, 19), (14, 18), (15, 17))),
}


def _layout_and_points(points: np.ndarray, scheme: Scheme | str) -> tuple[Scheme, _Layout, np.ndarray]:
    scheme = get_scheme(scheme)
    if scheme.name not in _LAYOUTS:
        raise ValueError(f"eye and mouth measures need face88 or ibug68 points, not {scheme.name}")
    p = np.asarray(points, np.float64)
    if p.shape[-2:] != (scheme.num_points, 2):
        raise ValueError(f"expected (..., {scheme.num_points}, 2) {scheme.name} points, got {p.shape}")
    return scheme, _LAYOUTS[scheme.name], p


def _ratio(region: np.ndarray, corners: tuple[int, int], pairs) -> np.ndarray:
    gaps = np.mean([np.linalg.norm(region[..., a, :] - region[..., b, :], axis=-1) for a, b in pairs], axis=0)
    width = np.linalg.norm(region[..., corners[0], :] - region[..., corners[1], :], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(width > 0, gaps / width, np.nan)


def eye_openness(points: np.ndarray, scheme: Scheme | str = "face88") -> np.ndarray:
    """Eye aspect ratio of (image-left eye, image-right eye): shape (..., 2) for points (..., P, 2) in pixels.
    NaN where an eye's corners coincide. Raises ValueError for another layout or a wrong shape."""
    scheme, layout, p = _layout_and_points(points, scheme)
    return np.stack([_ratio(p[..., scheme.region_slice(eye), :], layout.eye_corners, layout.eye_pairs)
                     for eye in ("left_eye", "right_eye")], axis=-1)


def eye_aspect_ratio(eye: np.ndarray) -> np.ndarray:
    """The eye aspect ratio of face88 eyes given on their own: (..., 8, 2) points in face88's eye order (either
    eye, or an eye patch's points) -> (...). NaN where the corners coincide."""
    layout = _LAYOUTS["face88"]
    return _ratio(np.asarray(eye, np.float64), layout.eye_corners, layout.eye_pairs)


def mouth_openness(points: np.ndarray, scheme: Scheme | str = "face88") -> np.ndarray:
    """Inner-lip gap over mouth width: shape (...) for points (..., P, 2) in pixels."""
    scheme, layout, p = _layout_and_points(points, scheme)
    return _ratio(p[..., scheme.region_slice("mouth"), :], layout.mouth_corners, layout.mouth_pairs)


def blink_threshold(openness: np.ndarray, share: float = BLINK_SHARE_OF_MEDIAN) -> float:
    """`share` × the median of a series of eye openness (NaN left out); NaN for a series without a value."""
    x = np.asarray(openness, np.float64)
    return float(share * np.nanmedian(x)) if np.isfinite(x).any() else float("nan")


def find_blinks(openness: np.ndarray, threshold: float | None = None) -> list[tuple[int, int]]:
    """Runs of frames whose eye openness is below `threshold`, as (first, last) frame indices, inclusive.

    openness: (N,) one value per frame (e.g. the mean of both eyes), or (N, 2) both eyes (averaged here);
    NaN (no face) ends a run and never starts one. threshold: by default `blink_threshold(openness)`, relative
    to the series' own median (BLINK_SHARE_OF_MEDIAN)."""
    x = np.asarray(openness, np.float64)
    if x.ndim == 2:  # a frame with one eye NaN keeps the other; both NaN stays NaN
        count = np.isfinite(x).sum(axis=1)
        x = np.where(count > 0, np.nansum(x, axis=1) / np.maximum(count, 1), np.nan)
    if x.ndim != 1:
        raise ValueError(f"expected one openness per frame, (N,) or (N, 2), got {x.shape}")
    if threshold is None:
        threshold = blink_threshold(x)
    closed = np.nan_to_num(x, nan=np.inf) < threshold
    blinks, start = [], None
    for i, c in enumerate(closed):
        if c and start is None:
            start = i
        elif not c and start is not None:
            blinks.append((start, i - 1))
            start = None
    if start is not None:
        blinks.append((start, len(closed) - 1))
    return blinks


class BlinkDetector:
    """Blinks of one face as its frames arrive: a run of frames whose openness (mean of both eyes) is under
    `share` × the median of the face's last `window` values. `update` returns the blink (first, last frame,
    inclusive) on the first frame whose eyes are open again, else None; frames without a value (NaN) end a run
    without reporting it, as `find_blinks` does not count them either. On a whole clip it finds what
    `find_blinks` finds once its median has settled (from a few frames on)."""

    def __init__(self, share: float = BLINK_SHARE_OF_MEDIAN, window: int = 300):
        self.share, self.window = float(share), int(window)
        self._values: list[float] = []
        self._start: int | None = None
        self._last: int | None = None

    def update(self, frame: int, openness: float) -> tuple[int, int] | None:
        v = float(openness)
        if not np.isfinite(v):
            self._start = self._last = None
            return None
        self._values = (self._values + [v])[-self.window:]
        closed = v < self.share * float(np.median(self._values))
        if closed:
            if self._start is None:
                self._start = frame
            self._last = frame
            return None
        blink = None if self._start is None else (self._start, self._last)
        self._start = self._last = None
        return blink
