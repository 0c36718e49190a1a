"""Teachers: models that label images with face88 points for training.

The MediaPipe teacher runs Face Mesh (mediapipe==0.10.21, refine_landmarks, static images; its model ships in
the wheel, so it runs offline) and picks 88 of its 478 mesh vertices with the mapping of face88.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from facemark.scheme import FACE88

# Mesh vertex for each face88 point, in face88 order (../shared/docs/face88.md).
MEDIAPIPE_TO_FACE88 = np.array([
    # face_profile
    234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454,
    # left_eye, right_eye
    33, 160, 159, 158, 133, 153, 145, 144,
    362, 385, 386, 387, 263, 373, 374, 380,
    # left_eyebrow, right_eyebrow
    70, 63, 105, 66, 107, 65, 52, 53,
    336, 296, 334, 293, 300, 283, 282, 295,
    # mouth: outer contour (12), inner contour (10)
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91, 80, 82, 13, 312, 310, 318, 317, 14, 87, 88,
    # nose: ridge (4), base (9)
    168, 197, 5, 4, 129, 64, 98, 97, 2, 326, 327, 294, 358,
])
assert len(MEDIAPIPE_TO_FACE88) == FACE88.num_points

MEDIAPIPE_VERSION = "0.10.21"
MISSING_MEDIAPIPE = ("MediaPipe is not installed: the teacher and the mediapipe detector need the 'label' "
                     f"extra: pip install 'facemark[label]' (mediapipe=={MEDIAPIPE_VERSION})")


@dataclass
class TeacherResult:
    points: np.ndarray | None  # (88, 2) pixel-centre coordinates, or None when no face was found
    box: tuple[float, float, float, float] | None  # box around the whole mesh
    error: str | None = None


def import_mediapipe():
    # MediaPipe's C++ side logs a few warnings per process on stderr; keep the progress bar readable
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe  # heavy: imported only when a teacher or the mediapipe detector is created
    except ImportError:
        raise RuntimeError(MISSING_MEDIAPIPE) from None
    return mediapipe


def mesh_to_pixels(landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe's normalised coordinates (0..1 from image edge to edge) -> pixel-centre pixels."""
    xy = np.array([(lm.x, lm.y) for lm in landmarks], dtype=np.float64)
    xy[:, 0] = xy[:, 0] * width - 0.5
    xy[:, 1] = xy[:, 1] * height - 0.5
    return xy


class MediaPipeTeacher:
    source = f"mediapipe-{MEDIAPIPE_VERSION}"

    def __init__(self, max_faces: int = 1):
        mp = import_mediapipe()
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=max_faces,
            min_detection_confidence=0.5)

    def label(self, rgb: np.ndarray) -> TeacherResult:
        """face88 points of the most prominent face in an RGB uint8 image."""
        height, width = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        if not result.multi_face_landmarks:
            return TeacherResult(None, None, "no face found by the teacher")
        mesh = mesh_to_pixels(result.multi_face_landmarks[0].landmark, width, height)
        x0, y0 = mesh.min(axis=0)
        x1, y1 = mesh.max(axis=0)
        return TeacherResult(mesh[MEDIAPIPE_TO_FACE88], (float(x0), float(y0), float(x1), float(y1)))

    def label_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """face88 points of every face the mesh finds (up to max_faces), in the mesh's order."""
        height, width = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        return [mesh_to_pixels(face.landmark, width, height)[MEDIAPIPE_TO_FACE88]
                for face in result.multi_face_landmarks or []]

    def close(self):
        self._mesh.close()


TEACHERS = {"mediapipe": MediaPipeTeacher}


def create_teacher(name: str):
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; known: {', '.join(TEACHERS)}")
    return TEACHERS[name]()
