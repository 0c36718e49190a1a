"""The one public entry point: `Landmarker(...).detect(image) -> list[Face]`.

A face detector finds boxes; each box is turned into the framing the landmark network was trained on,
cropped, and the network's points are mapped back to the image. Detector boxes and the network's framing
(a square around the *points'* box) differ, so a second pass re-frames the crop on the first pass's points:
the network then sees faces framed exactly as in training.

Very large images (a 12000×12000 scan) given as a file or a PIL image are never decoded whole into an array:
the detector sees a shrunk copy, and each face is cut from the image decoded at the smallest size that keeps it
sharp (a JPEG file at 1/2, 1/4 or 1/8 size by libjpeg, nearly free; other formats are decoded once, whole, and
cut from without further copies). Points always come in full-resolution pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facemark.detection.core import Detection
from facemark.images import ImageReader, load_image
from facemark.model import predict_crops
from facemark.preprocessing import CropTransform, box_from_points, crop_image, square_crop_transform
from facemark.scheme import Scheme

# Files and PIL images with a longer side above this take the reduced path (see the module docstring); the
# detector then sees a copy shrunk to its own `max_side` (MTCNN: 640), or to this side if it has none. Up to
# this size (a 12-MP phone photo, 4032×3024) the image is decoded whole and everything runs on it, as before.
LARGE_IMAGE_SIDE = 4096
# On the reduced path a face is cut from the smallest decode in which its crop square still spans this many
# pixels per crop pixel, so the crop's own antialiased resize does the last shrinking. Measured on the upscaled
# sample with the same boxes, the worst point moves 0.07-0.09% of the face's size from the full-resolution
# crop's (0.10-0.14% at 1.0, 0.7% at 0.5); the detector's box, found on a differently shrunk copy, moves it more
# (tests/test_huge_images.py).
CROP_DETAIL = 2.0

Cropper = Callable[[CropTransform], np.ndarray]  # a full-resolution crop transform -> its S×S×3 uint8 crop


@dataclass(repr=False)
class Face:
    """One face: its detector box and score, and its landmarks in image pixels.

    Left and right are the image's: "left_eye" is the eye on the image's left, which is the subject's right
    eye (as in the 300-W / iBUG convention)."""

    box: tuple[float, float, float, float]  # detector box x0, y0, x1, y1 (image pixels, pixel-centre convention)
    score: float  # detector confidence
    points: np.ndarray  # (P, 2) float image pixels, 0-based, pixel-centre convention
    scheme: Scheme

    def region(self, name: str) -> np.ndarray:
        """Points of one region, e.g. face.region("left_eye") (the eye on the image's left)."""
        return self.points[self.scheme.region_slice(name)]

    def __repr__(self) -> str:
        box = ", ".join(f"{float(v):.1f}" for v in self.box)
        return f"Face(box=({box}), score={float(self.score):.3f}, {len(self.points)} {self.scheme.name} points)"

    def to_dict(self) -> dict:
        return {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
                "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]}


class Landmarker:
    """Landmarks for every face in an image.

    model: a built-in name ("face88"), a weights file or an .onnx file. detector: "mtcnn" (built in) or
    "mediapipe" (needs the `label` extra). refine: re-frame each face on its first-pass points (more
    accurate, two network calls per face). backend: "torch", "onnx" or "auto" (onnxruntime when the `onnx`
    extra is installed: about 4× faster on a CPU). flip: average each prediction with that of the mirrored
    crop (about 4% lower NME, twice the network time).
    """

    def __init__(self, model: str | Path | None = None, detector: str = "mtcnn", refine: bool = True,
                 threads: int | None = None, backend: str = "auto", flip: bool = False):
        from facemark.detection import create_detector
        from facemark.export import load_network

        if threads:
            torch.set_num_threads(threads)
        self.network = load_network(model, backend=backend, threads=threads)
        self.scheme = self.network.scheme
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        self.refine = refine
        self.flip = flip
        self.crop_size = self.network.config.input_size

    def detect(self, image, *, bgr: bool = False) -> list[Face]:
        """Faces by descending score. `image`: a path, a PIL image or an H×W×3 uint8 array, RGB unless
        `bgr=True` (as OpenCV gives it). An RGB uint8 array is used as it is (not copied); a file or PIL image
        larger than LARGE_IMAGE_SIDE is never decoded whole into an array."""
        if bgr:
            image = np.ascontiguousarray(np.asarray(image)[..., ::-1])
        if isinstance(image, np.ndarray):
            rgb = image if _is_rgb(image) else load_image(image)
        else:
            reader = ImageReader(image)
            detect_side = getattr(self.detector, "max_side", LARGE_IMAGE_SIDE)  # None: it wants every pixel
            if max(reader.size) > LARGE_IMAGE_SIDE and detect_side is not None:
                return self._detect_large(reader, detect_side)
            rgb = reader.array()
        detections = self.detector.detect(rgb)
        boxes = [self.detector.landmark_box(d.box) for d in detections]
        points = self.landmarks_for_boxes(rgb, boxes)
        return [Face(d.box, d.score, p, self.scheme) for d, p in zip(detections, points)]

    def landmarks_for_boxes(self, rgb: np.ndarray, boxes) -> list[np.ndarray]:
        """Points for faces whose landmark boxes (≈ the box around their points) are known; all in one batch."""
        return self._landmarks(functools.partial(crop_image, rgb), boxes)

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """Points in crop pixels for a batch of (N, S, S, 3) uint8 crops."""
        return predict_crops(self.network, crops, flip=self.flip)

    def _detect_large(self, reader: ImageReader, detect_side: int) -> list[Face]:
        small, s = reader.downscaled(detect_side)
        detections = [_to_full_resolution(d, s) for d in self.detector.detect(small)]
        del small
        boxes = [self.detector.landmark_box(d.box) for d in detections]
        # each face from the smallest decode that keeps it sharp; one decode held at a time, smallest first
        reductions = [self._reduction_for(reader, b) for b in boxes]
        points: list[np.ndarray | None] = [None] * len(boxes)
        for r in sorted(set(reductions), reverse=True):
            faces = [i for i, ri in enumerate(reductions) if ri == r]
            found = self._landmarks(functools.partial(_reduced_crop, reader, r), [boxes[i] for i in faces])
            for i, p in zip(faces, found):
                points[i] = p
        return [Face(d.box, d.score, p, self.scheme) for d, p in zip(detections, points)]

    def _reduction_for(self, reader: ImageReader, box) -> int:
        """The largest reduction at which the face's first crop square keeps CROP_DETAIL pixels per crop pixel
        (the refined square is about as large, so it serves both passes)."""
        side = square_crop_transform(box, self.crop_size, self.network.config.margin).side
        return max(r for r in reader.reductions if r == 1 or side / r >= CROP_DETAIL * self.crop_size)

    def _landmarks(self, crop: Cropper, boxes) -> list[np.ndarray]:
        if len(boxes) == 0:
            return []
        margin = self.network.config.margin
        transforms = [square_crop_transform(b, self.crop_size, margin) for b in boxes]
        points = self._predict(crop, transforms)
        if self.refine:
            transforms = [square_crop_transform(box_from_points(p), self.crop_size, margin) for p in points]
            points = self._predict(crop, transforms)
        return points

    def _predict(self, crop: Cropper, transforms: list[CropTransform]) -> list[np.ndarray]:
        crops = np.stack([crop(t) for t in transforms])
        crop_points = self.predict_crops(crops)
        return [t.to_image(p) for t, p in zip(transforms, crop_points)]


def _is_rgb(image: np.ndarray) -> bool:
    return image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


def _to_full_resolution(d: Detection, s: float) -> Detection:
    """A detection in a copy shrunk by s, in full-resolution pixels: full = (small + 0.5) * s - 0.5."""
    box = tuple(float(v + 0.5) * s - 0.5 for v in d.box)
    keypoints = None if d.keypoints is None else (np.asarray(d.keypoints, np.float64) + 0.5) * s - 0.5
    return Detection(box, d.score, keypoints)


def _crop(region: Callable[[tuple[int, int, int, int]], np.ndarray], t: CropTransform) -> np.ndarray:
    """`crop_image(image, t)` for an image we only cut parts of: `region(box)` gives the pixels of an integer
    box (black outside the image), so the whole image is never converted (Pillow copies an array it is given).

    The part is one pixel wider on each side than the square's integer box: crop_image cuts that box out of it
    itself, so the crop is the one the whole image gives, whichever way the floats round."""
    left, top, right, bottom = t.edge_box()
    x0, y0 = math.floor(left) - 1, math.floor(top) - 1
    part = region((x0, y0, math.ceil(right) + 1, math.ceil(bottom) + 1))
    return crop_image(part, CropTransform(cx=t.cx - x0, cy=t.cy - y0, side=t.side, size=t.size))


def _reduced_crop(reader: ImageReader, reduction: int, t: CropTransform) -> np.ndarray:
    """The crop of full-resolution transform `t`, cut from the image decoded at 1/`reduction` size."""
    cx, cy = reader.to_reduced((t.cx, t.cy), reduction)
    reduced = CropTransform(cx=float(cx), cy=float(cy), side=t.side / reduction, size=t.size)
    return _crop(functools.partial(reader.region, reduction=reduction), reduced)
