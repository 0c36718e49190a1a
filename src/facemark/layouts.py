"""Landmark layouts ("schemes"): the only place where point indices are written down.

A scheme names the regions of a layout, says which point a horizontal flip sends each point to, and which
two points normalise errors (the outer eye corners). Everything else in facemark takes a scheme and asks it,
so a model for another layout only needs another `Scheme`.

Coordinates everywhere in facemark: pixels, x to the right, y down, origin at the centre of the top-left
pixel ("pixel-centre convention"). "left"/"right" always mean as seen in the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Scheme:
    name: str
    # (region name, number of points) in index order; the regions tile 0..num_points-1.
    regions: tuple[tuple[str, int], ...]
    # flip[i] = index that point i becomes after a horizontal image flip (an involution).
    flip: tuple[int, ...]
    # the two points whose distance normalises errors (outer eye corners: image-left eye, image-right eye)
    normaliser: tuple[int, int]
    # polylines for drawing and geometry checks: (indices, closed)
    contours: tuple[tuple[tuple[int, ...], bool], ...] = field(default=())

    def __post_init__(self):
        n = self.num_points
        if sorted(self.flip) != list(range(n)):
            raise ValueError(f"scheme {self.name}: flip is not a permutation of {n} points")
        if any(self.flip[self.flip[i]] != i for i in range(n)):
            raise ValueError(f"scheme {self.name}: flip is not an involution")

    @property
    def num_points(self) -> int:
        return sum(count for _, count in self.regions)

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.regions)

    def region_slice(self, region: str) -> slice:
        start = 0
        for name, count in self.regions:
            if name == region:
                return slice(start, start + count)
            start += count
        raise KeyError(f"scheme {self.name} has no region {region!r}; regions: {', '.join(self.region_names)}")

    def region_indices(self, region: str) -> np.ndarray:
        s = self.region_slice(region)
        return np.arange(s.start, s.stop)

    def region_of_point(self) -> np.ndarray:
        """Region index (into `regions`) of every point."""
        return np.repeat(np.arange(len(self.regions)), [count for _, count in self.regions])

    def flip_points(self, points: np.ndarray, width: float) -> np.ndarray:
        """Points of the horizontally flipped image of width `width` (pixel-centre convention)."""
        flipped = np.asarray(points, dtype=np.float64)[..., list(self.flip), :].copy()
        flipped[..., 0] = (width - 1) - flipped[..., 0]
        return flipped

    def inter_ocular_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance between the normalising points, for one shape (P, 2) or a batch (..., P, 2)."""
        a, b = self.normaliser
        p = np.asarray(points, dtype=np.float64)
        return np.linalg.norm(p[..., a, :] - p[..., b, :], axis=-1)

    def to_dict(self) -> dict:
        return {"name": self.name, "regions": [list(r) for r in self.regions], "flip": list(self.flip),
                "normaliser": list(self.normaliser),
                "contours": [[list(idx), closed] for idx, closed in self.contours]}

    @classmethod
    def from_dict(cls, d: dict) -> "Scheme":
        return cls(name=d["name"], regions=tuple((str(n), int(c)) for n, c in d["regions"]),
                   flip=tuple(int(i) for i in d["flip"]), normaliser=tuple(d["normaliser"]),
                   contours=tuple((tuple(idx), bool(closed)) for idx, closed in d.get("contours", [])))


def _flip_from_pairs(n: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    flip = list(range(n))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return tuple(flip)


def _rng(a: int, b: int) -> tuple[int, ...]:
    """Inclusive index range."""
    return tuple(range(a, b + 1))


# --- face88: ../shared/docs/face88.md -------------------------------------------------------------------
_FACE88_PAIRS = (
    [(i, 20 - i) for i in range(10)]
    + [(21, 33), (22, 32), (23, 31), (24, 30), (25, 29), (26, 36), (27, 35), (28, 34)]
    + [(37, 49), (38, 48), (39, 47), (40, 46), (41, 45), (42, 52), (43, 51), (44, 50)]
    + [(53, 59), (54, 58), (55, 57), (60, 64), (61, 63), (65, 69), (66, 68), (70, 74), (71, 73)]
    + [(79, 87), (80, 86), (81, 85), (82, 84)]
)

FACE88 = Scheme(
    name="face88",
    regions=(("face_profile", 21), ("left_eye", 8), ("right_eye", 8), ("left_eyebrow", 8),
             ("right_eyebrow", 8), ("mouth", 22), ("nose", 13)),
    flip=_flip_from_pairs(88, _FACE88_PAIRS),
    normaliser=(21, 33),
    contours=((_rng(0, 20), False), (_rng(21, 28), True), (_rng(29, 36), True), (_rng(37, 44), True),
              (_rng(45, 52), True), (_rng(53, 64), True), (_rng(65, 74), True), (_rng(75, 78), False),
              (_rng(79, 87), False)),
)

# --- iBUG / 300-W 68-point layout (0-based), region names as seen in the image ---------------------------
_IBUG68_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
)

