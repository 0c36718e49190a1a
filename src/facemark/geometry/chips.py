"""Aligned face chips: the face cut out and turned upright onto a fixed template, as recognition models expect.

    chip = face.chip(size=112, template="arcface")     # or aligned_chip(image, face.points, face.scheme)
    chip.image                                         # (112, 112, 3) uint8 RGB
    chip.to_chip(face.points), chip.to_image(p)        # points both ways

Five standard points (the ones MTCNN and the ArcFace/insightface alignment use) are mapped onto the template
by the least-squares similarity (rotation, one scale, shift: no shear; Umeyama 1991):
the image-left eye's centre, the image-right eye's centre, the nose tip, the image-left and image-right mouth
corners. An eye's centre is the mean of its contour points (a stand-in for the pupil).

Templates, for a chip of `size` pixels (pixel-centre convention: the top-left pixel's centre is (0, 0), as in
OpenCV's warpAffine, which cuts the chip):
- "arcface": insightface's ArcFace template for 112×112 (`arcface_dst` in insightface/utils/face_align.py),
  scaled to `size` (edge to edge);
- "square": the same five points shrunk about the chip's centre by 1 / (1 + margin), so the whole head fits
  with room around it (margin 0.25 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facemark.layouts import Scheme, get_scheme

# insightface arcface_dst, 112×112, OpenCV pixel coordinates (pixel-centre convention)
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
TEMPLATES = ("arcface", "square")
DEFAULT_SQUARE_MARGIN = 0.25


class ChipError(ValueError):
    """A chip that cannot be cut (bad size, unknown template, points that are no face); one line."""


@dataclass(frozen=True)
class AlignedChip:
    image: np.ndarray  # (size, size, 3) uint8, the same channel order as the input image
    matrix: np.ndarray  # (2, 3) similarity, image pixels -> chip pixels: [x', y'] = M @ [x, y, 1]
    template: np.ndarray  # (5, 2) where the five standard points were aimed, chip pixels
    residual: float  # mean distance (chip pixels) between the mapped five points and the template

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def inverse(self) -> np.ndarray:
        """(2, 3) chip pixels -> image pixels."""
        return invert_similarity(self.matrix)

    def to_chip(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) image pixels -> chip pixels."""
        return apply_affine(self.matrix, points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) chip pixels -> image pixels."""
        return apply_affine(self.inverse, points)


def template_points(template: str = "arcface", size: int = 112, margin: float = DEFAULT_SQUARE_MARGIN
                    ) -> np.ndarray:
    """The (5, 2) template for a chip of `size` pixels (module docstring)."""
    if template not in TEMPLATES:
        raise ChipError(f"unknown chip template {template!r}; known: {', '.join(TEMPLATES)}")
    if not isinstance(size, (int, np.integer)) or size < 8 or size > 4096:
        raise ChipError(f"chip size must be a whole number of pixels from 8 to 4096, got {size!r}")
    if not (0 <= margin <= 10):
        raise ChipError(f"chip margin must be between 0 and 10, got {margin}")
    points = (ARCFACE_112 + 0.5) * (size / 112) - 0.5  # edge-to-edge scaling in pixel-centre coordinates
    if template == "square":
        centre = (size - 1) / 2
        points = (points - centre) / (1 + margin) + centre
    return points


# the nose tip and mouth corners (image-left, image-right) in the sources a layout file can name
_FIVE_SOURCE_POINTS = {"ibug68": (30, 48, 54), "mediapipe": (4, 61, 291)}


def _five_from_sources(p: np.ndarray, scheme: Scheme) -> np.ndarray:
    """The five points of a layout of your own: its eye regions' centres, and the points its layout file says
    are iBUG-68's (or Face Mesh's) nose tip and mouth corners."""
    names = scheme.region_names
    for source, wanted in _FIVE_SOURCE_POINTS.items():
        table = scheme.source(source) or ()
        found = [next((i for i, idx in enumerate(table) if idx == (w,)), None) for w in wanted]
        if "left_eye" in names and "right_eye" in names and None not in found:
            s = scheme.region_slice
            five = np.stack([p[s("left_eye")].mean(axis=0), p[s("right_eye")].mean(axis=0), *p[found]])
            if not np.isfinite(five).all():
                raise ChipError("aligned chips need finite eye, nose and mouth points")
            return five
    raise ChipError(f"aligned chips need eye regions and the nose tip and mouth corners; layout {scheme.name} "
                    f"does not say which of its points they are (from_ibug68 [30], [48], [54] in its layout file)")


def five_points(points: np.ndarray, scheme: Scheme | str) -> np.ndarray:
    """The (5, 2) standard points of a face88 or ibug68 shape: eye centres (image-left, image-right), nose tip,
    mouth corners (image-left, image-right). Offsets inside each region follow the layout's order
    (face88.md; iBUG: nose tip = 4th ridge point, mouth corners = outer contour points 0 and 6)."""
    scheme = get_scheme(scheme)
    p = np.asarray(points, np.float64)
    if p.shape != (scheme.num_points, 2):
        raise ChipError(f"expected ({scheme.num_points}, 2) {scheme.name} points, got {p.shape}")
    s = scheme.region_slice
    if scheme.name == "face88":
        nose_tip = s("nose").start + 3  # the ridge ends at the tip
    elif scheme.name == "ibug68":
        nose_tip = s("nose").start + 3  # 27-30 ridge, 30 the tip
    else:
        return _five_from_sources(p, scheme)
    mouth = s("mouth").start
    five = np.stack([p[s("left_eye")].mean(axis=0), p[s("right_eye")].mean(axis=0), p[nose_tip],
                     p[mouth], p[mouth + 6]])
    if not np.isfinite(five).all():
        raise ChipError("aligned chips need finite eye, nose and mouth points")
    return five


def similarity_2d(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (rotation, uniform scale, shift; no reflection, no shear) taking the
    (N, 2) `source` points onto `target` (Umeyama 1991)."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    var = (a ** 2).sum(axis=1).mean()
    if not var > 1e-12:
        raise ChipError("the face's points coincide: no transform can align them")
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) > 0 else -1.0])
    rotation = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var
    return np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])


def invert_similarity(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, np.float64)
    a_inv = np.linalg.inv(m[:, :2])
    return np.hstack([a_inv, (-a_inv @ m[:, 2])[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64)
    m = np.asarray(matrix, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def aligned_chip(image: np.ndarray, points: np.ndarray, scheme: Scheme | str, *, size: int = 112,
                 template: str = "arcface", margin: float = DEFAULT_SQUARE_MARGIN) -> AlignedChip:
    """Cut the aligned chip of one face from an H×W×3 uint8 image (bilinear; black outside the image).
    Raises ChipError for a bad size, template or margin, or points that cannot be aligned."""
    import cv2

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise ChipError(f"expected an H×W×3 uint8 image, got {image.dtype} {image.shape}")
    target = template_points(template, size, margin)
    source = five_points(points, scheme)
    matrix = similarity_2d(source, target)
    chip = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))
    residual = float(np.linalg.norm(apply_affine(matrix, source) - target, axis=1).mean())
    return AlignedChip(image=chip, matrix=matrix, template=target, residual=residual)
