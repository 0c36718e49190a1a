"""YuNet (OpenCV model zoo's face detector) on onnxruntime; weights: MIT (see LICENSE-weights.md)."""

from facemark.detection.yunet.detector import YuNetDetector

__all__ = ["YuNetDetector"]
