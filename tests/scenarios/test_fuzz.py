"""Fuzzing with hypothesis: the image decoder, the label parser and the `.pts` parser never fail in any way
other than their documented error.

The number of examples per test is FACEMARK_FUZZ_EXAMPLES (default 60, enough for CI); a long run:
`FACEMARK_FUZZ_EXAMPLES=3000 pytest tests/scenarios/test_fuzz.py`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from facemark.labels.annotations import AnnotationError, read_labels, read_pts  # noqa: E402
from facemark.images import ImageError, load_image  # noqa: E402

# Pillow warns about some damaged TIFF/GIF headers before failing or decoding: expected here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EXAMPLES = int(os.environ.get("FACEMARK_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

# a work folder shared by all examples (tmp_path is per test, not per example)
_WORK = Path(tempfile.mkdtemp(prefix="facemark_fuzz_"))


# --------------------------------------------------------------------------------------------- images


def _seed_images() -> dict[str, bytes]:
    """Small real images in every format we read, with a gradient so the data is not trivially compressible."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:24, 0:32]
    rgb = np.stack([x * 8, y * 10, (x + y) * 4], axis=2).astype(np.uint8)
    rgb[5:10, 5:10] = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    seeds = {}
    for fmt, kwargs in [("PNG", {}), ("JPEG", {"quality": 80}), ("BMP", {}), ("WEBP", {"quality": 80}),
                        ("GIF", {}), ("TIFF", {}), ("PPM", {})]:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **kwargs)
        seeds[fmt] = buffer.getvalue()
    buffer = io.BytesIO()
    image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(buffer, format="PNG", transparency=0)
    seeds["PNG-P"] = buffer.getvalue()
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    seeds["JPEG-EXIF"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray((np.asarray(image.convert("L"), dtype=np.uint16) * 257)).save(buffer, format="PNG")
    seeds["PNG-16"] = buffer.getvalue()
    return seeds


SEEDS = _seed_images()


def test_seed_images_decode():
    for name, data in SEEDS.items():
        path = _WORK / f"seed.{name.lower()}"
        path.write_bytes(data)
        out = load_image(path)
        assert out.shape == (32, 24, 3) if name == "JPEG-EXIF" else out.shape == (24, 32, 3), name


@st.composite
def mutated_image(draw):
    """(suffix, bytes): a real image with a few byte flips, insertions, deletions and/or a truncation."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        else:  # repeat a block: lengths and offsets now point to the wrong place
            n = draw(st.integers(1, 64))
            data[pos:pos] = data[pos:pos + n]
    suffix = {"JPEG-EXIF": "JPEG", "PNG-P": "PNG", "PNG-16": "PNG"}.get(name, name).lower()
    return suffix, bytes(data)


def _check_image(suffix: str, data: bytes) -> None:
    path = _WORK / f"fuzz.{suffix}"
    path.write_bytes(data)
    try:
        out = load_image(path)
    except ImageError as e:
        message = str(e)
        assert "\n" not in message and message.startswith(f"cannot read image {str(path)!r}: ")
        return
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out.ndim == 3 and out.shape[2] == 3 and out.shape[0] >= 1 and out.shape[1] >= 1
    assert out.flags["C_CONTIGUOUS"]


@FUZZ
@given(suffix=st.sampled_from(["jpg", "png", "bmp", "webp", "gif", "tif", "ppm", "bin"]),
       data=st.binary(min_size=0, max_size=2048))
def test_random_bytes_decode_or_image_error(suffix, data):
    _check_image(suffix, data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.binary(min_size=0, max_size=512))
def test_real_header_then_random_bytes(name, tail):
    """A real file's first bytes (so the format is recognised) followed by garbage."""
    data = SEEDS[name]
    head = data[: max(8, len(data) // 8)]
    _check_image("img", head + tail)


@FUZZ
@given(mutated_image())
def test_mutated_images_decode_or_image_error(case):
    _check_image(*case)


# --------------------------------------------------------------------------------------------- labels


def _valid_record(k: int, rng_seed: int) -> dict:
    rng = np.random.default_rng(rng_seed)
    points = rng.uniform(0, 200, (88, 2)).round(3).tolist()
    return {"image": f"img_{k}.jpg", "scheme": "face88", "points": points, "box": [1.0, 2.0, 100.0, 120.0],
            "source": "test", "error": None, "width": 200, "height": 220}


_JSON_SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                                     allow_infinity=False) | st.text(max_size=8)
_JSON = st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=6), inner, max_size=4), max_leaves=12)


