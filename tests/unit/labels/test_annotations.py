import json
import math

import numpy as np
import pytest

from facemark.labels.annotations import (AnnotationError, LabelRecord, append_label, labelled_images, read_labels,
                                  read_pts, write_pts)


def _shape(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(5, 300, size=(n, 2)).round(3)


# ------------------------------------------------------------------------------------------------- .pts

def test_read_pts_with_header_is_zero_based(tmp_path):
    path = tmp_path / "face.pts"
    path.write_text("version: 1\nn_points: 3\n{\n1 1\n10.5 20.25\n101 51\n}\n")
    points = read_pts(path)
    assert points.dtype == np.float64 and points.shape == (3, 2)
    np.testing.assert_allclose(points, [[0, 0], [9.5, 19.25], [100, 50]])


def test_read_pts_without_header(tmp_path):
    path = tmp_path / "bare.pts"
    path.write_text("3 4\n\n  5.5 6.5  \n")
    np.testing.assert_allclose(read_pts(path), [[2, 3], [4.5, 5.5]])


def test_write_then_read_pts_round_trip(tmp_path):
    points = np.random.default_rng(3).uniform(-20, 400, size=(68, 2))
    path = tmp_path / "round.pts"
    write_pts(path, points)
    text = path.read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"
    # the file itself is 1-based
    x, y = (float(v) for v in text[3].split())
    assert (x, y) == pytest.approx(points[0] + 1.0, abs=1e-3)
    np.testing.assert_allclose(read_pts(path), points, atol=6e-4)


@pytest.mark.parametrize("body, bad_line", [
    ("version: 1\nn_points: 2\n{\n1 2\n3 4 5\n}\n", 5),  # three numbers
    ("1 2\n3 4\nx y\n", 3),  # not numbers
    ("1 2\n7\n", 2),  # one number
    ("version: 1\nn_points: two\n{\n1 2\n}\n", 2),  # bad header
])
def test_bad_pts_line_names_the_line(tmp_path, body, bad_line):
    path = tmp_path / "bad.pts"
    path.write_text(body)
    with pytest.raises(AnnotationError) as info:
        read_pts(path)
    assert f"{path}:{bad_line}:" in str(info.value)


def test_pts_point_count_must_match_header(tmp_path):
    path = tmp_path / "short.pts"
    path.write_text("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n")
    with pytest.raises(AnnotationError, match="3 points.*has 2"):
        read_pts(path)


def test_empty_or_missing_pts_is_an_annotation_error(tmp_path):
    empty = tmp_path / "empty.pts"
    empty.write_text("version: 1\nn_points: 0\n{\n}\n")
    with pytest.raises(AnnotationError, match="no points"):
        read_pts(empty)
    with pytest.raises(AnnotationError, match="cannot read"):
        read_pts(tmp_path / "absent.pts")


# ------------------------------------------------------------------------------------------------- JSONL

def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_label_record_round_trip(tmp_path):
    records = [
        LabelRecord(image="a/1.jpg", points=_shape(88, 1), box=(1.5, 2.25, 300.0, 280.125),
                    source="mediapipe-0.10.21", width=640, height=480),
        LabelRecord(image="b.png", points=None, error="no face found by the teacher", source="mediapipe-0.10.21"),
        LabelRecord(image="c.jpg", scheme="ibug68", points=_shape(68, 2)),
    ]
    path = tmp_path / "labels.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            append_label(fh, record)
    assert len(path.read_text().splitlines()) == 3
    back = list(read_labels(path))
    assert [r.image for r in back] == ["a/1.jpg", "b.png", "c.jpg"]
    assert [r.scheme for r in back] == ["face88", "face88", "ibug68"]
    for original, read in zip(records, back):
        assert (read.source, read.error, read.width, read.height) == (
            original.source, original.error, original.width, original.height)
        if original.points is None:
            assert read.points is None
        else:
            assert read.points.dtype == np.float64
            np.testing.assert_allclose(read.points, original.points, atol=5e-4)
    assert back[0].box == pytest.approx(records[0].box, abs=5e-4)
    assert back[1].box is None


def test_label_json_is_strict_and_rounded():
    points = np.full((88, 2), 1.0 / 3.0)
    obj = json.loads(LabelRecord(image="x.jpg", points=points).to_json())
    assert set(obj) == {"image", "scheme", "points", "box", "source", "error", "width", "height"}
    assert obj["points"][0] == [0.333, 0.333]


def test_nan_points_written_as_null_and_read_back_as_nan(tmp_path):
    points = _shape(88, 4)
    points[5, 0] = np.nan
    points[17] = np.inf
    line = LabelRecord(image="n.jpg", points=points).to_json()
    assert "NaN" not in line and "Infinity" not in line
    obj = json.loads(line)
    assert obj["points"][5] == [None, pytest.approx(points[5, 1], abs=1e-3)]
    assert obj["points"][17] == [None, None]
    path = tmp_path / "nan.jsonl"
    _write_lines(path, [line])
    (record,) = read_labels(path)
    bad = ~np.isfinite(record.points)
    assert bad.sum() == 3 and bad[5, 0] and bad[17].all()
    assert np.isnan(record.points[bad]).all()
    np.testing.assert_allclose(record.points[~bad], points[~bad], atol=5e-4)


def test_invalid_json_names_the_line(tmp_path):
    good = [LabelRecord(image=f"{k}.jpg", points=_shape(88, k)).to_json() for k in range(4)]
    path = tmp_path / "broken.jsonl"
    _write_lines(path, good[:2] + ['{"image": "x.jpg", "points": [[1, 2]'] + good[2:])
    with pytest.raises(AnnotationError) as info:
        list(read_labels(path))
    assert f"{path}:3:" in str(info.value) and "invalid JSON" in str(info.value)


def test_skip_bad_keeps_the_good_lines_and_lists_the_problems(tmp_path):
    good = [LabelRecord(image=f"{k}.jpg", points=_shape(88, k)).to_json() for k in range(4)]
    path = tmp_path / "mixed.jsonl"
    _write_lines(path, [good[0], "not json at all", good[1], "", json.dumps(["a", "list"]), good[2],
                        json.dumps({"points": None}), good[3]])
    problems = []
    records = list(read_labels(path, skip_bad=True, problems=problems))
    assert [r.image for r in records] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert len(problems) == 3
    assert f"{path}:2:" in problems[0] and f"{path}:5:" in problems[1] and f"{path}:7:" in problems[2]
    assert "missing 'image'" in problems[2]


@pytest.mark.parametrize("count", [87, 89, 68])
def test_wrong_point_count_names_the_line(tmp_path, count):
    path = tmp_path / "count.jsonl"
    ok = LabelRecord(image="ok.jpg", points=_shape(88)).to_json()
    wrong = json.dumps({"image": "wrong.jpg", "scheme": "face88", "points": _shape(count).tolist()})
    _write_lines(path, [ok, ok.replace("ok.jpg", "ok2.jpg"), wrong])
    with pytest.raises(AnnotationError) as info:
        list(read_labels(path))
    message = str(info.value)
    assert f"{path}:3:" in message and "88" in message and str(count) in message


def test_ibug68_record_needs_68_points(tmp_path):
    path = tmp_path / "ibug.jsonl"
    _write_lines(path, [json.dumps({"image": "i.jpg", "scheme": "ibug68", "points": _shape(88).tolist()})])
    with pytest.raises(AnnotationError, match=":1: ibug68 needs 68 points"):
        list(read_labels(path))


@pytest.mark.parametrize("fields, fragment", [
    ({"scheme": "face99"}, "unknown scheme"),
    ({"points": [["a", "b"]] * 88}, "'points' must be"),
    ({"box": [1, 2, 3]}, "'box' must be"),
    ({"width": -5}, "'width'/'height'"),
    ({"height": 2.5}, "'width'/'height'"),
])
def test_malformed_fields_name_the_line(tmp_path, fields, fragment):
    path = tmp_path / "fields.jsonl"
    _write_lines(path, [LabelRecord(image="a.jpg").to_json(), json.dumps({"image": "b.jpg", **fields})])
    with pytest.raises(AnnotationError) as info:
        list(read_labels(path))
    assert f"{path}:2:" in str(info.value) and fragment in str(info.value)


def test_missing_label_file_is_an_annotation_error(tmp_path):
    with pytest.raises(AnnotationError, match="cannot read label file"):
        list(read_labels(tmp_path / "nope.jsonl"))


def test_labelled_images_tolerates_a_half_written_last_line(tmp_path):
    path = tmp_path / "partial.jsonl"
    assert labelled_images(path) == set()  # no file yet: nothing done
    full = [LabelRecord(image=f"img{k}.jpg", points=_shape(88, k)).to_json() for k in range(3)]
    cut = full[2][: len(full[2]) // 2]  # a run killed while writing the third record
    path.write_text(full[0] + "\n" + full[1] + "\n" + cut, encoding="utf-8")
    assert labelled_images(path) == {"img0.jpg", "img1.jpg"}
    with pytest.raises(AnnotationError, match=":3:"):
        list(read_labels(path))


def test_points_keep_their_precision_to_a_thousandth(tmp_path):
    points = _shape(88, 9) + 0.123456
    path = tmp_path / "p.jsonl"
    _write_lines(path, [LabelRecord(image="p.jpg", points=points).to_json()])
    (record,) = read_labels(path)
    err = np.abs(record.points - points).max()
    assert err <= 5e-4 + 1e-9 and not math.isnan(err)


def test_a_non_utf8_byte_is_reported_on_its_own_line_and_skippable(tmp_path):
    good = [LabelRecord(image=f"{k}.jpg", points=_shape(88, k)).to_json().encode() for k in range(3)]
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b"\n".join([good[0], good[1], b'{"image": "caf\xe9.jpg"}', good[2]]) + b"\n")
    with pytest.raises(AnnotationError, match=rf"{path.name}:3: not UTF-8"):
        list(read_labels(path))
    problems = []
    assert [r.image for r in read_labels(path, skip_bad=True, problems=problems)] == ["0.jpg", "1.jpg", "2.jpg"]
    assert len(problems) == 1 and ":3:" in problems[0]
