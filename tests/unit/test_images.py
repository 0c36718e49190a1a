"""Tests for facemark.images: every file kind is generated in tmp_path (no binary fixtures in the repo)."""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageOps

from facemark import images
from facemark.images import (
    IMAGE_EXTENSIONS,
    ImageError,
    image_size,
    iter_image_files,
    load_image,
    load_image_downscaled,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _pattern(w: int = 64, h: int = 48) -> np.ndarray:
    """A smooth RGB test image (survives JPEG well) with distinct channels."""
    y, x = np.mgrid[0:h, 0:w]
    channels = [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 90)]
    return np.stack(channels, -1).astype(np.uint8)


def _save(tmp_path: Path, name: str, img: Image.Image | np.ndarray, **kw) -> Path:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    path = tmp_path / name
    img.save(path, **kw)
    return path


def _check_rgb(a: np.ndarray, shape: tuple[int, int]) -> None:
    assert a.dtype == np.uint8
    assert a.shape == (*shape, 3)
    assert a.flags.c_contiguous


def _centroid(a: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted centroid (x, y) of channel 0, pixel-centre coordinates."""
    g = a[..., 0].astype(np.float64)
    g = np.where(g > 3, g, 0.0)
    y, x = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    return float((g * x).sum() / g.sum()), float((g * y).sum() / g.sum())


def _blob(w: int, h: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    g = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) * 255
    return np.repeat(g[..., None], 3, -1).round().astype(np.uint8)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif


# ---------------------------------------------------------------------------------------------- file kinds


@pytest.mark.parametrize(
    ("name", "kw", "tol"),
    [("a.jpg", {"quality": 95}, 12), ("a.png", {}, 0), ("a.bmp", {}, 0), ("a.webp", {"lossless": True}, 0),
     ("a.ppm", {}, 0), ("a.tif", {}, 0), ("a.webp", {"quality": 90}, 20)],
)
def test_rgb_formats_round_trip(tmp_path, name, kw, tol):
    src = _pattern()
    a = load_image(_save(tmp_path, name, src, **kw))
    _check_rgb(a, (48, 64))
    assert np.abs(a.astype(int) - src).max() <= tol
    assert a.flags.writeable


def test_pathlib_and_str_paths_agree(tmp_path):
    path = _save(tmp_path, "a.png", _pattern())
    assert np.array_equal(load_image(path), load_image(str(path)))


@pytest.mark.parametrize("name", ["g.png", "g.pgm", "g.jpg", "g.bmp"])
def test_grayscale_becomes_three_equal_channels(tmp_path, name):
    g = _pattern()[..., 0]
    a = load_image(_save(tmp_path, name, g))
    _check_rgb(a, g.shape)
    assert np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])
    assert np.abs(a[..., 0].astype(int) - g).max() <= (8 if name.endswith("jpg") else 0)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    g = np.array([[0, 257, 32768, 65535], [32767, 1000, 40000, 65280]], dtype=np.uint16)
    path = _save(tmp_path, "g16.png", g)
    assert Image.open(path).mode.startswith("I;16")  # really a 16-bit file
    a = load_image(path)
    _check_rgb(a, g.shape)
    assert a[0, 0, 0] == 0 and a[0, 3, 0] == 255 and a[0, 1, 0] == 1
    assert abs(int(a[0, 2, 0]) - 128) <= 1 and abs(int(a[1, 0, 0]) - 128) <= 1
    expected = np.round(g.astype(float) * 255 / 65535)
    assert np.abs(a[..., 0] - expected).max() <= 1
    assert (a[..., 0] == a[..., 2]).all()


def test_16bit_pgm_mode_i_is_scaled(tmp_path):
    g = np.array([[0, 32768, 65535]], dtype=np.uint16)
    path = _save(tmp_path, "g16.pgm", g)
    a = load_image(path)
    assert a[0, :, 0].tolist() == [0, 128, 255]


def _png(tmp_path: Path, name: str, w: int, h: int, bit_depth: int, color_type: int, raw: bytes) -> Path:
    """A minimal hand-written PNG (Pillow cannot write 16-bit RGB); `raw` = filtered scanlines."""

    def chunk(ctype: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    chunks = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    body = b"\x89PNG\r\n\x1a\n" + chunks
    path = tmp_path / name
    path.write_bytes(body)
    return path


def test_16bit_rgb_png(tmp_path):
    px = np.array([[[65535, 32768, 0], [257, 0, 65535]]], dtype=">u2")
    raw = b"\x00" + px.tobytes()
    a = load_image(_png(tmp_path, "rgb16.png", 2, 1, 16, 2, raw))
    _check_rgb(a, (1, 2))
    assert a[0, 0].tolist()[0] == 255 and abs(a[0, 0, 1] - 128) <= 1 and a[0, 0, 2] == 0
    assert a[0, 1].tolist() == [1, 0, 255]


def test_rgba_is_composited_over_black(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = [[255, 128, 0], [0, 255, 51]]
    a = load_image(_save(tmp_path, "a.png", rgba))
    expected = np.round(rgba[..., :3].astype(float) * rgba[..., 3:] / 255)
    assert np.abs(a.astype(int) - expected).max() <= 1
    assert a[0, 2].tolist() == [0, 0, 0] and a[0, 0].tolist() == [200, 100, 50]


def test_la_is_composited_over_black(tmp_path):
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (200, 255))
    la.putpixel((1, 0), (200, 0))
    a = load_image(_save(tmp_path, "la.png", la))
    assert a[0, 0].tolist() == [200] * 3 and a[0, 1].tolist() == [0] * 3


def test_palette_with_and_without_transparency(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    p.putdata([0, 1, 2])
    plain = load_image(_save(tmp_path, "p.png", p))
    assert plain[0].tolist() == [list(RED), list(GREEN), list(BLUE)]
    transparent = load_image(_save(tmp_path, "pt.png", p, transparency=1))  # index 1 (green) transparent
    assert transparent[0].tolist() == [list(RED), [0, 0, 0], list(BLUE)]
    gif = load_image(_save(tmp_path, "p.gif", p))
    assert gif[0].tolist() == [list(RED), list(GREEN), list(BLUE)]


def test_rgb_color_key_transparency(tmp_path):
    rgb = np.array([[RED, GREEN]], np.uint8)
    a = load_image(_save(tmp_path, "key.png", rgb, transparency=GREEN))
    assert a[0].tolist() == [list(RED), [0, 0, 0]]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    img = Image.new("RGB", (32, 16), RED).convert("CMYK")
    path = _save(tmp_path, "cmyk.jpg", img, quality=95)
    assert Image.open(path).mode == "CMYK"
    a = load_image(path)
    _check_rgb(a, (16, 32))
    assert np.abs(a.astype(int) - RED).max() <= 6


def test_one_bit_image(tmp_path):
    bits = np.array([[0, 1, 1], [1, 0, 0]], bool)
    img = Image.fromarray(bits)
    assert img.mode == "1"
    for name in ("b.png", "b.pbm", "b.bmp"):
        a = load_image(_save(tmp_path, name, img))
        assert a[..., 1].tolist() == (bits * 255).tolist()


def test_one_by_one(tmp_path):
    for name in ("one.png", "one.jpg"):
        a = load_image(_save(tmp_path, name, np.array([[GREEN]], np.uint8)))
        _check_rgb(a, (1, 1))
        assert a[0, 0, 1] > 240 and a[0, 0, 0] < 15
    assert image_size(tmp_path / "one.png") == (1, 1)


# ---------------------------------------------------------------------------------------------- orientation


def _marked(w: int = 60, h: int = 40) -> np.ndarray:
    """Dark image with a red block in the stored top-left corner."""
    a = np.full((h, w, 3), 30, np.uint8)
    a[:8, :8] = RED
    return a


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [(1, "top-left"), (6, "top-right"), (8, "bottom-left"), (3, "bottom-right"), (2, "top-right"),
     (4, "bottom-left"), (5, "top-left"), (7, "bottom-right")],
)
def test_exif_orientation_jpeg(tmp_path, orientation, corner):
    path = _save(tmp_path, "o.jpg", _marked(), quality=95, exif=_exif(orientation))
    a = load_image(path)
    swapped = orientation >= 5
    expected = (60, 40) if swapped else (40, 60)
    _check_rgb(a, expected)
    assert image_size(path) == (expected[1], expected[0])
    h, w = expected
    ys = slice(0, 4) if corner.startswith("top") else slice(h - 4, h)
    xs = slice(0, 4) if corner.endswith("left") else slice(w - 4, w)
    assert a[ys, xs, 0].min() > 200 and a[ys, xs, 1].max() < 60  # the red marker is in that corner
    assert (a[..., 0] > 150).sum() < 100  # and only there


@pytest.mark.parametrize("name", ["o.png", "o.webp", "o.tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path, name, orientation):
    kw = {"lossless": True} if name.endswith("webp") else {}
    path = _save(tmp_path, name, _marked(), exif=_exif(orientation), **kw)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    a = load_image(path)
    assert np.array_equal(a, expected)
    assert image_size(path) == (a.shape[1], a.shape[0])
    if orientation >= 5:
        assert a.shape[:2] == (60, 40)


def test_pil_input_orientation_is_applied(tmp_path):
    path = _save(tmp_path, "o.jpg", _marked(), exif=_exif(6))
    with Image.open(path) as im:
        a = load_image(im)
    assert a.shape == (60, 40, 3)
    assert a[:4, -4:, 0].min() > 200


def test_unreadable_exif_keeps_pixels(tmp_path):
    path = _save(tmp_path, "bad_exif.jpg", _marked(), exif=b"Exif\x00\x00garbage-not-tiff")
    a = load_image(path)
    assert a.shape == (40, 60, 3)


# ---------------------------------------------------------------------------------------------- failures


def _assert_one_line_error(exc: pytest.ExceptionInfo, path: os.PathLike | str, reason: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert reason in msg
    assert msg.startswith("cannot read image ")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as exc:
        load_image(path)
    _assert_one_line_error(exc, path, "file is empty (0 bytes)")
    with pytest.raises(ImageError, match="empty"):
        image_size(path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "note.jpg"
    path.write_text("<html><body>404 Not Found</body></html>\n")
    with pytest.raises(ImageError) as exc:
        load_image(path)
    _assert_one_line_error(exc, path, "not an image file (looks like text")
    assert "<html>" in str(exc.value)
    with pytest.raises(ImageError, match="not an image file"):
        image_size(path)


def test_binary_garbage(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ImageError) as exc:
        load_image(path)
    _assert_one_line_error(exc, path, "unknown format, starts with 00 01 02")


def test_heic_is_named(tmp_path):
    path = tmp_path / "IMG_0001.jpg"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    with pytest.raises(ImageError, match="HEIC"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    path = _save(tmp_path, "full.jpg", noise)
    data = path.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        load_image(cut)
    _assert_one_line_error(exc, cut, "truncated or corrupt image data")
    with pytest.raises(ImageError, match="truncated"):
        load_image_downscaled(cut, 40)
    assert image_size(cut) == (160, 120)  # the header alone is fine: documented


def test_truncated_png(tmp_path):
    path = _save(tmp_path, "full.png", np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        load_image(cut)
    _assert_one_line_error(exc, cut, "truncated or corrupt image data")


def test_png_with_corrupted_idat_byte(tmp_path):
    # a smooth image compresses well, so a flipped byte can inflate without error into wrong pixels:
    # only the chunk CRC catches it (Pillow does not check IDAT CRCs)
    path = _save(tmp_path, "ok.png", _pattern(160, 120))
    data = bytearray(path.read_bytes())
    start = data.find(b"IDAT") + 4
    (length,) = struct.unpack(">I", data[start - 8 : start - 4])
    for offset in (length // 3, length // 2):
        bad = bytearray(data)
        bad[start + offset] ^= 0x10
        bad_path = tmp_path / f"bad{offset}.png"
        bad_path.write_bytes(bad)
        with pytest.raises(ImageError) as exc:
            load_image(bad_path)
        _assert_one_line_error(exc, bad_path, "corrupt image data")
    crc_only = bytearray(data)
    crc_only[start + length] ^= 0xFF  # the stored CRC itself is wrong, the data is intact
    crc_path = tmp_path / "crc.png"
    crc_path.write_bytes(crc_only)
    with pytest.raises(ImageError, match="bad CRC in the 'IDAT' chunk"):
        load_image(crc_path)
    assert load_image(path).shape == (120, 160, 3)  # the intact file is fine


def test_missing_path(tmp_path):
    path = tmp_path / "nope.jpg"
    for fn in (load_image, image_size, lambda p: load_image_downscaled(p, 10)):
        with pytest.raises(ImageError) as exc:
            fn(path)
        _assert_one_line_error(exc, path, "no such file")


def test_directory(tmp_path):
    with pytest.raises(ImageError) as exc:
        load_image(tmp_path)
    _assert_one_line_error(exc, tmp_path, "is a directory")
    with pytest.raises(ImageError, match="is a directory"):
        image_size(tmp_path)


def test_image_error_is_value_error():
    assert issubclass(ImageError, ValueError)


def test_too_large_is_refused(tmp_path, monkeypatch):
    path = _save(tmp_path, "a.png", _pattern(40, 30))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError) as exc:
        load_image(path)
    _assert_one_line_error(exc, path, "image too large (40×30")


def test_very_large_image_loads_without_bomb_warning(tmp_path):
    # 144 MP: above Pillow's default warning threshold (~89 MP); gray JPEG keeps the test file small
    big = Image.new("L", (12000, 12000), 77)
    big.putpixel((11999, 11999), 255)
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    del big
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert image_size(path) == (12000, 12000)
        a = load_image(path)
        assert a.shape == (12000, 12000, 3)
        assert abs(int(a[6000, 6000, 0]) - 77) <= 2
        del a
        small, s = load_image_downscaled(path, 1000)
    assert small.shape == (1000, 1000, 3) and s == 12.0
    assert Image.MAX_IMAGE_PIXELS == before  # the raised limit was local


# ---------------------------------------------------------------------------------------------- arrays & PIL


def test_numpy_inputs():
    rgb = _pattern(5, 4)
    out = load_image(rgb)
    assert np.array_equal(out, rgb) and out is not rgb
    gray = rgb[..., 0]
    assert np.array_equal(load_image(gray), np.repeat(gray[..., None], 3, -1))
    assert np.array_equal(load_image(gray[..., None]), load_image(gray))
    # non-contiguous input -> contiguous output
    view = rgb[:, ::2]
    _check_rgb(load_image(view), (4, 3))
    assert np.array_equal(load_image(view), view)


def test_numpy_uint16_and_float_scaling():
    u16 = np.array([[0, 32768, 65535]], np.uint16)
    assert load_image(u16)[0, :, 0].tolist() == [0, 128, 255]
    f = np.array([[0.0, 0.5, 1.0, -0.002, np.nan]], np.float32)  # 0..1 (values above 1: tests/unit/test_float_input.py)
    assert load_image(f)[0, :, 0].tolist() == [0, 128, 255, 0, 0]
    f64_rgb = np.full((2, 2, 3), 0.25)
    assert (load_image(f64_rgb) == 64).all()
    ints = np.array([[0, 100, 255]], np.int64)
    assert load_image(ints)[0, :, 0].tolist() == [0, 100, 255]
    assert load_image(np.array([[True, False]]))[0, :, 0].tolist() == [255, 0]


def test_numpy_rgba_composited_over_black():
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [200, 100, 50, 128]]], np.uint8)
    a = load_image(rgba)
    assert a[0, 0].tolist() == [200, 100, 50] and a[0, 1].tolist() == [0, 0, 0]
    assert np.abs(a[0, 2].astype(int) - [100, 50, 25]).max() <= 1


@pytest.mark.parametrize(
    "bad",
    [np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((2, 2, 2, 3), np.uint8),
     np.zeros(5, np.uint8), np.array([[0, 300]], np.int32), np.array([[-1, 0]], np.int16),
     np.zeros((2, 2), np.complex64)],
)
def test_bad_arrays(bad):
    with pytest.raises(ImageError) as exc:
        load_image(bad)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("cannot read image '<array ")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "CMYK", "I", "I;16", "F", "YCbCr"])
def test_pil_modes(mode):
    img = Image.new(mode, (7, 5))
    a = load_image(img)
    _check_rgb(a, (5, 7))
    if mode in ("CMYK", "YCbCr"):  # all-zero CMYK is white, all-zero YCbCr is dark green
        assert np.array_equal(a, np.asarray(img.convert("RGB")))
        assert (a != 0).any()
    else:
        assert (a == 0).all()


def test_pil_16bit_and_float_modes_scale():
    i16 = Image.fromarray(np.array([[0, 32768, 65535]], np.uint16))
    assert load_image(i16)[0, :, 1].tolist() == [0, 128, 255]
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert f.mode == "F"
    assert load_image(f)[0, :, 1].tolist() == [0, 128, 255]


def test_max_side_on_arrays_and_pil():
    rgb = _pattern(200, 100)
    a = load_image(rgb, max_side=50)
    _check_rgb(a, (25, 50))
    small, s = load_image_downscaled(Image.fromarray(rgb), 50)
    assert s == 4.0 and np.array_equal(small, a)
    same, s1 = load_image_downscaled(rgb, 500)  # never enlarged
    assert s1 == 1.0 and np.array_equal(same, rgb)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_max_side_validation(bad):
    with pytest.raises(ValueError, match="max_side"):
        load_image_downscaled(_pattern(), bad)
    if bad is not None:
        with pytest.raises(ValueError, match="max_side"):
            load_image(_pattern(), max_side=bad)


def test_not_a_regular_file(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    try:
        os.mkfifo(fifo)
    except (AttributeError, OSError):
        pytest.skip("no FIFOs here")
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(fifo)  # must not block waiting for a writer


# ---------------------------------------------------------------------------------------------- downscaling


@pytest.mark.parametrize(("w", "h"), [(3000, 2000), (3001, 1999)])
@pytest.mark.parametrize("max_side", [1000, 300, 97])
def test_downscaled_jpeg_coordinate_mapping(tmp_path, w, h, max_side):
    cx, cy = 2100.3, 700.7  # marker centre, full-resolution pixel-centre coordinates
    path = _save(tmp_path, "big.jpg", _blob(w, h, cx, cy, sigma=20), quality=95)
    small, s = load_image_downscaled(path, max_side)
    assert max(small.shape[:2]) == max_side
    assert s == pytest.approx(w / max_side)
    assert small.shape[0] == h * max_side // w  # the same scale on both axes: short side rounded down
    _check_rgb(small, small.shape[:2])
    sx, sy = _centroid(small)
    assert (sx + 0.5) * s - 0.5 == pytest.approx(cx, abs=0.6)
    assert (sy + 0.5) * s - 0.5 == pytest.approx(cy, abs=0.6)
    assert np.array_equal(load_image(path, max_side=max_side), small)


def test_downscaled_uses_jpeg_draft(tmp_path, monkeypatch):
    path = _save(tmp_path, "big.jpg", _pattern(1600, 1200), quality=90)
    sizes = []
    original = Image.Image.load

    def spy(self):
        sizes.append(self.size)
        return original(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    small, s = load_image_downscaled(path, 200)
    assert small.shape == (150, 200, 3) and s == 8.0
    assert (200, 150) in sizes and (1600, 1200) not in sizes  # decoded at 1/8 size by libjpeg


def test_small_image_is_not_downscaled(tmp_path):
    path = _save(tmp_path, "a.png", _pattern(40, 30))
    a, s = load_image_downscaled(path, 40)
    assert s == 1.0 and np.array_equal(a, load_image(path))


@pytest.mark.parametrize("fmt", ["jpg", "png"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_downscaled_with_exif_orientation(tmp_path, fmt, orientation):
    # marker placed in *displayed* coordinates; the file stores the inverse-transposed pixels
    dw, dh, cx, cy = 1203, 797, 901.2, 202.9
    displayed = Image.fromarray(_blob(dw, dh, cx, cy, sigma=9))
    method = images._TRANSPOSE.get(orientation)
    inverse = {Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
               Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90}.get(method, method)
    stored = displayed.transpose(inverse) if method is not None else displayed
    kw = {"quality": 95} if fmt == "jpg" else {}
    path = _save(tmp_path, f"o.{fmt}", stored, exif=_exif(orientation), **kw)
    assert image_size(path) == (dw, dh)
    full = load_image(path)
    assert full.shape == (dh, dw, 3)
    fx, fy = _centroid(full)
    assert (fx, fy) == (pytest.approx(cx, abs=0.3), pytest.approx(cy, abs=0.3))
    small, s = load_image_downscaled(path, 150)
    assert small.shape == (797 * 150 // 1203, 150, 3)
    sx, sy = _centroid(small)
    assert (sx + 0.5) * s - 0.5 == pytest.approx(cx, abs=0.8)
    assert (sy + 0.5) * s - 0.5 == pytest.approx(cy, abs=0.8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    w=st.integers(40, 140),
    h=st.integers(40, 140),
    fx=st.floats(0.3, 0.7),
    fy=st.floats(0.3, 0.7),
    max_side=st.integers(8, 39),
    orientation=st.integers(1, 8),
)
def test_downscale_mapping_property(tmp_path, w, h, fx, fy, max_side, orientation):
    """For any size, orientation and target, a blob centre maps back via full = (small + 0.5) * s - 0.5."""
    cx, cy = fx * (w - 1), fy * (h - 1)
    sigma = min(w, h) / 12  # the blob stays > 3 sigma inside the image, so edges do not bias its centre
    displayed = Image.fromarray(_blob(w, h, cx, cy, sigma))
    method = images._TRANSPOSE.get(orientation)
    inverse = {Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
               Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90}.get(method, method)
    stored = displayed.transpose(inverse) if method is not None else displayed
    path = _save(tmp_path, "p.png", stored, exif=_exif(orientation))
    small, s = load_image_downscaled(path, max_side)
    assert max(small.shape[:2]) == max_side and s == pytest.approx(max(w, h) / max_side)
    # exact uniform scale: the output never covers more than the image on either axis
    assert small.shape[1] * s <= w + 1e-6 and small.shape[0] * s <= h + 1e-6
    # the blob must lie inside what the output covers (the cropped sliver would cut it) and be resolved
    assume(cx + 3 * sigma <= small.shape[1] * s and cy + 3 * sigma <= small.shape[0] * s)
    assume(min(small.shape[:2]) >= 4)
    sx, sy = _centroid(small)
    tol = 0.15 * s + 0.5
    assert abs((sx + 0.5) * s - 0.5 - cx) < tol and abs((sy + 0.5) * s - 0.5 - cy) < tol


def test_box_to_stored_matches_pixel_transposes():
    """The box mapping agrees with what Pillow's transposes do to actual pixels."""
    stored = np.arange(7 * 5).reshape(5, 7).astype(np.uint8)  # w=7, h=5
    for method in [None, *images._TRANSPOSE.values()]:
        displayed = np.asarray(Image.fromarray(stored).transpose(method)) if method is not None else stored
        dh, dw = displayed.shape
        box_d = (1, 2, 3, 4)  # left, top, right, bottom in displayed pixels
        x0, y0, x1, y1 = images._box_to_stored(method, box_d, (dw, dh))
        inside = displayed[box_d[1] : box_d[3], box_d[0] : box_d[2]]
        stored_region = stored[int(y0) : int(y1), int(x0) : int(x1)]
        assert sorted(inside.ravel()) == sorted(stored_region.ravel())


# ---------------------------------------------------------------------------------------------- file listing


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    for rel in ["b.jpg", "a.PNG", "notes.txt", "sub/c.jpeg", "sub/deeper/d.webp", "sub/e.tif", "z/f.bmp",
                ".hidden/g.jpg", "._h.jpg", "sub/x.json"]:
        _touch(root / rel)
    (root / "empty").mkdir()
    return root


def test_iter_folder_recursive_sorted(tree):
    got = [p.relative_to(tree).as_posix() for p in iter_image_files([tree])]
    assert got == ["a.PNG", "b.jpg", "sub/c.jpeg", "sub/e.tif", "sub/deeper/d.webp", "z/f.bmp"]
    assert all(isinstance(p, Path) for p in iter_image_files([str(tree)]))


def test_iter_empty_folder(tree):
    assert list(iter_image_files([tree / "empty"])) == []
    assert list(iter_image_files([])) == []


def test_iter_file_yielded_as_is(tree):
    assert list(iter_image_files([tree / "notes.txt"])) == [tree / "notes.txt"]
    assert list(iter_image_files([str(tree / "b.jpg")])) == [tree / "b.jpg"]


def test_iter_glob(tree):
    got = sorted(p.relative_to(tree).as_posix() for p in iter_image_files([str(tree / "**" / "*.jp*g")]))
    assert got == ["b.jpg", "sub/c.jpeg"]
    # a glob matching folders walks them; matched non-image files are left out
    got = sorted(p.relative_to(tree).as_posix() for p in iter_image_files([str(tree / "*")]))
    assert got == ["a.PNG", "b.jpg", "sub/c.jpeg", "sub/deeper/d.webp", "sub/e.tif", "z/f.bmp"]
    assert list(iter_image_files([str(tree / "*.gif")])) == []  # a glob matching nothing is not an error


def test_iter_duplicates_yielded_once(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    inputs = [tree / "sub" / "c.jpeg", "data", tree, "data/sub", str(tree / "**"), "data/./b.jpg",
              str(tree / "sub" / "*.jpeg"), tree / "z" / "f.bmp", "data/notes.txt", tree / "notes.txt"]
    got = list(iter_image_files(inputs))
    keys = [os.path.abspath(p) for p in got]
    assert len(keys) == len(set(keys))
    assert sorted(Path(k).relative_to(tree).as_posix() for k in keys) == [
        "a.PNG", "b.jpg", "notes.txt", "sub/c.jpeg", "sub/deeper/d.webp", "sub/e.tif", "z/f.bmp"]
    assert got[0] == tree / "sub" / "c.jpeg"  # explicit file first, the folder walk then skips it
    assert got[1] == Path("data/a.PNG")  # paths keep the form they were given in


def test_iter_subfolder_then_parent(tree):
    got = list(iter_image_files([tree / "sub", tree]))
    rel = [p.relative_to(tree).as_posix() for p in got]
    assert rel == ["sub/c.jpeg", "sub/e.tif", "sub/deeper/d.webp", "a.PNG", "b.jpg", "z/f.bmp"]


def test_iter_missing_path(tree):
    with pytest.raises(ImageError, match="no such file or folder: '.*nope'"):
        list(iter_image_files([tree / "nope"]))
    # the error comes lazily, after earlier inputs were yielded
    it = iter_image_files([tree / "b.jpg", tree / "nope"])
    assert next(it) == tree / "b.jpg"
    with pytest.raises(ImageError):
        next(it)


def test_iter_symlink_loop_terminates(tree):
    try:
        (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    except OSError:
        pytest.skip("no symlinks here")
    got = list(iter_image_files([tree]))
    assert len(got) == len({os.path.abspath(p) for p in got})
    assert len(got) < 50


def test_image_extensions():
    required = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff"}
    assert required <= IMAGE_EXTENSIONS
    assert isinstance(IMAGE_EXTENSIONS, frozenset)
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)


def test_every_listed_extension_loads(tmp_path):
    """Each suffix iter_image_files picks up is one load_image can read."""
    rgb = _pattern(9, 7)
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".bmp": "BMP",
               ".webp": "WEBP", ".ppm": "PPM", ".pnm": "PPM", ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}
    for ext in IMAGE_EXTENSIONS:
        img = Image.fromarray(rgb)
        if ext == ".pgm":
            img = img.convert("L")
        elif ext == ".pbm":
            img = img.convert("1")
        path = tmp_path / f"x{ext}"
        img.save(path, format=formats.get(ext, "PPM"))
        assert load_image(path).shape == (7, 9, 3), ext


def _lifted_by_the_rule(image: np.ndarray) -> np.ndarray:
    """lift_dark's rule written out plainly: the exact percentile of every image, no shortcut."""
    peak = float(np.percentile(image, images.DARK_PERCENTILE))
    if peak >= images.DARK_PEAK:
        return image
    gain = min(images.DARK_TARGET / max(peak, 1.0), images.DARK_MAX_GAIN)
    return np.clip(np.rint(image.astype(np.float32) * gain), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("case", ["bright", "dark", "bright_off_the_sample", "just_over", "just_under", "black"])
def test_lift_dark_follows_its_rule_whatever_its_shortcuts_see(case):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 40, (60, 80, 3), dtype=np.uint8)
    flat = image.reshape(-1)
    allowed = int(flat.size * (100 - images.DARK_PERCENTILE) / 100)  # bright values a dark image may hold
    if case == "bright":
        image = rng.integers(0, 256, image.shape, dtype=np.uint8)
    elif case == "bright_off_the_sample":
        # bright values only where the sampled first look never looks: the whole count decides
        off = np.flatnonzero(np.arange(flat.size) % images.DARK_SAMPLE != 0)
        flat[rng.choice(off, 3 * allowed, replace=False)] = 250
    elif case in ("just_over", "just_under"):
        flat[rng.choice(flat.size, allowed + (40 if case == "just_over" else -40), replace=False)] = 250
    elif case == "black":
        image[:] = 0
    expected = _lifted_by_the_rule(image)
    assert np.array_equal(images.lift_dark(image), expected)
    assert np.array_equal(images.lift_dark(np.stack([image, image])), np.stack([expected, expected]))
    if case == "bright":
        assert images.lift_dark(image) is image  # nothing copied when nothing is dark
