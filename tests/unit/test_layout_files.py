"""Layout files: the built-in layouts are such files and give the same schemes as before; a user's file is
validated with one-line errors naming the field; conversion from iBUG-68 labels."""

import json

import numpy as np
import pytest

from facemark.layout_files import LayoutError
from facemark.layouts import load_layout, scheme_from_file_object as parse_layout
from facemark.layouts import FACE88, IBUG68, IBUG68_TO_FACE88, Scheme, get_scheme
from facemark.labels.teachers import MEDIAPIPE_TO_FACE88

FIVE = "examples/layouts/five_points.json"


def _flip(n, pairs):
    flip = list(range(n))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return tuple(flip)


def _rng(a, b):
    return tuple(range(a, b + 1))


# the layouts as they were written in Python before they became files (face88.md)
FACE88_BEFORE = Scheme(
    name="face88",
    regions=(("face_profile", 21), ("left_eye", 8), ("right_eye", 8), ("left_eyebrow", 8),
             ("right_eyebrow", 8), ("mouth", 22), ("nose", 13)),
    flip=_flip(88, [(i, 20 - i) for i in range(10)]
               + [(21, 33), (22, 32), (23, 31), (24, 30), (25, 29), (26, 36), (27, 35), (28, 34)]
               + [(37, 49), (38, 48), (39, 47), (40, 46), (41, 45), (42, 52), (43, 51), (44, 50)]
               + [(53, 59), (54, 58), (55, 57), (60, 64), (61, 63), (65, 69), (66, 68), (70, 74), (71, 73)]
               + [(79, 87), (80, 86), (81, 85), (82, 84)]),
    normaliser=(21, 33),
    contours=((_rng(0, 20), False), (_rng(21, 28), True), (_rng(29, 36), True), (_rng(37, 44), True),
              (_rng(45, 52), True), (_rng(53, 64), True), (_rng(65, 74), True), (_rng(75, 78), False),
              (_rng(79, 87), False)))
IBUG68_BEFORE = Scheme(
    name="ibug68",
    regions=(("face_profile", 17), ("left_eyebrow", 5), ("right_eyebrow", 5), ("nose", 9),
             ("left_eye", 6), ("right_eye", 6), ("mouth", 20)),
    flip=_flip(68, [(i, 16 - i) for i in range(8)] + [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]
               + [(31, 35), (32, 34)] + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
               + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]),
    normaliser=(36, 45),
    contours=((_rng(0, 16), False), (_rng(17, 21), False), (_rng(22, 26), False), (_rng(27, 30), False),
              (_rng(31, 35), False), (_rng(36, 41), True), (_rng(42, 47), True), (_rng(48, 59), True),
              (_rng(60, 67), True)))


def test_builtin_layout_files_give_the_schemes_of_before():
    for scheme, before in ((FACE88, FACE88_BEFORE), (IBUG68, IBUG68_BEFORE)):
        assert scheme == before
        assert (scheme.regions, scheme.flip, scheme.normaliser, scheme.contours) == (
            before.regions, before.flip, before.normaliser, before.contours)
        assert load_layout(scheme.name) is scheme
    # the files' sources are the tables the code uses
    assert [idx[0] for idx in FACE88.source("mediapipe")] == list(MEDIAPIPE_TO_FACE88)
    assert {idx[0]: i for i, idx in enumerate(FACE88.source("ibug68")) if idx} == IBUG68_TO_FACE88
    # the dict stored in the built-in models' files (no sources) still reads as the same layout
    old = {k: v for k, v in FACE88.to_dict().items() if k not in ("sources", "margin")}
    assert Scheme.from_dict(old) == FACE88 and Scheme.from_dict(FACE88.to_dict()).sources == FACE88.sources


def test_five_point_layout_file_and_its_ibug68_conversion():
    five = load_layout(FIVE)
    assert five.num_points == 5 and five.region_names == ("left_eye", "right_eye", "nose", "mouth")
    assert five.flip == (1, 0, 2, 4, 3) and five.normaliser == (0, 1) and five.margin == 2.5
    assert get_scheme("five_points") == five  # registered by name, as label files and caches name it (another
    # test may have registered the same layout first: equal, not necessarily the same object)
    pts68 = np.random.default_rng(0).uniform(0, 100, (3, 68, 2))
    out = five.from_source("ibug68", pts68)
    assert np.allclose(out[:, 0], pts68[:, 36:42].mean(axis=1)) and np.allclose(out[:, 4], pts68[:, 54])
    # a layout travels as a dict (cache, weights, ONNX metadata) with its sources and margin
    back = Scheme.from_dict(json.loads(json.dumps(five.to_dict())))
    assert back == five and back.sources == five.sources and back.margin == five.margin
    # face88 from iBUG-68: the 34 shared points, NaN elsewhere (as ibug68_as_face88)
    from facemark.layouts import ibug68_as_face88
    assert np.array_equal(FACE88.from_source("ibug68", pts68), ibug68_as_face88(pts68), equal_nan=True)
    with pytest.raises(ValueError, match="from_mediapipe"):
        IBUG68.from_source("mediapipe", pts68)


