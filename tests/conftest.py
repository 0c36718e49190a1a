"""Shared fixtures: the real-data folder beside the repository and the teacher's labels of the sample image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.png"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`; tests using it skip when it is absent, or fail when FACEMARK_REQUIRE_SHARED=1 (CI)."""
    if not SHARED_DATA.is_dir():
        message = f"shared data folder {SHARED_DATA} is absent"
        if os.environ.get("FACEMARK_REQUIRE_SHARED") == "1":
            pytest.fail(message + " and FACEMARK_REQUIRE_SHARED=1")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def astronaut_labels() -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, (88, 2) face88 points) of examples/astronaut.png, labelled once by MediaPipe."""
    pytest.importorskip("mediapipe")
    from facemark.images import load_image
    from facemark.teacher import MediaPipeTeacher

    rgb = load_image(ASTRONAUT)
    teacher = MediaPipeTeacher()
    try:
        result = teacher.label(rgb)
    finally:
        teacher.close()
    assert result.points is not None, f"the teacher found no face in {ASTRONAUT}: {result.error}"
    points = np.asarray(result.points, dtype=np.float64)
    assert points.shape == (88, 2) and np.isfinite(points).all()
    rgb.setflags(write=False)  # shared by the whole session: nobody may change it
    points.setflags(write=False)
    return rgb, points
