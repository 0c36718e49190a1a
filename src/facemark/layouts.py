"""Landmark layouts ("schemes"): the only place where point indices are written down.

A scheme names the regions of a layout, says which point a horizontal flip sends each point to, and which
two points normalise errors (the outer eye corners). Everything else in facemark takes a scheme and asks it,
so a model for another layout only needs another `Scheme`. Layouts are written as small JSON files
(facemark.layout_files, docs/layouts.md); the built-in ones, face88 and ibug68, are such files in layouts_data/.

Coordinates everywhere in facemark: pixels, x to the right, y down, origin at the centre of the top-left
pixel ("pixel-centre convention"). "left"/"right" always mean as seen in the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facemark.layout_files import BUILTIN_LAYOUT_DIR, LayoutError, parse_layout, read_layout_json


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
    # how each point is obtained from another layout's labels: ((source, per point: source indices whose mean
    # it is, or None where that source does not give it), ...); sources: "ibug68", "mediapipe" (layout_files)
    sources: tuple[tuple[str, tuple[tuple[int, ...] | None, ...]], ...] = field(default=(), compare=False)
    # the crop's framing for this layout: crop side = margin × side of the points' box (None: the default)
    margin: float | None = field(default=None, compare=False)

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

    def source(self, name: str) -> tuple[tuple[int, ...] | None, ...] | None:
        """Per point, the indices of layout `name` ("ibug68", "mediapipe") whose mean it is; None when the
        layout does not say how its points follow from that source."""
        return dict(self.sources).get(name)

    def from_source(self, name: str, points: np.ndarray) -> np.ndarray:
        """This layout's (…, P, 2) points from a (…, N, 2) shape of source `name`: each the mean of its source
        points, NaN where the source does not give it. Raises ValueError when the layout has no such source."""
        table = self.source(name)
        if table is None:
            raise ValueError(f"layout {self.name} does not say how its points follow from {name} "
                             f"(add \"from_{name}\" to its layout file)")
        points = np.asarray(points, dtype=np.float64)
        out = np.full(points.shape[:-2] + (self.num_points, 2), np.nan)
        for i, idx in enumerate(table):
            if idx is not None:
                out[..., i, :] = points[..., list(idx), :].mean(axis=-2)
        return out

    def to_dict(self) -> dict:
        d = {"name": self.name, "regions": [list(r) for r in self.regions], "flip": list(self.flip),
             "normaliser": list(self.normaliser),
             "contours": [[list(idx), closed] for idx, closed in self.contours]}
        # the layout travels whole with a cache, a weights file and an ONNX file; the built-in models' files,
        # written before layouts had sources, keep the keys above only
        if self.sources:
            d["sources"] = {name: [None if idx is None else list(idx) for idx in table]
                            for name, table in self.sources}
        if self.margin is not None:
            d["margin"] = self.margin
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Scheme":
        return cls(name=d["name"], regions=tuple((str(n), int(c)) for n, c in d["regions"]),
                   flip=tuple(int(i) for i in d["flip"]), normaliser=tuple(d["normaliser"]),
                   contours=tuple((tuple(idx), bool(closed)) for idx, closed in d.get("contours", [])),
                   sources=tuple((str(name), tuple(None if idx is None else tuple(int(i) for i in idx)
                                                   for idx in table))
                                 for name, table in d.get("sources", {}).items()),
                   margin=None if d.get("margin") is None else float(d["margin"]))


def scheme_from_file_object(data: dict, where: str) -> Scheme:
    """The Scheme a layout file's JSON object describes (facemark.layout_files checks it); LayoutError names
    `where` and the field."""
    fields = parse_layout(data, where)
    try:
        return Scheme(**fields)
    except ValueError as e:  # Scheme's own checks; parse_layout's should have caught everything
        raise LayoutError(f"{where}: {e}") from None


def _builtin(name: str) -> Scheme:
    """A built-in layout from its file in layouts_data/."""
    path = BUILTIN_LAYOUT_DIR / f"{name}.json"
    return scheme_from_file_object(read_layout_json(path), str(path))


# face88: ../shared/docs/face88.md; iBUG / 300-W 68-point layout (0-based), region names as seen in the image
FACE88 = _builtin("face88")
IBUG68 = _builtin("ibug68")

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
        raise ValueError(f"unknown scheme {name_or_scheme!r}; known: {', '.join(SCHEMES)} (a layout of your own: "
                         f"give its file with --layout, or load it with facemark.layouts.load_layout)") from None


# ------------------------------------------------------------------------------------------ layout files

def builtin_layout_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_LAYOUT_DIR.glob("*.json"))


def load_layout(path_or_name: str | Path | Scheme) -> Scheme:
    """The Scheme of a layout file, or of a built-in layout by name; registered (facemark.layouts.get_scheme
    finds it by its name afterwards, as label files and caches name it)."""
    if isinstance(path_or_name, Scheme):
        return path_or_name
    text = str(path_or_name)
    if text in SCHEMES or "+" in text:
        return get_scheme(text)
    path = Path(text)
    if not path.is_file():
        if path.suffix.lower() != ".json" and (BUILTIN_LAYOUT_DIR / f"{text}.json").is_file():
            path = BUILTIN_LAYOUT_DIR / f"{text}.json"
        else:
            known = ", ".join(sorted(SCHEMES))
            raise LayoutError(f"--layout {text}: no such layout file, and not a known layout ({known})")
    scheme = scheme_from_file_object(read_layout_json(path), str(path))
    register_layout(scheme, str(path))
    return scheme


def register_layout(scheme: Scheme, where: str = "layout") -> None:
    """Make `scheme` known by its name (get_scheme). A different layout under a known name is an error."""
    known = SCHEMES.get(scheme.name)
    if known is not None and _geometry(known) != _geometry(scheme):
        raise LayoutError(f"{where}: name: {scheme.name!r} is already a different layout; choose another name")
    if known is None:
        SCHEMES[scheme.name] = scheme


def _geometry(scheme: Scheme) -> tuple:
    return scheme.regions, scheme.flip, scheme.normaliser
