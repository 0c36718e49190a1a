"""MTCNN (Zhang et al. 2016) on onnxruntime, with facenet-pytorch's pretrained weights (see LICENSE-weights.md)."""

from facemark.detection.mtcnn.detector import MTCNNDetector

__all__ = ["MTCNNDetector"]