IBUG68 = Scheme(
    name="ibug68",
    regions=(("face_profile", 17), ("left_eyebrow", 5), ("right_eyebrow", 5), ("nose", 9),
             ("left_eye", 6), ("right_eye", 6), ("mouth", 20)),
    flip=_flip_from_pairs(68, _IBUG68_PAIRS),
    normaliser=(36, 45),
    contours=((_rng(0, 16), False), (_rng(17, 21), False), (_rng(22, 26), False), (_rng(27, 30), False),
              (_rng(31, 35), False), (_rng(36, 41), True), (_rng(42, 47), True), (_rng(48, 59), True),
              (_rng(60, 67), True)),
)

# 0-based iBUG index -> face88 index, the 34 points the two layouts share (face88.md).
IBUG68_TO_FACE88: dict[int, int] = {
    8: 10, 17: 37, 21: 41, 22: 45, 26: 49, 27: 75, 30: 78, 31: 81, 32: 82, 33: 83, 34: 84, 35: 85,
    36: 21, 39: 25, 42: 29, 45: 33, 48: 53, 49: 54, 50: 55, 51: 56, 52: 57, 53: 58, 54: 59,
    55: 60, 56: 61, 57: 62, 58: 63, 59: 64, 61: 66, 62: 67, 63: 68, 65: 71, 66: 72, 67: 73,
}

IBUG68_ANCHORS = np.array(sorted(IBUG68_TO_FACE88), dtype=np.int64)
FACE88_ANCHORS = np.array([IBUG68_TO_FACE88[i] for i in IBUG68_ANCHORS], dtype=np.int64)


def ibug68_as_face88(points68: np.ndarray) -> np.ndarray:
    """A (…, 68, 2) iBUG shape as a partial (…, 88, 2) face88 shape: the 34 shared points, NaN elsewhere."""
    points68 = np.asarray(points68, dtype=np.float64)
    if points68.shape[-2:] != (68, 2):
        raise ValueError(f"expected (..., 68, 2) iBUG points, got {points68.shape}")
    out = np.full(points68.shape[:-2] + (88, 2), np.nan)
    out[..., FACE88_ANCHORS, :] = points68[..., IBUG68_ANCHORS, :]
    return out


SCHEMES: dict[str, Scheme] = {FACE88.name: FACE88, IBUG68.name: IBUG68}
JOINT_SEPARATOR = "+"


def joint_scheme(*parts: Scheme) -> Scheme:
    """Several layouts side by side as one: points of `parts[0]`, then of `parts[1]`, ... (for one network
    with a head per layout, trained on labels that give any of them; `split_joint` takes them apart).

    Named "a+b"; regions are prefixed "a:" / "b:"; the normaliser is the first layout's."""
    if len(parts) < 2:
        raise ValueError("a joint scheme needs at least two layouts")
    regions, flip, contours, offset = [], [], [], 0
    for part in parts:
        regions += [(f"{part.name}:{name}", count) for name, count in part.regions]
        flip += [offset + i for i in part.flip]
        contours += [(tuple(offset + i for i in idx), closed) for idx, closed in part.contours]
        offset += part.num_points
    return Scheme(name=JOINT_SEPARATOR.join(p.name for p in parts), regions=tuple(regions), flip=tuple(flip),
                  normaliser=parts[0].normaliser, contours=tuple(contours))


def split_joint(scheme: Scheme) -> list[tuple[Scheme, slice]]:
    """The layouts of a joint scheme and where each one's points lie in it. Raises ValueError for a plain one."""
    names = scheme.name.split(JOINT_SEPARATOR)
    if len(names) < 2:
        raise ValueError(f"scheme {scheme.name} is not a joint scheme")
    out, start = [], 0
    for name in names:
        part = get_scheme(name)
        out.append((part, slice(start, start + part.num_points)))
        start += part.num_points
    if start != scheme.num_points:
        raise ValueError(f"joint scheme {scheme.name} has {scheme.num_points} points, its parts {start}")
    return out


def get_scheme(name_or_scheme: str | Scheme) -> Scheme:
    """A layout by name: "face88", "ibug68", or a joint one such as "face88+ibug68" (`joint_scheme`)."""
    if isinstance(name_or_scheme, Scheme):
        return name_or_scheme
    if isinstance(name_or_scheme, str) and JOINT_SEPARATOR in name_or_scheme:
        return joint_scheme(*(get_scheme(n) for n in name_or_scheme.split(JOINT_SEPARATOR)))
    try:
        return SCHEMES[name_or_scheme]
    except (KeyError, TypeError):  # TypeError: a list or dict from a malformed file is no name at all
        raise ValueError(f"unknown scheme {name_or_scheme!r}; known: {', '.join(SCHEMES)}") from None
