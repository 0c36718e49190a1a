"""Annotation files: 300-W `.pts` and facemark's own JSON Lines label files (and, read through the same
`read_labels`, CVAT for images 1.1 XML: facemark.labels.cvat).

Label file: one JSON object per line, one line per image:

    {"image": "relative/path.jpg", "scheme": "face88", "points": [[x, y], ...] | null,
     "box": [x0, y0, x1, y1] | null, "source": "mediapipe-0.10.21", "error": null | "why",
     "width": w | null, "height": h | null}

`width`/`height` (the image size in displayed orientation) are optional; `clean` uses them to find points far
outside the image without opening it.

`image` is relative to the images folder given alongside the file. All coordinates are 0-based pixels in the
pixel-centre convention (the centre of the top-left pixel is (0, 0)); `.pts` files are 1-based and are
shifted by one on reading and writing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from facemark.labels.records import AnnotationError, LabelRecord  # noqa: F401  (re-exported)
from facemark.layouts import get_scheme


# ---------------------------------------------------------------------------------------------------------
# .pts (300-W): optional header "version: 1 / n_points: N / {", N lines "x y", "}"; 1-based coordinates.

def read_pts(path: str | Path) -> np.ndarray:
    """Points of a `.pts` file as an (N, 2) float64 array in 0-based pixel-centre coordinates."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise AnnotationError(f"cannot read {path}: {e}") from None
    declared = None
    points = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line in "{}" or line.startswith("version"):
            continue
        if line.startswith("n_points"):
            try:
                declared = int(line.split(":", 1)[1])
            except (IndexError, ValueError):
                raise AnnotationError(f"{path}:{lineno}: bad n_points line {raw!r}") from None
            continue
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError
            points.append((float(fields[0]) - 1.0, float(fields[1]) - 1.0))
        except ValueError:
            raise AnnotationError(f"{path}:{lineno}: expected 'x y', got {raw!r}") from None
    if not points:
        raise AnnotationError(f"{path}: no points")
    if declared is not None and declared != len(points):
        raise AnnotationError(f"{path}: header says {declared} points, file has {len(points)}")
    return np.asarray(points, dtype=np.float64)


