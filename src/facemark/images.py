"""Robust image input: any image file, PIL image or numpy array -> H×W×3 uint8 RGB, as a viewer shows it.

Conventions (the same everywhere in facemark):

- EXIF orientation is applied, so arrays are in displayed orientation.
- Alpha (RGBA, LA, palette or tRNS transparency) is composited over black: transparent areas become black
  instead of showing whatever colour an encoder left under them, and the result does not depend on that.
- 16-bit data is scaled (0..65535 -> 0..255, rounded), never clipped.
- Float data (arrays, float TIFF / mode F) is read as 0..1 when no value exceeds 1, else as 0..255; values
  above 255 (or far below 0) are an ImageError, never clipped away; NaN becomes 0.
- Coordinates: x right, y down, origin at the centre of the top-left pixel ("pixel-centre convention").

Every unreadable input raises `ImageError` with a one-line message naming the input and the reason.

Very large images: `load_image_downscaled` shrinks while decoding (JPEG at 1/2, 1/4 or 1/8 size by libjpeg),
and `ImageReader` cuts regions out of an image decoded at such a reduced size, never making a full-size array.

A JPEG file cut short (its last bytes missing) is refused like any truncated file, unless an `ImageReader` is
made with `allow_truncated=True`: it is then decoded as far as its data goes (see `ImageReader`).
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import stat
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile
from PIL.TiffImagePlugin import TiffImageFile

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageError",
    "ImageReader",
    "from_bgr",
    "lift_dark",
    "image_frames",
    "image_size",
    "iter_image_files",
    "load_image",
    "load_image_downscaled",
    "to_rgb",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".pbm", ".pnm",
     ".tif", ".tiff", ".gif"}
)

# Largest image (stored pixels) we decode; Pillow's own default (~89 MP, error at ~179 MP) rejects ordinary
# 12000×12000 scans. 300 MP of RGB is 900 MB, which still fits comfortably.
MAX_PIXELS = 300_000_000

# Only formats we mean to read: anything else (EPS, PSD, ICO, ...) is refused rather than half-supported, and
# no plugin that runs another program (EPS calls Ghostscript) ever sees untrusted files.
_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "PPM", "TIFF", "GIF")

# EXIF orientation -> the transpose that turns stored pixels into displayed ones (as ImageOps.exif_transpose)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE,
               Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270}
# Which displayed axes (x, y) run against the stored ones under each transpose (stored -> displayed)
_REVERSES = {
    None: (False, False),
    Image.Transpose.FLIP_LEFT_RIGHT: (True, False),
    Image.Transpose.FLIP_TOP_BOTTOM: (False, True),
    Image.Transpose.ROTATE_180: (True, True),
    Image.Transpose.ROTATE_90: (False, True),  # counter-clockwise: displayed y runs along stored x, backwards
    Image.Transpose.ROTATE_270: (True, False),
    Image.Transpose.TRANSPOSE: (False, False),
    Image.Transpose.TRANSVERSE: (True, True),
}


Source = str | os.PathLike | Image.Image | np.ndarray

_BAND_PIXELS = 1 << 22  # images above this many pixels become arrays a band of rows at a time (12 MB of RGB)


class ImageError(ValueError):
    """An input that cannot be read as an image; the message is one line naming the input and why."""


class _CutShort(ImageError):
    """A file whose pixel data ends before the image does (Pillow: "image file is truncated")."""


def _error(name: str, reason: str, kind: type[ImageError] = ImageError) -> ImageError:
    return kind(f"cannot read image {name!r}: {' '.join(str(reason).split())}")


# ---------------------------------------------------------------------------------------------- public API


def load_image(source: Source, *, max_side: int | None = None) -> np.ndarray:
    """`source` as a C-contiguous H×W×3 uint8 RGB array in displayed orientation.

    `source`: a path, a PIL image (its EXIF orientation is applied too), or an array: H×W gray, H×W×3 RGB,
    H×W×4 RGBA; uint8, uint16 (scaled), float in 0..1 or 0..255 (see the module docstring), bool, or other
    integers in 0..255. Raises ImageError (one line) for anything else.
    `max_side`: if given, shrink (never enlarge) so the longest side is at most this; see
    `load_image_downscaled` for the scale factor.
    """
    return _load(source, None if max_side is None else _check_max_side(max_side))[0]


# An image (or crop) whose brightest values (this percentile) stay under DARK_PEAK was photographed with too
# little light: its values are scaled up so that percentile reaches DARK_TARGET (by at most DARK_MAX_GAIN), as a
# camera's gain would, so the detector and the landmark network see the contrast they were trained on
# (benchmarks/results/hard_trust.md). Other images are left exactly as they are.
DARK_PERCENTILE = 99
DARK_PEAK = 64
DARK_TARGET = 200
DARK_MAX_GAIN = 16.0
DARK_SAMPLE = 16  # lift_dark's first look counts every this-many-th value


def lift_dark(images: np.ndarray) -> np.ndarray:
    """An H×W×3 uint8 image, or a stack (N, H, W, 3) of them, with each dark one (see DARK_PEAK) brightened; the
    same array when none is dark."""
    stack = images if images.ndim == 4 else images[None]
    flat = stack.reshape(len(stack), -1)
    # cheap first: an image with more values at DARK_PEAK or above than the percentile leaves above it is surely
    # not dark (the exact percentile is taken only for the others). Counted on every DARK_SAMPLE-th value first:
    # that count is at most the whole one, so an image it already shows bright is bright
    above = flat.shape[1] * (100 - DARK_PERCENTILE) / 100 + 1
    if (np.count_nonzero(flat[:, ::DARK_SAMPLE] >= DARK_PEAK, axis=1) > above).all():
        return images
    bright = np.count_nonzero(flat >= DARK_PEAK, axis=1)
    maybe = np.flatnonzero(bright <= above)
    if len(maybe) == 0:
        return images
    peaks = np.full(len(stack), np.inf)
    peaks[maybe] = np.percentile(flat[maybe], DARK_PERCENTILE, axis=1)
    dark = peaks < DARK_PEAK
    if not dark.any():
        return images
    out = stack.copy()
    for i in np.flatnonzero(dark):
        gain = min(DARK_TARGET / max(float(peaks[i]), 1.0), DARK_MAX_GAIN)
        out[i] = np.clip(np.rint(stack[i].astype(np.float32) * gain), 0, 255).astype(np.uint8)
    return out if images.ndim == 4 else out[0]


def from_bgr(image) -> np.ndarray:
    """An image in OpenCV's channel order as an array `load_image` reads: BGR and BGRA become RGB and RGBA; a
    grey H×W (or H×W×1) array has no channel order and is returned as it is (never mirrored)."""
    if isinstance(image, str | bytes | os.PathLike):
        raise ValueError("bgr=True is for arrays in OpenCV's channel order (BGR, BGRA); a file is read in its own "
                         "colours")
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return np.ascontiguousarray(a[..., [2, 1, 0, 3][:a.shape[2]]])
    return a


def _check_source(source) -> None:
    if not isinstance(source, str | bytes | os.PathLike | Image.Image | np.ndarray):
        kind = type(source).__name__
        hint = " (np.asarray(...) makes an array of it)" if isinstance(source, list | tuple) else ""
        raise _error(f"<{kind}>", f"expected a path, a PIL image or a numpy array, got a {kind}{hint}")


def load_image_downscaled(source: Source, max_side: int) -> tuple[np.ndarray, float]:
    """(rgb, s): `source` shrunk so its longest side is <= `max_side`, and the scale factor s >= 1.

    Pixel-centre convention on both sides: ``full = (small + 0.5) * s - 0.5`` for x and y alike
    (full-resolution coordinates in displayed orientation). The scale is exactly s on both axes; to keep it
    so, the right/bottom edge of the short side may lose less than one output pixel's worth (< s
    full-resolution pixels).
    JPEG files are decoded at 1/2, 1/4 or 1/8 size by libjpeg (`draft`) first, so memory stays bounded;
    the rest of the reduction is an antialiased (Lanczos) resize. s == 1.0 when no shrinking was needed.
    """
    return _load(source, _check_max_side(max_side))


def _check_max_side(max_side) -> int:
    if isinstance(max_side, bool) or not isinstance(max_side, int | np.integer) or max_side < 1:
        raise ValueError(f"max_side must be a positive integer, got {max_side!r}")
    return int(max_side)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) in displayed orientation, read from the header (no full decode, so a truncated file
    may still pass here)."""
    name = os.fspath(path)
    with _open(name) as img:
        w, h = img.size
        return (h, w) if _transpose_of(img) in _SWAPS_AXES else (w, h)


