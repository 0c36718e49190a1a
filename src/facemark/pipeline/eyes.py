"""Eye refinement: each eye cut out on a level patch of its own and its lids placed again by a small network.

An eye's crop is fixed by its two corners (face88 eye offsets 0 and 4), as the landmark network placed them: a
square `EYE_CROP` pixels wide centred on their midpoint, turned by the line between them, scaled so they lie
`EYE_CORNER_GAP` pixels apart; the patch is its middle `EYE_PATCH_SIZE[1]` rows. It is an ordinary CropTransform,
so eye patches are cut by the same code as the landmark network's crops (black beyond the image, antialiased when
shrinking, from a file's reduced decode for a huge image). The image-right eye's patch is mirrored, so both eyes
look alike to the network (one network serves both): its points are the image-left eye's offsets after the
layout's mirror permutation (`MIRROR_OFFSETS`).

The refiner's lid points replace the landmark network's; its corners are not used (the landmark network's corners
are the ones scored against human labels). The other 76 face88 points are never touched.

Coordinates: pixels, origin at the centre of the top-left pixel, in the image and in the patch alike;
`to_patch` and `from_patch` are exact inverses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facemark.pipeline.crops import CropTransform, normalise_crop

EYE_CROP = 64  # side of the square an eye is cut from, pixels
EYE_PATCH_SIZE = (64, 40)  # (width, height) of an eye patch: the square's middle rows
EYE_TOP = (EYE_CROP - EYE_PATCH_SIZE[1]) // 2  # the square's first row in the patch
EYE_CORNER_GAP = 32.0  # pixels between the two eye corners in the patch
EYE_CORNERS = (0, 4)  # offsets of the corners among an eye's 8 face88 points
EYE_LIDS = (1, 2, 3, 5, 6, 7)  # the upper lid left to right, the lower lid right to left
# The mirror image of the image-right eye's offset MIRROR_OFFSETS[k] is the image-left eye's offset k
# (../shared/docs/face88.md, mirror pairs 21↔33 ... 28↔34).
MIRROR_OFFSETS = np.array([4, 3, 2, 1, 0, 7, 6, 5])


def eye_transform(eye: np.ndarray, *, shift=(0.0, 0.0), zoom: float = 1.0, turn: float = 0.0) -> CropTransform:
    """The square crop of one eye from its (8, 2) points in image pixels (face88 eye order). shift (patch
    pixels), zoom (>1 shows the eye larger) and turn (radians) move the framing: training's jitter; the
    defaults frame it exactly. Raises ValueError when the corners are not finite."""
    a, b = np.asarray(eye, np.float64)[list(EYE_CORNERS)]
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("an eye's corners must be finite to frame it")
    gap = max(float(np.hypot(*(b - a))), 1e-3)
    angle = math.atan2(b[1] - a[1], b[0] - a[0]) + turn
    side = EYE_CROP * gap / (EYE_CORNER_GAP * zoom)
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = (v * side / EYE_CROP for v in shift)  # patch pixels -> image pixels, in the crop's axes
    centre = (a + b) / 2 - np.array([c * dx - s * dy, s * dx + c * dy])
    return CropTransform(cx=float(centre[0]), cy=float(centre[1]), side=side, size=EYE_CROP, angle=angle)


def crop_to_patch(square: np.ndarray, mirrored: bool) -> np.ndarray:
    """An EYE_CROP×EYE_CROP crop -> its (40, 64, 3) patch, mirrored for the image-right eye."""
    patch = square[EYE_TOP:EYE_TOP + EYE_PATCH_SIZE[1]]
    return patch[:, ::-1] if mirrored else patch


def to_patch(transform: CropTransform, points: np.ndarray, mirrored: bool) -> np.ndarray:
    """(8, 2) image-pixel eye points -> patch pixels, in the image-left eye's offset order."""
    p = transform.to_crop(np.asarray(points, np.float64))
    p[:, 1] -= EYE_TOP
    if mirrored:
        p[:, 0] = EYE_CROP - 1 - p[:, 0]
        p = p[MIRROR_OFFSETS]
    return p


def from_patch(transform: CropTransform, patch_points: np.ndarray, mirrored: bool) -> np.ndarray:
    """The inverse of `to_patch`: (8, 2) patch pixels -> image pixels in the eye's own offset order."""
    p = np.array(patch_points, np.float64)
    if mirrored:
        p[:, 0] = EYE_CROP - 1 - p[:, 0]
        q = np.empty_like(p)
        q[MIRROR_OFFSETS] = p
        p = q
    p[:, 1] += EYE_TOP
    return transform.to_image(p)


def patch_corners() -> np.ndarray:
    """(2, 2) where the two corners of an exactly framed eye land in its patch: offset 0, then offset 4."""
    cx, cy = (EYE_CROP - 1) / 2, (EYE_CROP - 1) / 2 - EYE_TOP
    return np.array([[cx - EYE_CORNER_GAP / 2, cy], [cx + EYE_CORNER_GAP / 2, cy]])


