"""CVAT for images 1.1 XML both ways: labels written for the tool read back the same, a file as CVAT exports it
reads as label records (and so trains: read_labels takes it), and bad shapes are refused in one line."""

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from facemark.cli.main import main
from facemark.labels.annotations import AnnotationError, LabelRecord, read_labels, read_pts
from facemark.labels.cvat import read_cvat, write_cvat
from facemark.layouts import load_layout

FIVE = "examples/layouts/five_points.json"


def _records():
    rng = np.random.default_rng(0)
    five = load_layout(FIVE)
    return [LabelRecord(image="a/one.jpg", scheme="face88", points=rng.uniform(0, 200, (88, 2)), source="mediapipe",
                        width=200, height=220),
            LabelRecord(image="two.png", scheme=five.name, points=rng.uniform(0, 90, (5, 2)), source="pts",
                        width=100, height=90),
            LabelRecord(image="three.jpg", scheme="face88", points=None, error="no face", width=50, height=50)]


def test_labels_written_for_cvat_read_back_the_same(tmp_path):
    records = _records()
    path = tmp_path / "labels.xml"
    assert write_cvat(records, path) == 2
    back = list(read_labels(path))  # every verb reads label files through read_labels
    assert [r.image for r in back] == [r.image for r in records]
    for r, b in zip(records, back):
        assert (b.scheme, b.width, b.height) == (r.scheme, r.width, r.height) or r.points is None
        if r.points is not None:
            assert np.abs(b.points - r.points).max() <= 0.005  # written to 1/100 pixel
        else:
            assert b.points is None
    # the file is what CVAT imports: <annotations><version>1.1, one label per layout, one points shape per face
    root = ET.parse(path).getroot()
    assert root.find("version").text == "1.1"
    assert sorted(l.find("name").text for l in root.iter("label")) == ["face88", "five_points"]
    shape = root.find("image[@name='two.png']/points")
    first = [float(v) for v in shape.get("points").split(";")[0].split(",")]
    assert np.allclose(first, records[1].points[0] + 0.5, atol=0.005)  # CVAT: (0, 0) is the pixel's corner
    assert shape.get("source") == "manual"


def test_a_file_as_cvat_exports_it(tmp_path):
    load_layout(FIVE)
    path = tmp_path / "annotations.xml"
    path.write_text("""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><id>7</id><name>faces</name><size>2</size><mode>annotation</mode>
    <labels><label><name>five_points</name><color>#fa3253</color><type>points</type><attributes/></label></labels>
  </task><dumped>2026-12-07 10:00:00.000000+00:00</dumped></meta>
  <image id="0" name="p/x.jpg" width="320" height="240">
    <points label="five_points" source="manual" occluded="0" points="10.5,20.5;30.5,20.5;20.5,30.5;12.5,40.5;28.5,40.5" z_order="0">
    </points>
  </image>
  <image id="1" name="p/y.jpg" width="320" height="240">
  </image>
</annotations>
""")
    x, y = read_cvat(path)
    assert x.scheme == "five_points" and x.source == "cvat:manual" and (x.width, x.height) == (320, 240)
    assert np.allclose(x.points[0], [10, 20]) and np.allclose(x.points[4], [28, 40])
    assert y.points is None


@pytest.mark.parametrize("shape, message", [
    ('<points label="five_points" points="1,2;3,4" z_order="0"/>', "five_points needs 5 points, the shape has 2"),
    ('<points label="lips40" points="1,2;3,4" z_order="0"/>', "unknown scheme 'lips40'"),
    ('<points label="five_points" points="1,2;3;4,5" z_order="0"/>', "points must read 'x,y;x,y;...'"),
    ('<points label="five_points" points="1,2;3,4;5,6;7,8;9,9"/><points label="five_points" points="1,2;3,4;5,6;7,8;9,9"/>',
     "2 points shapes; a label file holds one face per image"),
])
def test_bad_cvat_shapes_are_one_line_naming_the_image(tmp_path, shape, message):
    load_layout(FIVE)
    path = tmp_path / "bad.xml"
    path.write_text(f'<annotations><version>1.1</version><image id="0" name="q.jpg" width="9" height="9">{shape}'
                    f'</image></annotations>')
    with pytest.raises(AnnotationError) as e:
        list(read_cvat(path))
    assert str(e.value).startswith(f"{path}: image q.jpg: ") and message in str(e.value)
    assert "\n" not in str(e.value)
    (tmp_path / "not.xml").write_text("<annotations><image")
    with pytest.raises(AnnotationError, match="not a CVAT XML file"):
        list(read_cvat(tmp_path / "not.xml"))


def test_missing_points_cannot_go_to_cvat(tmp_path):
    points = np.full((88, 2), np.nan)
    points[:34] = 5.0
    with pytest.raises(AnnotationError, match="54 of its face88 points are missing"):
        write_cvat([LabelRecord(image="z.jpg", points=points)], tmp_path / "z.xml")


def test_convert_pts_folder_to_cvat_and_back(tmp_path, shared_data):
    """`facemark convert`: human 68-point labels -> five points in CVAT -> JSON Lines, the points kept."""
    folder = tmp_path / "pts"
    folder.mkdir()
    afw = shared_data / "300w" / "afw"
    for pts in sorted(afw.glob("*.pts"))[:3]:
        shutil.copy(pts, folder)
        shutil.copy(pts.with_suffix(".jpg"), folder)
    assert main(["convert", str(folder), "--out", str(tmp_path / "five.xml"), "--layout", FIVE]) == 0
    assert main(["convert", str(tmp_path / "five.xml"), "--out", str(tmp_path / "five.jsonl")]) == 0
    five = load_layout(FIVE)
    back = list(read_labels(tmp_path / "five.jsonl"))
    assert len(back) == 3 and all(r.scheme == "five_points" and r.width for r in back)
    first = sorted(folder.glob("*.pts"))[0]
    assert np.abs(back[0].points - five.from_source("ibug68", read_pts(first))).max() <= 0.006
    assert main(["convert", str(folder), "--out", str(tmp_path / "x.csv")]) == 2  # a usage error
