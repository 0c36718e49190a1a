"""Very large images: regions at reduced resolution (`ImageReader`) and `Landmarker.detect` on them.

Every image is generated here. The landmark tests lower `size_policy.LARGE_IMAGE_SIDE` so that images of a few
thousand pixels take the reduced path (fast, little memory); one test runs a real 7000×7000 file in a fresh
process and bounds its peak memory.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from facemark import images

from facemark import landmarker as api

from facemark.pipeline import large_images as huge_images

from facemark.pipeline import size_policy
from facemark.images import ImageError, ImageReader, load_image, load_image_downscaled

REPO = Path(__file__).resolve().parents[3]
ASTRONAUT = REPO / "examples" / "astronaut.png"


def _blob(w: int, h: int, cx: float, cy: float, sigma: float) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    g = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) * 255
    return Image.fromarray(np.repeat(g[..., None], 3, -1).round().astype(np.uint8))


def _centroid(a: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted centroid (x, y) of channel 0, pixel-centre coordinates."""
    g = a[..., 0].astype(np.float64)
    g = np.where(g > 3, g, 0.0)
    y, x = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    return float((g * x).sum() / g.sum()), float((g * y).sum() / g.sum())


def _save_displayed(path: Path, displayed: Image.Image, orientation: int, **kw) -> Path:
    """Save so that a viewer applying EXIF `orientation` shows `displayed`."""
    method = images._TRANSPOSE.get(orientation)
    inverse = {Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
               Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90}.get(method, method)
    stored = displayed.transpose(inverse) if method is not None else displayed
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    stored.save(path, exif=exif, **kw)
    return path


def _padded(a: np.ndarray, box) -> np.ndarray:
    """a[top:bottom, left:right], black outside."""
    left, top, right, bottom = box
    out = np.zeros((bottom - top, right - left, 3), np.uint8)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, a.shape[1]), min(bottom, a.shape[0])
    out[y0 - top:y1 - top, x0 - left:x1 - left] = a[y0:y1, x0:x1]
    return out


