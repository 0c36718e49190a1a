"""CVAT for images 1.1 XML: label files that an annotation tool opens, corrects and exports again.

One face is one `points` shape whose label is the layout's name and whose points are the layout's, in order:

    <image id="0" name="afw/134212_1.jpg" width="320" height="282">
      <points label="five_points" source="auto" occluded="0" points="101.50,120.25;150.00,118.75;..." z_order="0"/>
    </image>

Import the file into a CVAT task ("Upload annotations", format "CVAT 1.1") over the same images, move the
points, export it as "CVAT for images 1.1", and every verb that reads a label file reads it (`facemark clean`,
`cache`, `eval`). `facemark convert` writes one from a JSON Lines label file or a .pts folder, and back.

Coordinates: CVAT's are continuous, (0, 0) at the top-left corner of the top-left pixel; facemark's are
pixel-centre (that pixel's centre is (0, 0)), so CVAT = facemark + 0.5. A shape must hold every point of its
layout (CVAT has no "missing point"); a label whose layout is unknown needs the layout file (--layout).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from facemark.labels.records import AnnotationError, LabelRecord
from facemark.layouts import get_scheme

PIXEL_CORNER_OFFSET = 0.5  # CVAT coordinate of facemark's (0, 0): the top-left pixel's centre


def is_cvat_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".xml"


def read_cvat(path: str | Path) -> Iterator[LabelRecord]:
    """The label records of a CVAT for images 1.1 file: one per image with a face shape, and one without
    points for an image without one. AnnotationError (one line, naming the file and the image) on a bad file."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as e:
        raise AnnotationError(f"cannot read label file {path}: {e.strerror or e}") from None
    except ET.ParseError as e:
        raise AnnotationError(f"{path}: not a CVAT XML file ({e})") from None
    if root.tag != "annotations":
        raise AnnotationError(f"{path}: not a CVAT for images file (its root is <{root.tag}>, not <annotations>)")
    for image in root.iter("image"):
        name = image.get("name")
        if not name:
            raise AnnotationError(f"{path}: an <image> without a name")
        where = f"{path}: image {name}"
        width, height = (_size(image.get(k), where) for k in ("width", "height"))
        shapes = [s for s in image.findall("points")]
        if not shapes:
            yield LabelRecord(image=name, scheme="face88", points=None, source="cvat", width=width, height=height)
            continue
        if len(shapes) > 1:
            raise AnnotationError(f"{where}: {len(shapes)} points shapes; a label file holds one face per image")
        shape = shapes[0]
        try:
            scheme = get_scheme(shape.get("label", ""))
        except ValueError as e:
            raise AnnotationError(f"{where}: {e}") from None
        try:
            points = np.array([[float(v) for v in xy.split(",")] for xy in shape.get("points", "").split(";")],
                              dtype=np.float64) - PIXEL_CORNER_OFFSET
        except ValueError:
            raise AnnotationError(f"{where}: points must read 'x,y;x,y;...', got {shape.get('points')!r}") from None
        if points.shape != (scheme.num_points, 2):
            raise AnnotationError(f"{where}: {scheme.name} needs {scheme.num_points} points, the shape has "
                                  f"{len(points)} (a point added or deleted in the tool?)")
        yield LabelRecord(image=name, scheme=scheme.name, points=points, source=f"cvat:{shape.get('source', '')}",
                          width=width, height=height)


def _size(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        raise AnnotationError(f"{where}: width/height must be integers, got {value!r}") from None
    return size if size > 0 else None


def write_cvat(records: Iterable[LabelRecord], path: str | Path, images_dir: str | Path | None = None) -> int:
    """Write `records` as a CVAT for images 1.1 file; returns the number of faces written. An image's size
    comes from its record, else from the image file in `images_dir`. AnnotationError for a face with missing
    points (CVAT has none)."""
    records = list(records)
    layouts = sorted({r.scheme for r in records if r.points is not None})
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "name").text = Path(path).stem
    ET.SubElement(task, "size").text = str(len(records))
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    for name in layouts:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "points"
        ET.SubElement(label, "attributes")
    faces = 0
    for i, record in enumerate(records):
        width, height = record.width, record.height
        if (width is None or height is None) and images_dir is not None:
            width, height = _image_size(Path(images_dir) / record.image)
        attrs = {"id": str(i), "name": record.image}
        if width and height:
            attrs |= {"width": str(width), "height": str(height)}
        image = ET.SubElement(root, "image", attrs)
        if record.points is None:
            continue
        if not np.isfinite(record.points).all():
            raise AnnotationError(f"{record.image}: {int((~np.isfinite(record.points).all(axis=1)).sum())} of its "
                                  f"{record.scheme} points are missing, and a CVAT points shape holds every point; "
                                  f"convert it to a layout its labels give in full (--layout)")
        xy = ";".join(f"{x + PIXEL_CORNER_OFFSET:.2f},{y + PIXEL_CORNER_OFFSET:.2f}" for x, y in record.points)
        source = "manual" if record.source in ("pts", "cvat:manual") else "auto"
        ET.SubElement(image, "points", {"label": record.scheme, "source": source, "occluded": "0",
                                        "points": xy, "z_order": "0"})
        faces += 1
    ET.indent(root)
    Path(path).write_text('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n",
                          encoding="utf-8")
    return faces


def _image_size(path: Path) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except (ImportError, OSError):
        return None, None
