"""BlazeFace (Google MediaPipe's face detector) on onnxruntime; weights: Apache-2.0 (see LICENSE-weights.md)."""

from facemark.detection.blazeface.detector import MODELS, BlazeFaceDetector, anchor_centres

__all__ = ["MODELS", "BlazeFaceDetector", "anchor_centres"]