def _base():
    return {"name": "tiny", "points": 4, "regions": {"left_eye": [0], "right_eye": [1], "mouth": "2-3"},
            "mirror": [[0, 1], [2, 3]], "normaliser": [0, 1]}


@pytest.mark.parametrize("change, message", [
    ({"mirror": [[0, 1], [1, 2]]}, "mirror: point 1 is paired with both 0 and 2 (not an involution"),
    ({"regions": {"left_eye": [0, 1], "right_eye": [1], "mouth": "2-3"}}, "regions: point 1 is in both 'left_eye' and 'right_eye'"),
    ({"regions": {"left_eye": [0], "right_eye": [1], "mouth": [2]}}, "regions: point 3 is in no region"),
    ({"regions": {"left_eye": [0], "right_eye": [1], "mouth": [2, 9]}}, "regions.mouth[1]: index 9 out of range 0..3"),
    ({"regions": {"left_eye": [0, 2], "right_eye": [1], "mouth": [3]}}, "regions.left_eye: its points must be one run"),
    ({"normaliser": [0, 7]}, "normaliser: index 7 out of range 0..3"),
    ({"from_ibug68": [[36], [45], [48], [70]]}, "from_ibug68[3][0]: index 70 out of range 0..67"),
    ({"from_ibug68": [[36], [45]]}, "from_ibug68: expected 4 entries"),
    ({"from_mediapipe": [[1], [2], [3], [478]]}, "from_mediapipe[3][0]: index 478 out of range 0..477"),
    ({"mirro": []}, "unknown field 'mirro'"),
    ({"points": "four"}, "points: expected the number of points"),
    ({"margin": 0.5}, "margin: expected a number above 1"),
    ({"contours": [{"points": [0, 5]}]}, "contours[0].points[1]: index 5 out of range"),
])
def test_bad_layout_files_give_one_line_naming_the_field(change, message):
    data = _base() | change
    with pytest.raises(LayoutError) as e:
        parse_layout(data, "tiny.json")
    assert str(e.value).startswith("tiny.json: ") and message in str(e.value) and "\n" not in str(e.value)


def test_missing_fields_bad_json_and_unknown_names(tmp_path):
    data = _base()
    del data["normaliser"]
    with pytest.raises(LayoutError, match="missing field 'normaliser'"):
        parse_layout(data, "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",')
    with pytest.raises(LayoutError, match=r"bad.json: invalid JSON at line 1"):
        load_layout(bad)
    with pytest.raises(LayoutError, match="no such layout file, and not a known layout"):
        load_layout(tmp_path / "none.json")
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps(_base() | {"name": "face88"}))
    with pytest.raises(LayoutError, match="'face88' is already a different layout"):
        load_layout(clash)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_base()))
    assert load_layout(good).num_points == 4 and get_scheme("tiny").num_points == 4


def test_every_layout_error_is_documented():
    """docs/layouts.md and docs/errors.md list every LayoutError message (their fixed words, between fields)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    source = "".join((repo / "src" / "facemark" / name).read_text() for name in ("layout_files.py", "layouts.py"))
    docs = [(repo / "docs" / name).read_text() for name in ("layouts.md", "errors.md")]
    messages = re.findall(r'LayoutError\(f?"([^"]*)', source)
    assert len(messages) > 25
    for message in messages:
        for words in re.split(r"\{[^{}]*\}+", message.replace("{{", "{").replace("}}", "}")):
            words = words.strip(" :.,(")
            if len(words) >= 12 and "{" not in words and "\\" not in words:
                assert all(words in doc for doc in docs), f"undocumented: {words!r} (of {message!r})"


def test_verbs_answer_a_bad_layout_in_one_line(tmp_path, capsys):
    from facemark.cli.main import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_base() | {"mirror": [[0, 1], [1, 2]]}))
    (tmp_path / "images").mkdir()
    for argv in (["label", str(tmp_path / "images"), "--out", str(tmp_path / "l.jsonl"), "--layout", str(bad)],
                 ["cache", str(tmp_path / "images"), "--out", str(tmp_path / "c"), "--layout", str(bad)],
                 ["convert", str(tmp_path / "images"), "--out", str(tmp_path / "x.xml"), "--layout", str(bad)]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "not an involution" in err and str(bad) in err
    assert main(["label", str(tmp_path / "images"), "--out", str(tmp_path / "l.jsonl"), "--layout", FIVE,
                 "--ray"]) == 2
    assert "--layout does not combine with --ray yet" in capsys.readouterr().err