@pytest.fixture
def load_sizes(monkeypatch):
    """Sizes (stored orientation) at which Pillow decodes image files from now on."""
    sizes = []
    original = Image.Image.load

    def spy(self):
        if getattr(self, "tile", None):  # data still to decode (load() on a decoded image does nothing)
            sizes.append(self.size)
        return original(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    return sizes


# ---------------------------------------------------------------------------------------------- ImageReader


@pytest.mark.parametrize("fmt", ["jpg", "png"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_full_size_region_is_the_decoded_image(tmp_path, fmt, orientation):
    rng = np.random.default_rng(orientation)
    displayed = Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8))
    path = _save_displayed(tmp_path / f"a.{fmt}", displayed, orientation)
    full = load_image(path)
    reader = ImageReader(path)
    assert reader.size == (70, 45)
    for box in [(0, 0, 70, 45), (10, 5, 31, 40), (-7, -3, 12, 9), (60, 40, 80, 52), (-5, -5, 75, 50),
                (100, 100, 104, 103)]:
        assert np.array_equal(reader.region(box), _padded(full, box)), box


@pytest.mark.parametrize("orientation", range(1, 9))
def test_reduced_regions_map_back_exactly(tmp_path, orientation):
    """A blob's centre, found in a region of the image decoded at 1/r size, maps back to where it is at full
    size, for every EXIF orientation and sides that 8 does not divide (the reduced grid's offsets)."""
    dw, dh, cx, cy, sigma = 1203, 797, 901.3, 202.7, 24
    path = _save_displayed(tmp_path / "o.jpg", _blob(dw, dh, cx, cy, sigma), orientation, quality=95)
    reader = ImageReader(path)
    assert reader.reductions == (8, 4, 2, 1) and reader.size == (dw, dh)
    for r in reader.reductions:
        rx, ry = reader.to_reduced((cx, cy), r)
        reach = math.ceil(4 * sigma / r) + 2
        x0, y0 = math.floor(rx) - reach, math.floor(ry) - reach
        part = reader.region((x0, y0, math.ceil(rx) + reach + 1, math.ceil(ry) + reach + 1), r)
        px, py = _centroid(part)
        fx, fy = reader.to_full((px + x0, py + y0), r)
        assert (fx, fy) == (pytest.approx(cx, abs=0.3), pytest.approx(cy, abs=0.3)), (r, fx, fy)


def test_coordinate_maps_are_inverses(tmp_path):
    path = _save_displayed(tmp_path / "o.jpg", _blob(203, 117, 50, 50, 5), 6)
    reader = ImageReader(path)
    points = np.random.default_rng(0).uniform(-20, 250, (30, 2))
    for r in reader.reductions:
        assert np.allclose(reader.to_full(reader.to_reduced(points, r), r), points, atol=1e-9)
    assert np.array_equal(reader.to_reduced(points, 1), points)


def test_jpeg_decoded_at_the_reduced_size_and_reused(tmp_path, load_sizes):
    path = _save_displayed(tmp_path / "a.jpg", _blob(1600, 1200, 700, 500, 30), 1, quality=90)
    reader = ImageReader(path)
    reader.region((0, 0, 10, 10), 4)
    reader.region((5, 5, 20, 20), 4)
    assert load_sizes == [(400, 300)]  # decoded once, at 1/4 size
    small, s = reader.downscaled(200)  # libjpeg's 1/8 decode, kept for the regions at reduction 8
    reader.region((0, 0, 10, 10), 8)
    assert load_sizes == [(400, 300), (200, 150)] and small.shape == (150, 200, 3) and s == 8.0


@pytest.mark.parametrize(("fmt", "orientation"), [("jpg", 1), ("jpg", 6), ("png", 3), ("png", 8)])
def test_downscaled_is_load_image_downscaled(tmp_path, fmt, orientation):
    path = _save_displayed(tmp_path / f"a.{fmt}", _blob(1001, 603, 400.5, 300.2, 20), orientation)
    for max_side in (100, 333, 2000):
        small, s = ImageReader(path).downscaled(max_side)
        expected, expected_s = load_image_downscaled(path, max_side)
        assert s == expected_s and np.array_equal(small, expected)
    assert np.array_equal(ImageReader(path).array(), load_image(path))


def test_reductions_by_kind(tmp_path):
    img = _blob(40, 30, 20, 15, 4)
    assert ImageReader(_save_displayed(tmp_path / "a.jpg", img, 1)).reductions == (8, 4, 2, 1)
    assert ImageReader(_save_displayed(tmp_path / "a.png", img, 1)).reductions == (1,)
    assert ImageReader(img).reductions == (1,)
    assert ImageReader(_save_displayed(tmp_path / "thin.jpg", _blob(40, 3, 20, 1, 4), 1)).reductions == (2, 1)
    with pytest.raises(ValueError, match="reduction"):
        ImageReader(tmp_path / "a.png").region((0, 0, 4, 4), 2)


def test_pil_image_regions_upright(tmp_path):
    path = _save_displayed(tmp_path / "a.png", _blob(90, 60, 30, 20, 6), 5)
    with Image.open(path) as pil:
        reader = ImageReader(pil)
        assert reader.size == (90, 60)
        assert np.array_equal(reader.region((-2, 3, 50, 70)), _padded(load_image(path), (-2, 3, 50, 70)))


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        ImageReader(tmp_path / "missing.jpg")
    good = _save_displayed(tmp_path / "a.jpg", _blob(400, 300, 200, 150, 20), 1, quality=90)
    cut = tmp_path / "cut.jpg"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    reader = ImageReader(cut)  # the header is fine
    with pytest.raises(ImageError, match="truncated or corrupt"):
        reader.region((0, 0, 5, 5), 2)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        ImageReader(cut).downscaled(50)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_large_images_become_arrays_band_by_band(tmp_path, monkeypatch, orientation):
    """load_image converts large images to arrays a band of rows at a time: the same pixels as at once."""
    rng = np.random.default_rng(orientation)
    displayed = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    path = _save_displayed(tmp_path / "a.png", displayed, orientation)
    whole = load_image(path)
    monkeypatch.setattr(images, "_BAND_PIXELS", 150)  # bands of 2 rows, the last one shorter
    banded = load_image(path)
    assert banded.flags.c_contiguous and banded.flags.writeable
    assert np.array_equal(banded, whole) and np.array_equal(whole, np.asarray(displayed))
    assert np.array_equal(ImageReader(path).array(), whole)


# ---------------------------------------------------------------------------------------------- Landmarker


@pytest.fixture(scope="module")
def landmarker():
    return api.Landmarker(threads=1)


def _portrait(side: int) -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)


