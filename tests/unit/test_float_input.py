"""Float and 16-bit input (issue 12, part 5): float images with 0..255 values (OpenCV, scikit-image pipelines)
are read as 0..255, never clipped to [0, 1]; float TIFFs likewise; 16-bit integers are scaled; values in no
range we can tell are a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facemark.landmarker import Landmarker
from facemark.cli import main
from facemark.images import ImageError, load_image

from locations import ASTRONAUT


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


@pytest.fixture(scope="module")
def landmarker():
    return Landmarker(threads=1)


def test_float_0_255_array_is_read_as_0_255(rgb):
    assert np.array_equal(load_image(rgb.astype(np.float32)), rgb)
    assert np.array_equal(load_image(rgb.astype(np.float64) + 0.3), rgb)  # rounded, not truncated


def test_float_0_1_array_is_read_as_0_1(rgb):
    assert np.array_equal(load_image(rgb / 255.0), rgb)
    assert np.array_equal(load_image((rgb / 255.0).astype(np.float32)), rgb)


def test_float_0_255_array_gives_the_same_faces(rgb, landmarker):
    """Before, every value above 1 was clipped to 1: a white image, no face and no error."""
    expected = landmarker.detect(rgb)
    faces = landmarker.detect(rgb.astype(np.float32))
    assert len(faces) == len(expected) == 1
    assert np.array_equal(faces[0].points, expected[0].points)
    bgr = rgb[..., ::-1].astype(np.float64)  # as OpenCV gives it, converted to float
    assert np.array_equal(landmarker.detect(bgr, bgr=True)[0].points, expected[0].points)


@pytest.mark.parametrize("values", [[0.0, 300.0], [0.0, 70000.0], [-0.5, 0.5], [-128.0, 127.0]])
def test_float_values_out_of_range_are_a_one_line_error(values):
    a = np.array([values], np.float32)
    with pytest.raises(ImageError) as exc:
        load_image(a)
    message = str(exc.value)
    assert "\n" not in message and "expected 0..1 or 0..255" in message and message.startswith("cannot read image")


def test_rounding_noise_below_zero_is_black():
    assert load_image(np.array([[-0.3, 10.0, 255.2]], np.float32))[0, :, 0].tolist() == [0, 10, 255]
    assert load_image(np.array([[-0.001, 0.5, 1.0]], np.float32))[0, :, 0].tolist() == [0, 128, 255]


def test_float_tiff(tmp_path, rgb):
    """A 32-bit float gray TIFF in 0..255 and one in 0..1 read alike; one in 0..65535 is a clear error."""
    gray = rgb.astype(np.float32).mean(axis=2)
    expected = np.rint(gray).astype(np.uint8)
    for name, data in [("f255.tif", gray), ("f1.tif", gray / 255)]:
        Image.fromarray(data.astype(np.float32), mode="F").save(tmp_path / name)
        assert Image.open(tmp_path / name).mode == "F"
        out = load_image(tmp_path / name)
        assert np.abs(out[..., 0].astype(int) - expected).max() <= 1, name
    Image.fromarray((gray * 257).astype(np.float32), mode="F").save(tmp_path / "f16.tif")
    with pytest.raises(ImageError, match="f16.tif.*expected 0..1 or 0..255"):
        load_image(tmp_path / "f16.tif")


def test_float_tiff_faces_and_cli_error(tmp_path, rgb, landmarker, capsys):
    gray = rgb.astype(np.float32).mean(axis=2)
    Image.fromarray(gray, mode="F").save(tmp_path / "face.tif")
    assert len(landmarker.detect(tmp_path / "face.tif")) == 1
    Image.fromarray(gray * 300, mode="F").save(tmp_path / "bad.tif")
    out = tmp_path / "p.jsonl"
    assert main(["predict", str(tmp_path / "bad.tif"), "--json", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    line = next(l for l in err.splitlines() if "bad.tif" in l)
    assert "expected 0..1 or 0..255" in line


def test_16_bit_arrays_and_files_are_scaled(tmp_path, rgb, landmarker):
    sixteen = rgb.astype(np.uint16) * 257  # 0..255 -> 0..65535
    assert np.array_equal(load_image(sixteen), rgb)
    gray16 = sixteen[..., 1]
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    assert np.array_equal(load_image(tmp_path / "g16.png")[..., 0], rgb[..., 1])
    Image.fromarray(gray16).save(tmp_path / "g16.tif")
    assert np.array_equal(load_image(tmp_path / "g16.tif")[..., 0], rgb[..., 1])
    expected = landmarker.detect(rgb)
    faces = landmarker.detect(sixteen)
    assert len(faces) == 1 and np.array_equal(faces[0].points, expected[0].points)


def test_signed_integers_beyond_uint8_are_a_clear_error():
    with pytest.raises(ImageError, match="unsupported values"):
        load_image(np.array([[0, 1000]], np.int16))
