"""The face-detector plug-in layer: one result type, one base class, one factory.

Every detector takes an RGB uint8 H×W×3 array and returns `Detection`s sorted by score, highest first,
in image pixels with the pixel-centre convention (the centre of the top-left pixel is (0, 0)).
Detectors live one per module or folder (`mtcnn/`, `mediapipe_detector.py`) and are created by name:

    detector = create_detector("mtcnn", min_face_size=20)
    for d in detector.detect(rgb): ...
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels, pixel-centre convention
    score: float  # the detector's confidence, 0..1
    keypoints: np.ndarray | None = None  # (5, 2): eyes, nose tip, mouth corners, in image order (left first)


class FaceDetector(ABC):
    """Base class of all face detectors."""

    # How this detector's box relates to the tight box around a face's landmarks (what the landmark network
    # is framed on): (centre shift x, centre shift y) in units of the box's width/height, then (width,
    # height) ratios. Each detector measures its own; identity here.
    LANDMARK_BOX = (0.0, 0.0, 1.0, 1.0)

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 H×W×3 image, sorted by score descending ([] when there are none)."""

    def landmark_box(self, box) -> tuple[float, float, float, float]:
        """A detection box turned into an estimate of the box around the face's landmarks."""
        x0, y0, x1, y1 = (float(v) for v in box)
        dx, dy, sw, sh = self.LANDMARK_BOX
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2 + dx * w, (y0 + y1) / 2 + dy * h
        return cx - sw * w / 2, cy - sh * h / 2, cx + sw * w / 2, cy + sh * h / 2

    def close(self) -> None:
        """Free what the detector holds (a native graph, say); the detector is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_image(image) -> np.ndarray:
    """`image` as a C-contiguous RGB uint8 H×W×3 array, or a ValueError saying what is wrong with it."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        what = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise ValueError(f"a face detector needs an RGB uint8 H×W×3 array, got a {what} "
                         "(facemark.images.load_image converts files, PIL images and other arrays)")
    return np.ascontiguousarray(image)


# name -> (module, class); imported only when asked for, so unused back ends cost nothing
DETECTORS = {
    "mtcnn": ("facemark.detection.mtcnn", "MTCNNDetector"),
    "mediapipe": ("facemark.detection.mediapipe_detector", "MediaPipeDetector"),
}


def create_detector(name: str, **kwargs) -> FaceDetector:
    """A detector by name ("mtcnn", "mediapipe"); keyword arguments go to its constructor."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}")
    module, cls = DETECTORS[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)
