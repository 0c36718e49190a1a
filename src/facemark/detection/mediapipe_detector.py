"""MediaPipe's face detector (BlazeFace, full-range model) behind the FaceDetector interface.

Needs the `label` extra (mediapipe==0.10.21, whose wheel ships the model, so it runs offline). MediaPipe
gives boxes relative to the image (0..1 from edge to edge); we convert them to pixel-centre pixels.
Its six keypoints, as `Detection.keypoints` (6, 2): the eyes (the image's left one first), nose tip, mouth
centre, ear tragions (the image's left one first), as facemark's own `blazeface` detector gives them.
"""

from __future__ import annotations

import numpy as np

from facemark.detection.core import Detection, FaceDetector, Look, check_image
from facemark.extras import import_mediapipe

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
        mp = import_mediapipe()
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1 if full_range else 0, min_detection_confidence=min_detection_confidence)

    def detect(self, image: np.ndarray, look: Look | None = None) -> list[Detection]:
        """As FaceDetector.detect; the Look is not used (MediaPipe's graph chooses its own scale)."""
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
            keypoints = np.array([[k.x * width - 0.5, k.y * height - 0.5]
                                  for k in d.location_data.relative_keypoints], np.float64).reshape(-1, 2)
            found.append(Detection(tuple(float(v) for v in box), float(d.score[0]), keypoints))
        return sorted(found, key=lambda d: d.score, reverse=True)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None