@st.composite
def mutated_record_line(draw, k: int):
    """A valid record with one field replaced, removed, or the line's text damaged."""
    record = _valid_record(k, draw(st.integers(0, 1000)))
    op = draw(st.sampled_from(["replace", "remove", "text", "points", "nan"]))
    if op == "replace":
        key = draw(st.sampled_from(sorted(record)))
        record[key] = draw(_JSON)  # any JSON value, lists and objects included (a "scheme" list once crashed)
    elif op == "remove":
        del record[draw(st.sampled_from(sorted(record)))]
    elif op == "points":
        points = record["points"]
        choice = draw(st.sampled_from(["short", "long", "ragged", "string", "nested", "null_item"]))
        if choice == "short":
            record["points"] = points[: draw(st.integers(0, 87))]
        elif choice == "long":
            record["points"] = points + [[1.0, 2.0]]
        elif choice == "ragged":
            points[draw(st.integers(0, 87))] = [1.0]
        elif choice == "string":
            points[draw(st.integers(0, 87))] = ["a", "b"]
        elif choice == "nested":
            points[draw(st.integers(0, 87))] = [[1.0, 2.0], [3.0, 4.0]]
        else:
            points[draw(st.integers(0, 87))] = None
    line = json.dumps(record)
    if op == "nan":
        line = line.replace("1.0, 2.0, 100.0", "NaN, Infinity, -Infinity")
    if op == "text" and line:
        pos = draw(st.integers(0, len(line) - 1))
        line = line[:pos] + draw(st.text(max_size=3)).replace("\n", "") + line[pos + draw(st.integers(0, 3)):]
    return line.encode("utf-8", "surrogatepass")


@st.composite
def label_file(draw):
    """(file bytes, indices of lines known to be good, their image names)."""
    lines, good = [], []
    for k in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["good", "mutated", "text", "bytes"]))
        if kind == "good":
            lines.append(json.dumps(_valid_record(k, k)).encode())
            good.append(f"img_{k}.jpg")
        elif kind == "mutated":
            lines.append(draw(mutated_record_line(k)))
        elif kind == "text":
            lines.append(draw(st.text(max_size=60)).encode("utf-8", "surrogatepass"))
        else:
            lines.append(draw(st.binary(max_size=60)))
    # a line must not hide newlines that would split it differently from what we count
    lines = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"])), good


def _write_labels(data: bytes) -> Path:
    path = _WORK / "labels.jsonl"
    path.write_bytes(data)
    return path


@FUZZ
@given(label_file())
def test_read_labels_skip_bad_keeps_every_good_line(case):
    data, good = case
    path = _write_labels(data)
    problems: list[str] = []
    records = list(read_labels(path, skip_bad=True, problems=problems))
    names = [r.image for r in records]
    for name in good:
        assert name in names
    for record in records:
        assert isinstance(record.image, str) and record.image
        if record.points is not None:
            assert record.points.shape == (88, 2) and record.points.dtype == np.float64
    for problem in problems:
        assert isinstance(problem, str) and problem.startswith(f"{path}:")
    non_blank = sum(1 for line in data.splitlines() if line.strip())
    assert len(records) + len(problems) == non_blank


@FUZZ
@given(label_file())
def test_read_labels_strict_raises_only_annotation_error(case):
    data, good = case
    path = _write_labels(data)
    try:
        records = list(read_labels(path))
    except AnnotationError as e:
        assert "\n" not in str(e) and str(e).startswith(f"{path}:")
        return
    assert all(r.image for r in records)


@FUZZ
@given(st.lists(st.text(max_size=80), max_size=10))
def test_read_labels_random_text_lines(lines):
    path = _write_labels("\n".join(lines).encode("utf-8", "surrogatepass"))
    problems: list[str] = []
    records = list(read_labels(path, skip_bad=True, problems=problems))
    assert all(isinstance(r.image, str) for r in records)
    try:
        list(read_labels(path))
    except AnnotationError:
        pass


# --------------------------------------------------------------------------------------------- .pts


_PTS_LINE = st.one_of(
    st.text(max_size=30),
    st.builds(lambda x, y: f"{x} {y}", st.floats(), st.floats()),
    st.builds(lambda n: f"n_points: {n}", st.integers(-5, 100) | st.text(max_size=5)),
    st.sampled_from(["version: 1", "{", "}", "", "  ", "1 2 3", "nan nan", "inf 1", "1e400 2", "0x10 1"]),
)


def _check_pts(data: bytes) -> None:
    path = _WORK / "fuzz.pts"
    path.write_bytes(data)
    try:
        points = read_pts(path)
    except AnnotationError as e:
        assert "\n" not in str(e) or "\n" in data.decode("utf-8", "replace")  # the echoed line may hold \r etc.
        return
    assert isinstance(points, np.ndarray) and points.dtype == np.float64
    assert points.ndim == 2 and points.shape[1] == 2 and points.shape[0] >= 1


@FUZZ
@given(st.lists(_PTS_LINE, max_size=12))
def test_pts_lines(lines):
    _check_pts("\n".join(lines).encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=300))
def test_pts_random_bytes(data):
    _check_pts(data)


@FUZZ
@given(st.integers(0, 200), st.integers(0, 3))
def test_pts_valid_file_with_damage(cut, extra):
    """A valid 68-point file, cut at some byte, plus some extra points: AnnotationError or a valid array."""
    rng = np.random.default_rng(cut)
    text = "version: 1\nn_points: 68\n{\n" + "\n".join(
        f"{x:.3f} {y:.3f}" for x, y in rng.uniform(1, 300, (68, 2))) + "\n}\n"
    text = text[: len(text) - cut] + "".join(f"\n{k} {k}" for k in range(extra))
    path = _WORK / "fuzz.pts"
    path.write_text(text)
    try:
        points = read_pts(path)
    except AnnotationError:
        return
    assert points.shape == (68, 2)