Cut = Callable[[list[CropTransform]], list[np.ndarray]]  # crop transforms -> their square crops of one image


def eye_patches(cut: Cut, faces: list[np.ndarray], scheme) -> tuple[np.ndarray, list[CropTransform]]:
    """(2N, 40, 64, 3) uint8 patches of N faces' (P, 2) points, each face's image-left eye then its image-right
    eye (mirrored), cut by `cut` (e.g. crop_image on an image), and their transforms."""
    left, right = scheme.region_slice("left_eye"), scheme.region_slice("right_eye")
    transforms = [eye_transform(points[region]) for points in faces for region in (left, right)]
    squares = cut(transforms)
    return np.stack([crop_to_patch(q, k % 2 == 1) for k, q in enumerate(squares)]), transforms


def refine_lids(cut: Cut, faces: list[np.ndarray], scheme, network) -> list[np.ndarray]:
    """face88 points (each (P, 2) image pixels) with each eye's 6 lid points placed again by `network` (a
    callable of (M, 3, 40, 64) float32 patches in [-1, 1] and (M, 8, 2) float32 prior points, the eyes as given,
    in patch pixels -> (M, 8, 2) patch pixels) on patches cut by `cut`. Corners and every other point are
    returned unchanged; a face with a non-finite eye point is returned as it is.
    Raises ValueError for a layout without face88's 8-point eyes."""
    if not has_face88_eyes(scheme):
        raise ValueError(f"eye refinement needs face88's 8-point eyes; {scheme.name} has others")
    out = [np.array(p, np.float64) for p in faces]
    regions = (scheme.region_slice("left_eye"), scheme.region_slice("right_eye"))
    usable = [i for i, p in enumerate(out) if np.isfinite(p[np.r_[regions]]).all()]
    if not usable:
        return out
    patches, transforms = eye_patches(cut, [out[i] for i in usable], scheme)
    prior = np.stack([to_patch(transforms[2 * k + side], out[i][region], side == 1)
                      for k, i in enumerate(usable) for side, region in enumerate(regions)])
    patch_points = np.asarray(network(normalise_crop(patches), prior.astype(np.float32)), np.float64)
    lids = np.array(EYE_LIDS)
    for k, i in enumerate(usable):
        for side, region in enumerate(regions):
            j = 2 * k + side
            out[i][region.start + lids] = from_patch(transforms[j], patch_points[j], side == 1)[lids]
    return out


def has_face88_eyes(scheme) -> bool:
    """Whether a layout has face88's two 8-point eye regions."""
    names = scheme.region_names
    return "left_eye" in names and "right_eye" in names and all(
        len(range(scheme.num_points)[scheme.region_slice(e)]) == 8 for e in ("left_eye", "right_eye"))


EYES_FORMAT = "facemark-eye-refiner-onnx"
EYES_VERSION = 1
BUILTIN_EYES = Path(__file__).resolve().parents[1] / "weights" / "eyes.onnx"


class EyeRefinerNetwork:
    """The eye refiner run by onnxruntime: `facemark/weights/eyes.onnx` unless another file is given (written by
    facemark.train.eye_model.export_onnx). Calls take (M, 3, 40, 64) float32 patches in [-1, 1] and the
    landmark network's (M, 8, 2) eye points in patch pixels, and return (M, 8, 2) float32 points in patch
    pixels. Raises OnnxModelError for a missing, damaged or foreign file."""

    def __init__(self, model: str | Path = BUILTIN_EYES, *, threads: int | None = None):
        from facemark.network import OnnxModelError, onnx_session

        path = Path(model)
        if not path.is_file():
            raise OnnxModelError(f"no eye refiner file {path}")
        self.session = onnx_session(path, threads, str(path))
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("facemark_format") != EYES_FORMAT or meta.get("facemark_version") != str(EYES_VERSION):
            raise OnnxModelError(f"{path} is not a facemark eye refiner (version {EYES_VERSION})")
        w, h = EYE_PATCH_SIZE
        inputs = {i.name: list(i.shape[1:]) for i in self.session.get_inputs()}
        if inputs.get("patches") != [3, h, w] or inputs.get("prior", [8, 2]) != [8, 2]:
            raise OnnxModelError(f"{path}: the eye refiner must take N×3×{h}×{w} patches (and N×8×2 prior points)")
        self.takes_prior = "prior" in inputs
        self.metrics = json.loads(meta.get("facemark_metrics", "{}"))

    def __call__(self, x: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """(M, 3, 40, 64) patches in [-1, 1] and (M, 8, 2) prior eye points in patch pixels -> (M, 8, 2) points."""
        feed = {"patches": np.ascontiguousarray(x, dtype=np.float32)}
        if self.takes_prior:
            feed["prior"] = np.ascontiguousarray(prior, dtype=np.float32)
        (points,) = self.session.run(None, feed)
        return points
