"""The network's input: face box -> square -> crop (padded where it leaves the image) -> S×S -> normalised.

`CropTransform` holds the one similarity transform between image and crop, so points go both ways exactly:
`to_crop(points)` and `to_image(points)` are inverses (a test proves the round trip). Pixel-centre
convention on both sides: the square of side `side` centred on (cx, cy) in the image covers the crop's
pixels 0..S-1 edge to edge, i.e. x_crop = (x - cx) * S / side + S / 2 - 0.5.

A face tilted in the image plane (roll) is cut upright: the square may be turned by `angle` (radians), the
direction of the crop's x axis in the image (x right, y down, so a positive angle turns it clockwise as seen
on screen). `roll_angle(points, scheme)` measures a shape's roll as the angle of the line from the image-left
eye's centre to the image-right eye's; a square turned by that angle shows the face with level eyes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Default crop: the original's 160-px input, the face box widened by this margin so the jaw stays inside.
DEFAULT_SIZE = 160
DEFAULT_MARGIN = 1.25


@dataclass(frozen=True)
class CropTransform:
    cx: float  # centre of the square in image pixels
    cy: float
    side: float  # side of the square in image pixels
    size: int  # output crop size S
    # direction of the crop's x axis in the image, radians (x right, y down: positive turns it clockwise on
    # screen); a face whose roll is `angle` comes out upright. 0: the plain axis-aligned crop.
    angle: float = 0.0

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return self.size / self.side

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image pixels (…, 2) -> crop pixels (…, 2), pixel-centre convention on both sides."""
        p = np.asarray(points, dtype=np.float64)
        dx, dy = p[..., 0] - self.cx, p[..., 1] - self.cy
        if self.angle:  # into the crop's axes: rotate by -angle
            c, s = math.cos(self.angle), math.sin(self.angle)
            dx, dy = c * dx + s * dy, c * dy - s * dx
        out = np.empty_like(p)
        out[..., 0] = dx * self.scale + self.size / 2 - 0.5
        out[..., 1] = dy * self.scale + self.size / 2 - 0.5
        return out

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Crop pixels (…, 2) -> image pixels (…, 2): the exact inverse of `to_crop`."""
        p = np.asarray(points, dtype=np.float64)
        u = (p[..., 0] + 0.5 - self.size / 2) / self.scale
        v = (p[..., 1] + 0.5 - self.size / 2) / self.scale
        if self.angle:  # back to the image's axes: rotate by +angle
            c, s = math.cos(self.angle), math.sin(self.angle)
            u, v = c * u - s * v, s * u + c * v
        out = np.empty_like(p)
        out[..., 0] = u + self.cx
        out[..., 1] = v + self.cy
        return out

    def edge_box(self) -> tuple[float, float, float, float]:
        """The axis-aligned box, in pixel-edge coordinates (what PIL's resize box expects), that holds every
        image pixel the crop is made from: the square itself, or for a turned square the upright square
        `crop_image` cuts first (see `upright_cover`)."""
        if self.angle:
            return self.upright_cover().edge_box()
        left = self.cx + 0.5 - self.side / 2
        top = self.cy + 0.5 - self.side / 2
        return left, top, left + self.side, top + self.side

    def upright_cover(self) -> "CropTransform":
        """An axis-aligned transform at the same centre and scale whose n×n crop holds the turned square
        (n = the turned square's bounding side in crop pixels, rounded up, plus 2 pixels for the bilinear
        filter): a turned crop is that crop, resized with antialiasing, then turned without any scaling."""
        c, s = abs(math.cos(self.angle)), abs(math.sin(self.angle))
        n = math.ceil(self.size * (c + s) - 1e-9) + 2
        return CropTransform(cx=self.cx, cy=self.cy, side=self.side * n / self.size, size=n)


def inside_image(points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(..., P) bool: which of (..., P, 2) pixel `points` lie within an image of (width, height), its pixels'
    outer edges included (-0.5 .. size - 0.5, pixel centres at integers); False for a NaN point."""
    p = np.asarray(points, np.float64)
    width, height = image_size
    with np.errstate(invalid="ignore"):
        return (p[..., 0] >= -0.5) & (p[..., 0] <= width - 0.5) & (p[..., 1] >= -0.5) & (p[..., 1] <= height - 0.5)


def box_from_points(points: np.ndarray) -> tuple[float, float, float, float]:
    """Tight box (x0, y0, x1, y1) around the finite points."""
    p = np.asarray(points, dtype=np.float64)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        raise ValueError("no finite points to make a box from")
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def square_crop_transform(box, size: int = DEFAULT_SIZE, margin: float = DEFAULT_MARGIN,
                          angle: float = 0.0) -> CropTransform:
    """Extend a face box to a square (longer side × margin, same centre) that maps onto an S×S crop.

    `box` (x0, y0, x1, y1) is in image pixels, or, with a non-zero `angle` (radians, see CropTransform), in
    the face's upright frame: the image turned by -angle about the origin, as `points_crop_transform` makes
    it. Raises ValueError for a box that is not finite or has x1 < x0 or y1 < y0."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 < x0 or y1 < y0:
        raise ValueError(f"invalid face box {box}")
    side = max(x1 - x0, y1 - y0, 1.0) * margin
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    angle = float(angle)
    if angle:  # the centre back from the face's frame to the image's
        c, s = math.cos(angle), math.sin(angle)
        cx, cy = c * cx - s * cy, s * cx + c * cy
    return CropTransform(cx=cx, cy=cy, side=side, size=int(size), angle=angle)


def face_box_crop_transform(box, size: int, margin: float, framing=None, roll: float = 0.0) -> CropTransform:
    """A network's first crop of a face known by a face box in image pixels (a detector's landmark box, ≈ the
    box of face88's points), turned by `roll` about the box centre. `framing` (ModelConfig.face_framing): where
    the network's crop lies relative to that box, for a layout whose points do not fill it; None: the box is
    the network's points' box, framed by `margin`."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if framing is None:
        t = square_crop_transform(box, size, margin)
        return CropTransform(t.cx, t.cy, t.side, t.size, roll) if roll else t
    side_factor, dx, dy = (float(v) for v in framing)
    side = max(x1 - x0, y1 - y0, 1.0)
    c, s = math.cos(roll), math.sin(roll)
    cx = (x0 + x1) / 2 + (c * dx - s * dy) * side
    cy = (y0 + y1) / 2 + (s * dx + c * dy) * side
    return CropTransform(cx=cx, cy=cy, side=side * side_factor, size=int(size), angle=float(roll))


def points_crop_transform(points: np.ndarray, size: int = DEFAULT_SIZE, margin: float = DEFAULT_MARGIN,
                          angle: float = 0.0) -> CropTransform:
    """The network's framing of a shape (P, 2 image pixels; NaN points ignored): the square around the box of
    its points, taken in the frame turned by `angle` (radians, see CropTransform), so a tilted face is
    framed as the same face upright would be. Raises ValueError when no point is finite."""
    p = np.asarray(points, dtype=np.float64)
    angle = float(angle)
    if angle:  # into the face's upright frame: rotate by -angle about the origin
        c, s = math.cos(angle), math.sin(angle)
        p = np.stack([c * p[:, 0] + s * p[:, 1], c * p[:, 1] - s * p[:, 0]], axis=1)
    return square_crop_transform(box_from_points(p), size, margin, angle)


def roll_angle(points: np.ndarray, scheme) -> float:
    """Roll of a face, radians in (-π, π]: the direction of the line from the centre of the scheme's
    "left_eye" region (the eye on the image's left when upright) to the centre of its "right_eye" region.
    0 for an upright face; positive when the face is turned clockwise on screen (y down). NaN points are
    ignored; 0.0 when either eye has no finite point (nothing to measure: the crop stays upright). A layout
    without the two eye regions (docs/layouts.md) is measured from its two normalising points instead, the
    image-left one first (a mouth-only layout: its mouth corners)."""
    p = np.asarray(points, dtype=np.float64)
    if "left_eye" in scheme.region_names and "right_eye" in scheme.region_names:
        left, right = p[scheme.region_slice("left_eye")], p[scheme.region_slice("right_eye")]
    else:
        left, right = p[[scheme.normaliser[0]]], p[[scheme.normaliser[1]]]
    left, right = left[np.isfinite(left).all(axis=1)], right[np.isfinite(right).all(axis=1)]
    if len(left) == 0 or len(right) == 0:
        return 0.0
    dx, dy = right.mean(axis=0) - left.mean(axis=0)
    return math.atan2(dy, dx) if dx or dy else 0.0


def crop_image(image: np.ndarray | Image.Image, transform: CropTransform) -> np.ndarray:
    """The S×S RGB uint8 crop (image: H×W×3 uint8 array or PIL RGB image); parts of the square outside the
    image are black. A turned square (`transform.angle`) is cut as its upright cover, resized with
    antialiasing to the crop's scale, then turned by bilinear interpolation at that scale."""
    if transform.angle:
        return _turned_crop(image, transform)
    left, top, right, bottom = transform.edge_box()
    # Cut the integer region around the square first (black outside the image), so the resize only ever
    # touches the face, then resize with an antialiasing filter from the float box. An array is sliced
    # before Pillow sees it: Image.fromarray would copy the whole image for every crop.
    l0, t0 = math.floor(left), math.floor(top)
    r0, b0 = math.ceil(right), math.ceil(bottom)
    if isinstance(image, Image.Image):
        region = image.crop((l0, t0, r0, b0))
    else:
        region = Image.fromarray(array_region(image, (l0, t0, r0, b0)))
    # reducing_gap 3: a square over 3× the crop's side is first box-averaged by a whole factor, then filtered
    # (Pillow: "indistinguishable" from the exact filter; a 2200-px face square: 3.2 ms instead of 11.5 ms, mean
    # pixel difference 0.13 of 255)
    out = region.resize((transform.size, transform.size), Image.Resampling.BILINEAR,
                        box=(left - l0, top - t0, right - l0, bottom - t0), reducing_gap=3.0)
    return np.asarray(out)


def _turned_crop(image: np.ndarray | Image.Image, t: CropTransform) -> np.ndarray:
    cover = t.upright_cover()
    n, size = cover.size, t.size
    upright = Image.fromarray(crop_image(image, cover))
    # Pillow's affine maps output pixel edges to input pixel edges: e_cover = R(angle) (e_crop - S/2) + n/2
    # (the same as to_image followed by cover.to_crop, written in edge coordinates)
    c, s = math.cos(t.angle), math.sin(t.angle)
    h = size / 2
    data = (c, -s, n / 2 - c * h + s * h, s, c, n / 2 - s * h - c * h)
    out = upright.transform((size, size), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR, fillcolor=0)
    return np.asarray(out)


def array_region(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """rgb[top:bottom, left:right] of an H×W×3 array, black where the box leaves the image (as Pillow's
    crop pads)."""
    left, top, right, bottom = box
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    if (x0, y0, x1, y1) == (left, top, right, bottom):
        return np.ascontiguousarray(rgb[top:bottom, left:right])
    part = np.zeros((bottom - top, right - left) + rgb.shape[2:], np.uint8)
    if x0 < x1 and y0 < y1:
        part[y0 - top:y1 - top, x0 - left:x1 - left] = rgb[y0:y1, x0:x1]
    return part


def normalise_crop(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB (…, H, W, 3) -> float32 (…, 3, H, W) in [-1, 1], the network's input."""
    x = np.asarray(crops, dtype=np.float32)
    x = np.moveaxis(x, -1, -3)
    return x / 127.5 - 1.0
