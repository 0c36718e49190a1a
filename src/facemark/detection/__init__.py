"""Face detectors behind one interface: `create_detector("mtcnn").detect(rgb) -> list[Detection]`."""

from facemark.detection.core import DETECTORS, Detection, FaceDetector, Look, create_detector

__all__ = ["DETECTORS", "Detection", "FaceDetector", "Look", "create_detector"]