def image_frames(path: str | os.PathLike) -> tuple[str, int]:
    """(format, pictures) of an image file, from its headers: more than one picture for an animated GIF, WebP
    or PNG (APNG) or a multi-page TIFF, of which `load_image` and the Landmarker read the first only; 0 for
    several that cannot be counted (a GIF damaged after its first frame)."""
    with _open(os.fspath(path)) as img:
        return _pictures(img)


def _pictures(img: Image.Image) -> tuple[str | None, int]:
    """(format, pictures) of an open image (see image_frames)."""
    try:
        return img.format, int(getattr(img, "n_frames", 1))  # a GIF: reads every frame's header
    except Exception:
        return img.format, 0


class ImageReader:
    """One image file or PIL image, decoded no more than the parts asked for need (for very large images).

    - `size`: (width, height) in displayed orientation; `format` (Pillow's name) and `pictures` (frames of an
      animated image or pages of a TIFF; 0 when they cannot be counted), all from the header read once;
    - `downscaled(max_side)`: what `load_image_downscaled` gives;
    - `region(box, reduction)`: the pixels of a box of the image shrunk by `reduction`, one of `reductions`;
    - `array()`: the whole image, as `load_image` gives it (decoded once, then kept).

    A JPEG file offers reductions 8, 4, 2 and 1: libjpeg decodes it directly at 1/8, 1/4 or 1/2 size (DCT
    scaling, far cheaper than a full decode). Other files and PIL images offer only 1 and are decoded whole,
    once. The reader keeps its latest decode (one at a time, in stored orientation, as Pillow holds it) for the
    next request, and turns only the regions cut from it upright: no full-size array, no second full-size copy.

    Coordinates at reduction r, displayed orientation, pixel-centre convention: `to_reduced` and `to_full`,
    exact inverses. Along each axis reduced pixel i covers full-resolution pixels [i·r − o, (i + 1)·r − o):
    o is 0 unless the EXIF orientation reverses that axis and r does not divide its length (libjpeg's grid
    starts at the *stored* top-left corner), so ``full = (reduced + 0.5) * r - 0.5 - o``.

    Errors are ImageErrors, as from `load_image`: the constructor reads the header (no such file, not an image,
    too large; a PNG's checksums too), decoding errors (truncated, corrupt) come when pixels are first asked for.

    `allow_truncated=True`: a JPEG file cut short (its data ends before the image does) is decoded as far as its
    data goes instead of raising, and `truncated` becomes True when its pixels are first asked for. What is
    missing is grey (a progressive JPEG: the whole picture, at the detail its data reaches). This is what
    Pillow's module-wide `ImageFile.LOAD_TRUNCATED_IMAGES` does, for this file alone: the reader appends the
    end-of-image marker the file lacks, so other readers, threads and libraries are not affected. Any other
    file (a cut PNG, a JPEG that ends before its first pixel data) is still an error.
    """

    def __init__(self, source: str | os.PathLike | Image.Image, *, allow_truncated: bool = False):
        _check_source(source)
        self.allow_truncated = bool(allow_truncated)
        self.truncated = False  # a JPEG file cut short, decoded as far as it goes (allow_truncated)
        if isinstance(source, Image.Image):
            self.name = getattr(source, "filename", "") or "<PIL image>"
            self._path, self._image = None, source
            self._method = _transpose_of(source)
            stored = source.size
            jpeg = False
            self.format, self.pictures = _pictures(source)
        else:
            self.name = os.fspath(source)
            self._path, self._image = self.name, None
            with _open(self.name) as img:
                if img.format == "PNG":
                    reason = _png_corruption(self.name)
                    if reason:
                        raise _error(self.name, f"truncated or corrupt image data ({reason})")
                _check_pixels(img, self.name)
                self._method = _transpose_of(img)
                stored = img.size
                jpeg = isinstance(img, JpegImageFile) and len(img.tile) == 1
                self.format, self.pictures = _pictures(img)
        self._stored_size = stored
        self.size = (stored[1], stored[0]) if self._method in _SWAPS_AXES else stored  # (width, height) displayed
        # a draft reduction r needs r <= each side (libjpeg then gives exactly ceil(side / r) pixels)
        self.reductions = tuple(r for r in (8, 4, 2) if jpeg and r <= min(stored)) + (1,)
        self._decoded: tuple[int, Image.Image] | None = None  # (reduction, RGB image in stored orientation)
        self._array: np.ndarray | None = None

    def array(self) -> np.ndarray:
        """The whole image as `load_image` gives it: a full-size array, decoded on the first call and kept (the
        reader lets go of its partial decodes)."""
        if self._array is None:
            rgb = self._decode(1)
            self._decoded = None
            self._array = _finish(rgb, self._method, None, None)
        return self._array

    def downscaled(self, max_side: int) -> tuple[np.ndarray, float]:
        """(rgb, s) exactly as `load_image_downscaled(source, max_side)` gives them; the decode it was made
        from (a JPEG file: at the draft size) is kept for `region`."""
        scale, out, box = _shrink_plan(self._method, self._stored_size, _check_max_side(max_side))
        if out is None:
            return _finish(self._decode(1), self._method, None, None), 1.0
        factor = 1
        if self.reductions[0] > 1:  # a JPEG file: decoded at the smallest draft size still >= out
            self._decoded = None
            self._decoded = self._file_rgb(out)
            factor = self._decoded[0]
        return _finish(self._decode(factor), self._method, out, tuple(v / factor for v in box)), scale

    def region(self, box: tuple[int, int, int, int], reduction: int = 1) -> np.ndarray:
        """H×W×3 uint8 pixels of the integer box (left, top, right, bottom), in `to_reduced` coordinates of the
        image at 1/`reduction` size, upright; black where the box leaves the image."""
        if reduction not in self.reductions:
            raise ValueError(f"reduction must be one of {self.reductions}, got {reduction!r}")
        rgb = self._decode(reduction)
        w, h = rgb.size
        displayed = (h, w) if self._method in _SWAPS_AXES else (w, h)
        left, top, right, bottom = (int(v) for v in box)
        stored_box = _box_to_stored(self._method, (left, top, right, bottom), displayed)
        part = rgb.crop(tuple(int(v) for v in stored_box))  # Pillow pads outside the image with black
        if self._method is not None:
            part = part.transpose(self._method)
        return np.asarray(part)

    def to_reduced(self, points, reduction: int) -> np.ndarray:
        """Full-resolution pixel coordinates (…, 2) -> coordinates at 1/`reduction` size (see the class)."""
        return (np.asarray(points, dtype=np.float64) + 0.5 + self._offset(reduction)) / reduction - 0.5

    def to_full(self, points, reduction: int) -> np.ndarray:
        """Coordinates at 1/`reduction` size (…, 2) -> full-resolution pixel coordinates (see the class)."""
        return (np.asarray(points, dtype=np.float64) + 0.5) * reduction - 0.5 - self._offset(reduction)

    def _offset(self, reduction: int) -> np.ndarray:
        """(o_x, o_y): how far the reduced grid starts before the displayed image's left/top edge, in pixels."""
        reversed_x, reversed_y = _REVERSES[self._method]
        w, h = self.size
        return np.array([-w % reduction if reversed_x else 0, -h % reduction if reversed_y else 0], np.float64)

    def _decode(self, reduction: int) -> Image.Image:
        """The image decoded at 1/`reduction` size, RGB, stored orientation; the last one is reused."""
        if self._decoded is not None and self._decoded[0] == reduction:
            return self._decoded[1]
        self._decoded = None  # let go of the previous decode before making the next
        if self._image is not None:
            rgb = _decoded_rgb(self._image, self.name)
        else:
            w, h = self._stored_size
            factor, rgb = self._file_rgb((w // reduction, h // reduction) if reduction > 1 else None)
            if factor != reduction:
                raise RuntimeError(f"libjpeg did not decode {self.name!r} at 1/{reduction} size")
        self._decoded = (reduction, rgb)
        return rgb

    def _file_rgb(self, draft: tuple[int, int] | None) -> tuple[int, Image.Image]:
        """(factor, RGB image in stored orientation): the file decoded, a JPEG at the smallest draft size still at
        least `draft` (`_draft`); a JPEG cut short, when allowed, as far as its data goes."""
        if not self.truncated:
            try:
                with _open(self._path) as img:
                    factor = 1 if draft is None else _draft(img, draft)
                    return factor, _decoded_rgb(img, self.name)
            except _CutShort as e:
                if self.format != "JPEG":
                    raise
                if not self.allow_truncated:  # say how to read it anyway
                    raise ImageError(f"{e}; a JPEG cut short is read as far as its data goes with --allow-truncated "
                                     "(allow_truncated=True)") from None
        with _open(self._path, cut_short=True) as img:
            factor = 1 if draft is None else _draft(img, draft)
            rgb = _decoded_rgb(img, self.name)
        self.truncated = True
        return factor, rgb


def iter_image_files(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Image files named by `inputs`, each yielded at most once (by absolute path).

    - an existing file is yielded as given, whatever its suffix;
    - a folder is walked recursively, yielding files with a suffix in IMAGE_EXTENSIONS, per folder sorted by
      name, files before subfolders; names starting with "." (".git", macOS "._x.jpg" forks) are skipped;
    - anything else containing * ? or [ is a glob (recursive "**" allowed), streamed in glob order: matched
      folders are walked as above, matched files are yielded if they have an image suffix;
    - anything else raises ImageError("no such file or folder: ...");
    - a folder that cannot be listed (permissions) and an entry that cannot be examined (a symlink cycle) are
      yielded themselves: reading them raises the ImageError that says why, so a batch records each as one
      failed input and goes on.

    Folders are read one at a time with os.scandir and only their image names are held, so a million-file
    folder is listed once. Files found by walking are not remembered; files given directly or by a glob are.
    """
    walked: list[str] = []  # absolute folders already walked, to skip what they already yielded
    given: set[str] = set()  # absolute paths of files yielded directly or from globs
    for item in inputs:
        text = os.fspath(item)
        if os.path.exists(text):
            targets: Iterable[str] = [text]
            from_glob = False
        elif re.search(r"[*?[]", text):
            targets = glob.iglob(text, recursive=True)
            from_glob = True
        else:
            raise ImageError(f"no such file or folder: {text!r}")
        for target in targets:
            key = _key(target)
            if os.path.isdir(target):
                if any(_walk_covers(root, key, is_dir=True) for root in walked):
                    continue
                for path, file_key in _walk(target, key, set(walked)):
                    if file_key not in given:
                        yield Path(path)
                walked.append(key)
            elif from_glob and not _has_image_suffix(target):
                continue
            elif key not in given and not any(_walk_covers(root, key, is_dir=False) for root in walked):
                given.add(key)
                yield Path(target)


# ---------------------------------------------------------------------------------------------- decoding


def _load(source, max_side: int | None) -> tuple[np.ndarray, float]:
    _check_source(source)
    if isinstance(source, np.ndarray):
        return _decode(_array_image(source), _array_name(source), max_side, from_file=False)
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or "<PIL image>"
        return _decode(source, name, max_side, from_file=False)
    name = os.fspath(source)
    with _open(name) as img:
        if img.format == "PNG":
            # Pillow does not check IDAT checksums: a flipped bit can decode silently into wrong pixels
            reason = _png_corruption(name)
            if reason:
                raise _error(name, f"truncated or corrupt image data ({reason})")
        return _decode(img, name, max_side, from_file=True)


def _decode(img: Image.Image, name: str, max_side: int | None, from_file: bool) -> tuple[np.ndarray, float]:
    """Fully decode `img` (optionally shrunk), convert to RGB and apply its EXIF orientation."""
    method = _transpose_of(img)
    if from_file:
        _check_pixels(img, name)
    scale, out, box = _shrink_plan(method, img.size, max_side)
    if out is not None and from_file:
        factor = _draft(img, out)
        box = tuple(v / factor for v in box)
    return _finish(_decoded_rgb(img, name), method, out, box), scale


def _check_pixels(img: Image.Image, name: str) -> None:
    w, h = img.size
    if w * h > MAX_PIXELS:
        mp, limit = w * h / 1e6, MAX_PIXELS / 1e6
        raise _error(name, f"image too large ({w}×{h} = {mp:.0f} megapixels, limit {limit:.0f})")


def _draft(img: Image.Image, size: tuple[int, int]) -> int:
    """Have libjpeg decode a JPEG file at 1/2, 1/4 or 1/8 size (DCT scaling), the smallest that is still at
    least `size`; the factor it will shrink by (1 when `img` is no JPEG file or cannot be drafted). Stored pixel
    (i, j) of the result covers pixels [i·f, (i+1)·f) × [j·f, (j+1)·f) of the full image."""
    if not isinstance(img, JpegImageFile):
        return 1
    width = img.size[0]
    drafted = img.draft("RGB", size)
    # its box is (0, 0, width / f, height / f) with f a power of two, so the division is exact
    return 1 if drafted is None else round(width / drafted[1][2])


def _decoded_rgb(img: Image.Image, name: str) -> Image.Image:
    """`img` decoded (a file: at its draft size, if one was set) and converted to mode RGB, stored orientation."""
    try:
        img.load()  # force the full decode here so truncation/corruption surfaces as ImageError
    except MemoryError:
        raise
    except Image.DecompressionBombError as e:  # e.g. a GIF frame larger than its header said
        raise _error(name, f"image too large ({e})") from e
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, ... on bad data
        # the data ran out before the image was complete: a JPEG cut short may still be read (ImageReader)
        cut = isinstance(e, OSError) and str(e).startswith("image file is truncated")
        raise _error(name, f"truncated or corrupt image data ({e})", _CutShort if cut else ImageError) from e
    try:
        return to_rgb(img)
    except _FloatRangeError as e:
        raise _error(name, str(e)) from None
    except (ValueError, OSError) as e:  # a mode Pillow cannot convert, e.g. LAB without ImageCms
        raise _error(name, f"unsupported pixel format {img.mode!r} ({e})") from e


def _finish(rgb: Image.Image, method: Image.Transpose | None, out, box) -> np.ndarray:
    """A decoded RGB image (stored orientation) shrunk as `_shrink_plan` says, turned upright, as an array."""
    if out is not None:
        rgb = rgb.resize(out, Image.Resampling.LANCZOS, box=box)
    w, h = rgb.size
    if w * h <= _BAND_PIXELS:
        return np.array(rgb.transpose(method) if method is not None else rgb, dtype=np.uint8, order="C")
    # Pillow hands its pixels to numpy as a bytes copy, which numpy copies again: done for the whole image
    # that would hold three copies at once (and a fourth to turn it upright), so go a band of rows at a time
    dw, dh = (h, w) if method in _SWAPS_AXES else (w, h)
    array = np.empty((dh, dw, 3), np.uint8)
    rows = max(1, _BAND_PIXELS // dw)
    for top in range(0, dh, rows):
        bottom = min(dh, top + rows)
        band = rgb.crop(tuple(int(v) for v in _box_to_stored(method, (0, top, dw, bottom), (dw, dh))))
        array[top:bottom] = np.asarray(band.transpose(method) if method is not None else band)
    return array


def _shrink_plan(method: Image.Transpose | None, size: tuple[int, int], max_side: int | None):
    """(scale, output size, source box), output size and box in stored orientation; (1.0, None, None) if the
    image already fits."""
    swap = method in _SWAPS_AXES
    dw, dh = (size[1], size[0]) if swap else size  # displayed size
    if max_side is None or max(dw, dh) <= max_side:
        return 1.0, None, None
    # output size in displayed orientation, one exact scale for both axes (integer maths: never rounds up)
    scale = max(dw, dh) / max_side
    out = (max_side, max(1, dh * max_side // dw)) if dw >= dh else (max(1, dw * max_side // dh), max_side)
    # the full-resolution region those output pixels cover, mapped into stored orientation: we resize before
    # transposing, so the cropped sliver must be cut where it ends up right/bottom when displayed
    box = _box_to_stored(method, (0.0, 0.0, min(dw, out[0] * scale), min(dh, out[1] * scale)), (dw, dh))
    return scale, ((out[1], out[0]) if swap else out), box


def to_rgb(img: Image.Image) -> Image.Image:
    """A decoded PIL image of any mode as mode RGB (see the module docstring for alpha and 16 bit)."""
    mode = img.mode
    keyed = "transparency" in img.info and mode in ("P", "L", "RGB")  # palette alpha or tRNS colour key
    if keyed or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", img.size)  # black
        out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return out
    if mode == "I" and img.format is None:  # made in memory (Image.fromarray of int32): read as its array is
        a = np.asarray(img)
        if a.size and 0 <= a.min() and a.max() <= 255:  # 8-bit values held in 32-bit integers
            return Image.fromarray(a.astype(np.uint8)).convert("RGB")
    if mode == "I" or mode.startswith("I;16"):  # 16-bit gray (mode I is what Pillow gives 16-bit PGM)
        return Image.fromarray(_scale16(np.clip(np.asarray(img), 0, 65535))).convert("RGB")
    if mode == "F":  # 32-bit float gray (a float TIFF)
        return Image.fromarray(_scale_float(np.asarray(img))).convert("RGB")
    return img if mode == "RGB" else img.convert("RGB")  # 1, L, P, CMYK, YCbCr, ...


def _scale16(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


class _FloatRangeError(ValueError):
    """Float pixels in no range we can tell (the message says which values)."""


def _scale_float(a: np.ndarray) -> np.ndarray:
    """Float pixels -> uint8: 0..1 when the largest finite value is at most 1 (OpenCV/scikit-image float
    images), else 0..255. Rounding noise below 0 is clipped; anything else out of range raises
    _FloatRangeError, so no pixel is silently clipped. NaN and infinities become 0."""
    a = np.nan_to_num(np.asarray(a, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top, bottom = (float(a.max()), float(a.min())) if a.size else (0.0, 0.0)
    scale = 255.0 if top <= 1.0 else 1.0
    if top * scale > 255.5 or bottom * scale < -1.0:
        raise _FloatRangeError(f"float values from {bottom:g} to {top:g}: expected 0..1 or 0..255 "
                               "(scale the image into one of these ranges)")
    return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)


def _array_name(a: np.ndarray) -> str:
    return f"<array {'×'.join(map(str, a.shape))} {a.dtype}>"


def _array_image(a: np.ndarray) -> Image.Image:
    name = _array_name(a)
    if not a.dtype.isnative:  # big-endian data (from a file or a network): the same values, in this byte order
        a = a.astype(a.dtype.newbyteorder("="))
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise _error(name, "expected a non-empty H×W, H×W×3 (RGB) or H×W×4 (RGBA) array")
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = _scale16(a)
    elif np.issubdtype(a.dtype, np.floating):
        try:
            a = _scale_float(a)
        except _FloatRangeError as e:
            raise _error(name, str(e)) from None
    elif np.issubdtype(a.dtype, np.integer) and a.min() >= 0 and a.max() <= 255:
        a = a.astype(np.uint8)
    else:
        raise _error(name, "unsupported values: pass uint8, uint16, float in 0..1 or 0..255, or integers in 0..255")
    return Image.fromarray(np.ascontiguousarray(a))  # L, RGB or RGBA, converted like any decoded image


def _transpose_of(img: Image.Image) -> Image.Transpose | None:
    """The transpose its EXIF (or XMP) orientation asks for; None when upright, absent or unreadable."""
    if isinstance(img, TiffImageFile):
        return None  # Pillow reports TIFF sizes upright already and transposes TIFF pixels while loading
    try:
        # the base-class method reads what the header gave; PNG's override would decode the whole image first
        orientation = Image.Image.getexif(img).get(ExifTags.Base.Orientation, 1)
    except Exception:  # a malformed EXIF block should not make the pixels unreadable
        return None
    return _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None


def _box_to_stored(method: Image.Transpose | None, box: tuple[float, ...], size: tuple[int, int]) -> tuple:
    """A (left, top, right, bottom) box in displayed coordinates, as a box in stored coordinates.

    Displayed = method(stored), so we map the corners through the inverse transpose; `size` is displayed.
    """
    if method is None:
        return box
    inverse = {Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
               Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90}.get(method, method)
    w, h = size
    # where a point (x, y) of a w×h image lands under each transpose (continuous edge coordinates)
    move = {
        Image.Transpose.FLIP_LEFT_RIGHT: lambda x, y: (w - x, y),
        Image.Transpose.FLIP_TOP_BOTTOM: lambda x, y: (x, h - y),
        Image.Transpose.ROTATE_180: lambda x, y: (w - x, h - y),
        Image.Transpose.ROTATE_90: lambda x, y: (y, w - x),  # counter-clockwise
        Image.Transpose.ROTATE_270: lambda x, y: (h - y, x),  # clockwise
        Image.Transpose.TRANSPOSE: lambda x, y: (y, x),
        Image.Transpose.TRANSVERSE: lambda x, y: (h - y, w - x),
    }[inverse]
    (x0, y0), (x1, y1) = move(box[0], box[1]), move(box[2], box[3])
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


# ---------------------------------------------------------------------------------------------- files

_limit_lock = threading.Lock()
_limit_users = 0
_saved_limit: int | None = None


@contextlib.contextmanager
def _pixel_limit() -> Iterator[None]:
    """Raise Pillow's decompression-bomb threshold to MAX_PIXELS while we read (we check sizes ourselves).

    Pillow only has the module-global Image.MAX_IMAGE_PIXELS; concurrent readers share one raised value
    (reference-counted) and the caller's setting comes back when the last one finishes.
    """
    global _limit_users, _saved_limit
    with _limit_lock:
        if _limit_users == 0:
            _saved_limit = Image.MAX_IMAGE_PIXELS
            if _saved_limit is not None:
                Image.MAX_IMAGE_PIXELS = max(_saved_limit, MAX_PIXELS)
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                Image.MAX_IMAGE_PIXELS = _saved_limit


# JPEG's end-of-image marker: appended to a file cut short, it lets libjpeg finish what the file holds
_JPEG_END = b"\xff\xd9"


@contextlib.contextmanager
def _open(name: str, *, cut_short: bool = False) -> Iterator[Image.Image]:
    """Image.open with every failure turned into an ImageError that says why. `cut_short`: a JPEG file whose data
    ends early, opened from its bytes with _JPEG_END appended (an ImageError when no pixel data precedes its end)."""
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise _error(name, "no such file") from None
    except OSError as e:
        raise _error(name, e.strerror or e) from None
    if stat.S_ISDIR(st.st_mode):
        raise _error(name, _folder_reason(name))
    if not stat.S_ISREG(st.st_mode):
        raise _error(name, "not a regular file")  # a FIFO or device would block or never end
    if st.st_size == 0:
        raise _error(name, "file is empty (0 bytes)")
    source: str | io.BytesIO = name
    if cut_short:
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as e:
            raise _error(name, e.strerror or e) from None
        if _jpeg_scan_start(data) >= len(data):
            raise _error(name, "truncated or corrupt image data (the file ends before its first pixel data)")
        source = io.BytesIO(data + _JPEG_END)
    with _pixel_limit():
        try:
            img = Image.open(source, formats=_FORMATS)
        except UnidentifiedImageError:
            raise _error(name, _not_an_image(name)) from None
        except Image.DecompressionBombError:
            raise _error(name, f"image too large (limit {MAX_PIXELS / 1e6:.0f} megapixels)") from None
        except OSError as e:
            raise _error(name, e.strerror or e) from None
        except MemoryError:
            raise
        except Exception as e:  # malformed headers make some plugins raise ValueError, EOFError, ...
            raise _error(name, f"corrupt image header ({e})") from e
        with img:
            yield img


def _jpeg_scan_start(data: bytes) -> int:
    """Where the pixel data of a JPEG file's first scan starts (after its SOS header), found by walking its
    marker segments; len(data) or more when the file ends before that."""
    at = 2  # after SOI
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return len(data)  # not a marker where one should be: nothing we can point at
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if marker == 0xDA:  # start of scan
            return at + 2 + length
        at += 2 + length
    return len(data)


def _folder_reason(name: str) -> str:
    """Why a folder is not an image: it is one, or (a folder met in a walk) it cannot even be listed."""
    try:
        with os.scandir(name):
            pass
    except OSError as e:
        return f"a folder that cannot be listed ({e.strerror or e})"
    return "is a directory"


def file_head(name: str, size: int = 32) -> bytes | str:
    """The first bytes of a file, or the reason they cannot be read."""
    try:
        with open(name, "rb") as f:
            return f.read(size)
    except OSError as e:
        return e.strerror or str(e)


def looks_like_text(head: bytes) -> str | None:
    """'looks like text: ...' when the bytes are printable text (an HTML error page or a note saved as .jpg)."""
    if head and all(b >= 32 or b in b"\t\n\r\f" for b in head):
        return f"looks like text: {head.decode('utf-8', 'replace')[:20]!r}"
    return None


# ISO-BMFF brands of still or animated images, and their names; an 'ftyp' file of another brand is an MP4/MOV video
IMAGE_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"hevc": "HEIC",
                b"hevx": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


@dataclass(frozen=True)
class Sniffed:
    """What a file's first bytes say it is.

    kind: "unreadable" (detail: why), "text" (detail: 'looks like text: ...'), "heif" (detail: HEIC, HEIF or
    AVIF), "mp4" (an MP4/MOV container), "matroska" (Matroska/WebM), "avi", or "unknown" (detail: the first
    bytes in hex). head: the first bytes read (empty when unreadable)."""

    kind: str
    detail: str = ""
    head: bytes = b""


def sniff(name: str) -> Sniffed:
    """The kind of file `name` is, from its first 32 bytes: the one place that tells containers apart (images,
    videos, text saved under an image's name)."""
    head = file_head(name)
    if isinstance(head, str):
        return Sniffed("unreadable", head)
    if head[4:8] == b"ftyp":
        brand = IMAGE_BRANDS.get(head[8:12])
        return Sniffed("heif", brand, head) if brand else Sniffed("mp4", "", head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("matroska", "", head)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("avi", "", head)
    text = looks_like_text(head)
    if text:
        return Sniffed("text", text, head)
    return Sniffed("unknown", head[:8].hex(" "), head)


def _not_an_image(name: str) -> str:
    """Why Pillow could not identify the file, guessed from its first bytes."""
    found = sniff(name)
    if found.kind == "unreadable":
        return found.detail
    if found.kind in ("heif", "mp4"):
        return "unsupported format (HEIC/AVIF container?)"
    if found.kind == "text":
        return f"not an image file ({found.detail})"
    if found.kind == "unknown":
        return f"not an image file (unknown format, starts with {found.detail})"
    return "not an image file (a video container)"


def _png_corruption(name: str) -> str | None:
    """Check every PNG chunk's CRC; the reason if one fails or the file ends inside a chunk, else None."""
    with open(name, "rb") as f:
        f.seek(8)  # signature, already checked by Pillow
        while True:
            head = f.read(8)
            if not head:
                return None  # no IEND: tolerated, Pillow reports missing image data itself
            if len(head) < 8:
                return "file ends inside a chunk header"
            length, ctype = struct.unpack(">I4s", head)
            crc = zlib.crc32(ctype)
            left = length
            while left:
                block = f.read(min(left, 1 << 20))
                if not block:
                    return f"file ends inside the {ctype.decode('latin-1')!r} chunk"
                crc = zlib.crc32(block, crc)
                left -= len(block)
            stored = f.read(4)
            if len(stored) < 4:
                return f"file ends inside the {ctype.decode('latin-1')!r} chunk"
            if struct.unpack(">I", stored)[0] != crc:
                return f"bad CRC in the {ctype.decode('latin-1')!r} chunk"
            if ctype == b"IEND":
                return None


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _has_image_suffix(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _walk_covers(root: str, key: str, is_dir: bool) -> bool:
    """Whether walking folder `root` (a key) yields file `key`, or every image file under folder `key`."""
    if is_dir and key == root:
        return True
    prefix = root if root.endswith(os.sep) else root + os.sep
    if not key.startswith(prefix):
        return False
    parts = key[len(prefix):].split(os.sep)
    return not any(p.startswith(".") for p in parts) and (is_dir or _has_image_suffix(key))


def _walk(
    folder: str, key: str, skip: set[str], _active: frozenset = frozenset()
) -> Iterator[tuple[str, str]]:
    """(path, key) of image files under `folder`, as described in iter_image_files. Folders whose key is in
    `skip` (walked before) are left out; a symlinked folder leading back into an ancestor is not entered."""
    try:
        st = os.stat(folder)
        ident = (st.st_dev, st.st_ino)
        if ident in _active:
            return
        files, dirs = [], []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir():
                        dirs.append(entry.name)
                    elif _has_image_suffix(entry.name) and entry.is_file():
                        files.append(entry.name)
                except OSError:
                    # a symlink cycle, an entry that cannot be examined: yielded as it is, so that reading it
                    # records it as one failed input (with the reason) and the rest of the folder goes on
                    files.append(entry.name)
    except OSError:
        # a folder that cannot be listed (permissions, a cycle of links) is one failed input, not the end of
        # the batch: yielded itself, reading it says why (`_open`)
        yield folder, key
        return
    files.sort()
    for name in files:
        yield os.path.join(folder, name), os.path.join(key, os.path.normcase(name))
    del files
    for name in sorted(dirs):
        sub_key = os.path.join(key, os.path.normcase(name))
        if sub_key not in skip:
            yield from _walk(os.path.join(folder, name), sub_key, skip, _active | {ident})