def read_pts_folder(folder: str | Path, layout=None) -> Iterator[LabelRecord]:
    """A folder of images with `.pts` files beside them (300-W style) as label records, sorted by name.

    The scheme follows from the point count: `layout`'s (a Scheme, e.g. from facemark.layout_files) when it
    has that many points, else 68: ibug68, 88: face88; image names are relative to `folder`.
    A `.pts` without an image beside it, or with an unknown point count, raises AnnotationError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotationError(f"{folder} is not a folder")
    schemes = {get_scheme(name).num_points: name for name in ("ibug68", "face88")}
    if layout is not None:
        schemes[layout.num_points] = layout.name
    found = False
    for pts_path in sorted(folder.rglob("*.pts")):
        found = True
        image = next((p for p in sorted(pts_path.parent.glob(pts_path.stem + ".*"))
                      if p.suffix.lower() != ".pts"), None)
        if image is None:
            raise AnnotationError(f"{pts_path}: no image beside it")
        points = read_pts(pts_path)
        if len(points) not in schemes:
            known = " or ".join(str(k) for k in sorted(schemes))
            raise AnnotationError(f"{pts_path}: {len(points)} points fit no known layout ({known}); give the "
                                  f"layout file of {len(points)}-point labels with --layout")
        yield LabelRecord(image=image.relative_to(folder).as_posix(), scheme=schemes[len(points)],
                          points=points, source="pts")
    if not found:
        raise AnnotationError(f"{folder}: no .pts files")


def as_layout(record: LabelRecord, layout) -> LabelRecord:
    """`record` in `layout` (a Scheme): as it is when it already is, else converted through the layout's
    `from_<scheme>` table (each point the mean of its source points, NaN where the source lacks it; the box
    becomes the source points' box, the framing of a partial shape). Raises AnnotationError when the layout
    does not say how its points follow from the record's scheme."""
    if record.scheme == layout.name or record.points is None:
        return record if record.points is not None else LabelRecord(**{**vars(record), "scheme": layout.name})
    if layout.source(record.scheme) is None:
        raise AnnotationError(f"{record.image}: a {record.scheme} label, and layout {layout.name} does not say "
                              f"how its points follow from {record.scheme} (add \"from_{record.scheme}\" to "
                              f"the layout file)")
    points = layout.from_source(record.scheme, record.points)
    box = record.box
    if not np.isfinite(points).all():
        finite = record.points[np.isfinite(record.points).all(axis=1)]
        box = tuple(float(v) for v in (*finite.min(axis=0), *finite.max(axis=0))) if len(finite) else None
    return LabelRecord(image=record.image, scheme=layout.name, points=points, box=box,
                       source=f"{record.source or record.scheme} as {layout.name}", error=record.error,
                       width=record.width, height=record.height)


def write_pts(path: str | Path, points: np.ndarray) -> None:
    points = np.asarray(points, dtype=np.float64) + 1.0
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    Path(path).write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")


# ---------------------------------------------------------------------------------------------------------
# JSON Lines label files

def _parse_record(obj, where: str) -> LabelRecord:
    if not isinstance(obj, dict):
        raise AnnotationError(f"{where}: expected a JSON object")
    image = obj.get("image")
    if not isinstance(image, str) or not image:
        raise AnnotationError(f"{where}: missing 'image'")
    scheme_name = obj.get("scheme", "face88")
    try:
        scheme = get_scheme(scheme_name)
    except ValueError as e:
        raise AnnotationError(f"{where}: {e}") from None
    points = obj.get("points")
    if points is not None:
        try:
            # null coordinates (written for NaN) come back as NaN so that cleaning can name them
            points = np.array([[np.nan if v is None else float(v) for v in p] for p in points], dtype=np.float64)
        except (TypeError, ValueError):
            raise AnnotationError(f"{where}: 'points' must be a list of [x, y] numbers") from None
        if points.shape != (scheme.num_points, 2):
            raise AnnotationError(f"{where}: {scheme.name} needs {scheme.num_points} points, "
                                  f"got {points.shape[0] if points.ndim else 0}")
    box = obj.get("box")
    if box is not None:
        try:
            box = tuple(float(v) for v in box)
        except (TypeError, ValueError):
            box = ()
        if len(box) != 4:
            raise AnnotationError(f"{where}: 'box' must be [x0, y0, x1, y1]")
    width, height = obj.get("width"), obj.get("height")
    if not all(v is None or (type(v) is int and v > 0) for v in (width, height)):
        raise AnnotationError(f"{where}: 'width'/'height' must be positive integers")
    return LabelRecord(image=image, scheme=scheme.name, points=points, box=box,
                       source=obj.get("source"), error=obj.get("error"), width=width, height=height)


def read_labels(path: str | Path, *, skip_bad: bool = False,
                problems: list[str] | None = None) -> Iterator[LabelRecord]:
    """Records of a label file, streamed.

    A malformed line raises AnnotationError naming the file and line; with `skip_bad=True` it is skipped and
    its message appended to `problems` instead, so one bad line never costs the rest of the file.
    """
    path = Path(path)
    from facemark.labels.cvat import is_cvat_file, read_cvat

    if is_cvat_file(path):  # an annotation tool's export (facemark.labels.cvat)
        yield from read_cvat(path)
        return
    try:
        fh = path.open("rb")  # decoded line by line, so a bad byte is reported (and skipped) on its own line
    except OSError as e:
        raise AnnotationError(f"cannot read label file {path}: {e.strerror or e}") from None
    with fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise AnnotationError(f"{where}: not UTF-8 text") from None
                except json.JSONDecodeError as e:
                    raise AnnotationError(f"{where}: invalid JSON ({e.msg})") from None
                yield _parse_record(obj, where)
            except AnnotationError as e:
                if not skip_bad:
                    raise
                if problems is not None:
                    problems.append(str(e))


def labelled_images(path: str | Path) -> set[str]:
    """Image names already present in a label file (for resuming); tolerates a half-written last line."""
    done = set()
    if not Path(path).exists():
        return done
    for record in read_labels(path, skip_bad=True):
        done.add(record.image)
    return done


def ensure_line_end(path: str | Path) -> None:
    """A run killed mid-line leaves a partial last line; make the next appended record start on a fresh line.

    The partial line stays (reading with `skip_bad=True` reports it and goes on)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb+") as fh:
            fh.seek(-1, 2)
            if fh.read(1) != b"\n":
                fh.write(b"\n")


def append_label(fh: IO[str], record: LabelRecord) -> None:
    fh.write(record.to_json() + "\n")
    fh.flush()
