"""MediaPipe's face detector (BlazeFace, full-range model) behind the FaceDetector interface.

Needs the `label` extra (mediapipe==0.10.21, whose wheel ships the model, so it runs offline). MediaPipe
gives boxes relative to the image (0..1 from edge to edge); we convert them to pixel-centre pixels.
Its six keypoints (eyes, nose tip, mouth centre, ear tragions) are not the five `Detection.keypoints`
asks for (eyes, nose, mouth corners), so `keypoints` is None.
"""

from __future__ import annotations

import os

import numpy as np

from facemark.detection.core import Detection, FaceDetector, check_image

MEDIAPIPE_VERSION = "0.10.21"
MISSING_MEDIAPIPE = ("the MediaPipe face detector needs the 'label' extra: pip install 'facemark[label]' "
                     f"(mediapipe=={MEDIAPIPE_VERSION})")


def _import_mediapipe():
    # MediaPipe's C++ side logs a few lines per process on stderr; keep them out of the user's output
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe  # heavy: imported only when this detector is created
    except ImportError:
        raise RuntimeError(MISSING_MEDIAPIPE) from None
    return mediapipe


class MediaPipeDetector(FaceDetector):
    """BlazeFace via `mp.solutions.face_detection`.

    min_detection_confidence: faces scoring below this are dropped.
    full_range: the full-range model (faces up to ~5 m from the camera, model_selection=1); False picks the
        short-range one (faces within ~2 m, larger in the frame).
    """

    # Medians over 477 CelebA faces (of 500; it missed 23) of where the box of their face88 teacher points lies
    # relative to BlazeFace's box (see FaceDetector.LANDMARK_BOX): narrower, shorter and lower. Mean IoU with
    # the points' box: 0.64 as detected, 0.80 mapped.
    LANDMARK_BOX = (-0.003, 0.099, 0.826, 0.815)

    def __init__(self, min_detection_confidence: float = 0.5, full_range: bool = True):
        mp = _import_mediapipe()
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1 if full_range else 0, min_detection_confidence=min_detection_confidence)

    def detect(self, image: np.ndarray) -> list[Detection]:
        if self._detector is None:
            raise RuntimeError("this MediaPipeDetector was closed")
        rgb = check_image(image)
        height, width = rgb.shape[:2]
        result = self._detector.process(rgb)
        found = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            # relative edge coordinates -> pixel edges -> pixel centres (minus half a pixel)
            box = (b.xmin * width - 0.5, b.ymin * height - 0.5,
                   (b.xmin + b.width) * width - 0.5, (b.ymin + b.height) * height - 0.5)
            found.append(Detection(tuple(float(v) for v in box), float(d.score[0]), None))
        return sorted(found, key=lambda d: d.score, reverse=True)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None
