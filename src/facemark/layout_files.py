"""Layout files: a point layout written as a small JSON file, checked and read into the fields of a
`facemark.layouts.Scheme` (this module imports nothing of facemark's; facemark.layouts builds and registers the
Scheme):

    scheme = facemark.layouts.load_layout("examples/layouts/five_points.json")   # or a built-in name ("face88")

The format (docs/layouts.md has it in full, with every error):

    {"name": "five_points", "points": 5,
     "regions": {"left_eye": [0], "right_eye": [1], "nose": [2], "mouth": "3-4"},
     "mirror": [[0, 1], [3, 4]],                 # left/right pairs; a point in no pair is its own mirror
     "normaliser": [0, 1],                       # the two points whose distance normalises errors (NME)
     "contours": [{"points": [3, 4], "closed": false}],      # optional: polylines for drawing
     "margin": 2.2,                              # optional: crop side / side of the points' box (default 1.25)
     "from_ibug68": [[36, 37, 38, 39, 40, 41], ...],         # optional: each point as the mean of iBUG-68 points
     "from_mediapipe": [[468], [473], [4], [61], [291]]}     # optional: the same with Face Mesh vertices

Regions are index lists or inclusive "a-b" ranges; each is a contiguous run, and together they cover every
point once. A point's entry in a `from_*` list may be null: that source does not give it (the point is
unknown, NaN, in labels converted from it). Every mistake is a LayoutError (a ValueError) of one line that
names the file and the field.

Built-in layouts ship as such files in facemark/layouts_data/ (face88.json, ibug68.json).
"""

from __future__ import annotations

import json
import math
from pathlib import Path


BUILTIN_LAYOUT_DIR = Path(__file__).parent / "layouts_data"
# the sources a point can be obtained from, and how many points each has
SOURCES = {"ibug68": 68, "mediapipe": 478}
FIELDS = {"name", "description", "points", "regions", "mirror", "normaliser", "contours", "margin",
          "point_names"} | {f"from_{s}" for s in SOURCES}


class LayoutError(ValueError):
    """A layout file that cannot be used; the message names the file and the field."""


