"""The one public entry point: `Landmarker(...).detect(image) -> list[Face]`.

A face detector finds boxes; each box is turned into the framing the landmark network was trained on,
cropped, and the network's points are mapped back to the image. Detector boxes and the network's framing
(a square around the *points'* box) differ, so a second pass re-frames the crop on the first pass's points:
the network then sees faces framed exactly as in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facemark.images import load_image
from facemark.model import predict_crops
from facemark.preprocessing import CropTransform, box_from_points, crop_image, square_crop_transform
from facemark.scheme import Scheme


@dataclass
class Face:
    box: tuple[float, float, float, float]  # detector box x0, y0, x1, y1 (image pixels, pixel-centre convention)
    score: float  # detector confidence
    points: np.ndarray  # (P, 2) float image pixels, 0-based, pixel-centre convention
    scheme: Scheme

    def region(self, name: str) -> np.ndarray:
        """Points of one region, e.g. face.region("left_eye")."""
        return self.points[self.scheme.region_slice(name)]

    def to_dict(self) -> dict:
        return {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
                "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]}


class Landmarker:
    """Landmarks for every face in an image.

    model: a built-in name ("face88"), a weights file or an .onnx file. detector: "mtcnn" (built in) or
    "mediapipe" (needs the `label` extra). refine: re-frame each face on its first-pass points (more
    accurate, two network calls per face). backend: "torch", "onnx" or "auto" (onnxruntime when the `onnx`
    extra is installed: about 4× faster on a CPU).
    """

    def __init__(self, model: str | Path | None = None, detector: str = "mtcnn", refine: bool = True,
                 threads: int | None = None, backend: str = "auto"):
        from facemark.detection import create_detector
        from facemark.export import load_network

        if threads:
            torch.set_num_threads(threads)
        self.network = load_network(model, backend=backend, threads=threads)
        self.scheme = self.network.scheme
        self.detector = create_detector(detector) if isinstance(detector, str) else detector
        self.refine = refine
        self.crop_size = self.network.config.input_size

    def detect(self, image, *, bgr: bool = False) -> list[Face]:
        """Faces by descending score. `image`: a path, a PIL image or an H×W×3 uint8 array, RGB unless
        `bgr=True` (as OpenCV gives it)."""
        if bgr:
            image = np.ascontiguousarray(np.asarray(image)[..., ::-1])
        rgb = load_image(image)
        detections = self.detector.detect(rgb)
        boxes = [d.box for d in detections]
        points = self.landmarks_for_boxes(rgb, [self.detector.landmark_box(b) for b in boxes])
        return [Face(d.box, d.score, p, self.scheme) for d, p in zip(detections, points)]

    def landmarks_for_boxes(self, rgb: np.ndarray, boxes) -> list[np.ndarray]:
        """Points for faces whose landmark boxes (≈ the box around their points) are known; all in one batch."""
        if len(boxes) == 0:
            return []
        transforms = [square_crop_transform(b, self.crop_size, self.network.config.margin) for b in boxes]
        points = self._predict(rgb, transforms)
        if self.refine:
            transforms = [square_crop_transform(box_from_points(p), self.crop_size, self.network.config.margin)
                          for p in points]
            points = self._predict(rgb, transforms)
        return points

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """Points in crop pixels for a batch of (N, S, S, 3) uint8 crops."""
        return predict_crops(self.network, crops)

    def _predict(self, rgb: np.ndarray, transforms: list[CropTransform]) -> list[np.ndarray]:
        crops = np.stack([crop_image(rgb, t) for t in transforms])
        crop_points = self.predict_crops(crops)
        return [t.to_image(p) for t, p in zip(transforms, crop_points)]