# Largest point distance allowed from the full-resolution path, as a fraction of the face's size. The detector
# sees a slightly different shrunk copy (libjpeg's reduced decode), so its boxes move by about a pixel; ±1 px of
# box jitter alone moves the full-resolution path's points by up to ~0.7%. Crops cut from the reduced decode
# add only ~0.1% (measured with equal boxes); the exact coordinate maps are tested on blobs above.
CLOSE = 0.015


def _worst_error(faces, reference) -> float:
    """Largest point distance between matching faces, in units of the reference face's size."""
    assert len(faces) == len(reference) > 0
    worst = 0.0
    for face, ref in zip(sorted(faces, key=lambda f: f.box[0]), sorted(reference, key=lambda f: f.box[0])):
        size = (ref.points.max(axis=0) - ref.points.min(axis=0)).max()
        worst = max(worst, np.linalg.norm(face.points - ref.points, axis=1).max() / size)
    return worst


def test_small_file_takes_the_full_resolution_path(landmarker):
    by_path = landmarker.detect(ASTRONAUT)
    by_array = landmarker.detect(load_image(ASTRONAUT))
    assert len(by_path) == 1 and np.array_equal(by_path[0].points, by_array[0].points)
    assert by_path[0].box == by_array[0].box


def test_array_is_not_copied_for_crops(landmarker, monkeypatch):
    """An RGB array is never converted whole by Pillow (which copies every array it is given): the detector sees
    it shrunk by OpenCV (size_policy.scaled_for_detector) and crops are cut from views of it."""
    rgb = np.ascontiguousarray(np.asarray(_portrait(1000)))
    expected = landmarker.detect(rgb)
    whole = []
    original = Image.fromarray

    def spy(obj, *args, **kwargs):
        if np.asarray(obj).size >= rgb.size:  # the whole image, or more
            whole.append(1)
        return original(obj, *args, **kwargs)

    monkeypatch.setattr(Image, "fromarray", spy)
    faces = landmarker.detect(rgb)
    assert len(whole) == 0
    assert len(faces) == 1 and np.array_equal(faces[0].points, expected[0].points)


@pytest.mark.parametrize("orientation", [1, 6])
def test_large_jpeg_close_to_full_resolution_without_full_decode(tmp_path, landmarker, monkeypatch, load_sizes,
                                                                 orientation):
    monkeypatch.setattr(size_policy, "LARGE_IMAGE_SIDE", 1000)
    canvas = Image.new("RGB", (3203, 2605), (120, 120, 120))
    canvas.paste(_portrait(2600), (500, 3))  # a ~470-px face
    path = _save_displayed(tmp_path / "big.jpg", canvas, orientation, quality=92)
    reference = landmarker.detect(load_image(path))
    load_sizes.clear()
    faces = landmarker.detect(path)
    assert _worst_error(faces, reference) < CLOSE
    w, h = canvas.size if orientation == 1 else canvas.size[::-1]  # stored
    # decoded at 1/4 size for the detector, at 1/2 for the face's crops, never whole
    assert load_sizes == [(math.ceil(w / 4), math.ceil(h / 4)), (math.ceil(w / 2), math.ceil(h / 2))]