def read_layout_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise LayoutError(f"cannot read layout file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise LayoutError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise LayoutError(f"{path}: invalid JSON at line {e.lineno} ({e.msg})") from None
    if not isinstance(data, dict):
        raise LayoutError(f"{path}: a layout file holds one JSON object")
    return data


def _int(value, where: str, n: int | None = None) -> int:
    if type(value) is not int:
        raise LayoutError(f"{where}: expected a point index (an integer), got {value!r}")
    if n is not None and not 0 <= value < n:
        raise LayoutError(f"{where}: index {value} out of range 0..{n - 1}")
    return value


def _indices(value, where: str, n: int) -> list[int]:
    """A list of indices, or an inclusive range "a-b"."""
    if isinstance(value, str):
        try:
            a, b = (int(v) for v in value.split("-"))
        except ValueError:
            raise LayoutError(f"{where}: expected a list of indices or a range 'a-b', got {value!r}") from None
        if b < a:
            raise LayoutError(f"{where}: range {value!r} runs backwards")
        value = list(range(a, b + 1))
    if not isinstance(value, list) or not value:
        raise LayoutError(f"{where}: expected a non-empty list of indices or a range 'a-b', got {value!r}")
    out = [_int(v, f"{where}[{k}]", n) for k, v in enumerate(value)]
    if len(set(out)) != len(out):
        raise LayoutError(f"{where}: an index appears twice")
    return out


def parse_layout(data: dict, where: str = "layout") -> dict:
    """The keyword fields of a facemark.layouts.Scheme from a layout file's object; LayoutError (one line, naming
    `where` and the field) if it is bad."""
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise LayoutError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
    for key in ("name", "points", "regions", "normaliser"):
        if key not in data:
            raise LayoutError(f"{where}: missing field {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
        raise LayoutError(f"{where}: name: expected a word of letters, digits, '_', '-' or '.', got {name!r}")
    n = data["points"]
    if type(n) is not int or n < 2:
        raise LayoutError(f"{where}: points: expected the number of points (2 or more), got {n!r}")

    # regions: contiguous runs in index order that cover every point once (the Scheme's tiling)
    regions_in = data["regions"]
    if not isinstance(regions_in, dict) or not regions_in:
        raise LayoutError(f"{where}: regions: expected an object {{region name: indices}}")
    owner: dict[int, str] = {}
    runs = []
    for region, value in regions_in.items():
        idx = _indices(value, f"{where}: regions.{region}", n)
        for i in idx:
            if i in owner:
                raise LayoutError(f"{where}: regions: point {i} is in both {owner[i]!r} and {region!r}")
            owner[i] = region
        if sorted(idx) != list(range(min(idx), max(idx) + 1)):
            raise LayoutError(f"{where}: regions.{region}: its points must be one run of consecutive indices "
                              f"(number the points region by region)")
        runs.append((min(idx), region, len(idx)))
    missing = [i for i in range(n) if i not in owner]
    if missing:
        raise LayoutError(f"{where}: regions: point {missing[0]} is in no region (every point needs one)")
    regions = tuple((region, count) for _, region, count in sorted(runs))
    if [r for _, r, _ in runs] != [r for r, _ in regions]:
        raise LayoutError(f"{where}: regions: list the regions in index order "
                          f"({', '.join(r for r, _ in regions)})")

    # mirror pairs -> the flip permutation
    flip = list(range(n))
    pairs = data.get("mirror", [])
    if not isinstance(pairs, list):
        raise LayoutError(f"{where}: mirror: expected a list of [a, b] pairs")
    paired: dict[int, int] = {}
    for k, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            raise LayoutError(f"{where}: mirror[{k}]: expected a pair [a, b], got {pair!r}")
        a, b = (_int(v, f"{where}: mirror[{k}]", n) for v in pair)
        for i, j in ((a, b), (b, a)):
            if i in paired and paired[i] != j:
                raise LayoutError(f"{where}: mirror: point {i} is paired with both {paired[i]} and {j} "
                                  f"(not an involution: a flip must send each point to one, and back)")
            paired[i] = j
        flip[a], flip[b] = b, a

    normaliser = data["normaliser"]
    if not isinstance(normaliser, list) or len(normaliser) != 2:
        raise LayoutError(f"{where}: normaliser: expected the two points [a, b] whose distance normalises errors")
    normaliser = tuple(_int(v, f"{where}: normaliser", n) for v in normaliser)
    if normaliser[0] == normaliser[1]:
        raise LayoutError(f"{where}: normaliser: needs two different points")

    contours = []
    for k, c in enumerate(data.get("contours", [])):
        if isinstance(c, dict):
            extra = set(c) - {"points", "closed"}
            if extra or "points" not in c:
                raise LayoutError(f"{where}: contours[{k}]: expected {{\"points\": indices, \"closed\": bool}}")
            idx, closed = _indices(c["points"], f"{where}: contours[{k}].points", n), c.get("closed", False)
        else:
            idx, closed = _indices(c, f"{where}: contours[{k}]", n), False
        if not isinstance(closed, bool):
            raise LayoutError(f"{where}: contours[{k}].closed: expected true or false")
        contours.append((tuple(idx), closed))

    margin = data.get("margin")
    if margin is not None and (type(margin) not in (int, float) or not math.isfinite(margin) or margin <= 1):
        raise LayoutError(f"{where}: margin: expected a number above 1 (crop side / points' box side), "
                          f"got {margin!r}")

    sources = []
    for source, size in SOURCES.items():
        key = f"from_{source}"
        if key not in data:
            continue
        lists = data[key]
        if not isinstance(lists, list) or len(lists) != n:
            raise LayoutError(f"{where}: {key}: expected {n} entries (one index list or null per point), "
                              f"got {len(lists) if isinstance(lists, list) else repr(lists)}")
        sources.append((source, tuple(None if v is None else tuple(_indices(v, f"{where}: {key}[{p}]", size))
                                      for p, v in enumerate(lists))))

    names = data.get("point_names")
    if names is not None and (not isinstance(names, list) or len(names) != n
                              or not all(isinstance(s, str) for s in names)):
        raise LayoutError(f"{where}: point_names: expected {n} strings")
    if "description" in data and not isinstance(data["description"], str):
        raise LayoutError(f"{where}: description: expected a string")

    return {"name": name, "regions": regions, "flip": tuple(flip), "normaliser": normaliser,
            "contours": tuple(contours), "sources": tuple(sources),
            "margin": None if margin is None else float(margin)}