def test_large_png_and_pil_decoded_once(tmp_path, landmarker, monkeypatch, load_sizes):
    """No reduced decoding for PNG: one full decode, the detector's copy and the crops cut from it."""
    monkeypatch.setattr(size_policy, "LARGE_IMAGE_SIDE", 1000)
    # under TILED_LOOK_SIDE: the array's look is the whole image's too, as on the reduced path
    canvas = Image.new("RGB", (1020, 760), (120, 120, 120))
    canvas.paste(_portrait(700), (160, 30))
    path = tmp_path / "big.png"
    canvas.save(path, compress_level=1)
    reference = landmarker.detect(np.asarray(canvas))
    monkeypatch.setattr(ImageReader, "array", lambda self: pytest.fail("the whole image became an array"))
    load_sizes.clear()
    faces = landmarker.detect(path)
    assert load_sizes == [(1020, 760)]
    # the same pixels; the detector's copies differ only in how they were shrunk (the reader's Lanczos for the
    # file, OpenCV's area average for the array): points within a hundredth of a pixel
    assert _worst_error(faces, reference) < 0.01
    assert _worst_error(landmarker.detect(canvas), reference) < 0.01


def test_faces_of_different_sizes_use_different_reductions(tmp_path, monkeypatch):
    # MTCNN: on the reduced path the detector sees a 640²-pixel copy, where BlazeFace's single pass reaches
    # faces of about a tenth of the side (~390 px here) and would miss the smaller face this test needs
    landmarker = api.Landmarker(detector="mtcnn", threads=1)
    monkeypatch.setattr(size_policy, "LARGE_IMAGE_SIDE", 2000)
    canvas = Image.new("RGB", (3900, 2400), (120, 120, 120))
    canvas.paste(_portrait(1450), (0, 400))  # a ~260-px face: cut at full size
    canvas.paste(_portrait(2400), (1480, 0))  # a ~430-px face: cut from the 1/2-size decode
    path = tmp_path / "two.jpg"
    canvas.save(path, quality=92)
    used = []
    original = huge_images.reduced_crop

    def spy(reader, reduction, t):
        used.append(reduction)
        return original(reader, reduction, t)

    monkeypatch.setattr(huge_images, "reduced_crop", spy)
    faces = landmarker.detect(path)
    assert sorted(set(used)) == [1, 2]
    assert _worst_error(faces, landmarker.detect(load_image(path))) < CLOSE


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from PIL import Image
    from facemark.landmarker import Landmarker

    def peak_bytes():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    landmarker = Landmarker(threads=1)
    warm = Image.open(sys.argv[2]).convert("RGB").resize((640, 640))
    landmarker.detect(np.asarray(warm))  # the detector's buffers at its working size, before we measure
    before = peak_bytes()
    faces = landmarker.detect(sys.argv[1])
    print(json.dumps({"growth": peak_bytes() - before, "faces": len(faces)}))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak resident set from /proc")
def test_memory_stays_far_below_one_decoded_copy(tmp_path):
    """A 7000×7000 JPEG (its RGB array: 147 MB) in a fresh process: the peak resident set grows by far less
    than one full-size copy (the full-resolution path grows by several)."""
    side = 7000
    # grey keeps this process's own image small (36 MB); the face is found on grey as on colour
    Image.open(ASTRONAUT).convert("L").resize((side, side), Image.Resampling.BICUBIC).save(
        tmp_path / "huge.jpg", quality=85)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "huge.jpg"), str(ASTRONAUT)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["faces"] == 1
    full_copy = side * side * 3
    assert result["growth"] < full_copy / 2, result["growth"] / 1e6
