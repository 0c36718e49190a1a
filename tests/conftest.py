"""Shared fixtures: the real-data folder beside the repository and the teacher's labels of the sample image.

In CI (`CI=true`, set by .ci/run) no test may skip: a test that would skip because ../shared/data or an
optional extra (mediapipe, onnx, dlib, ffmpeg, ...) is missing fails instead, with its skip reason on one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locations import ASTRONAUT, REPO, SHARED_DATA  # noqa: F401  (the fixtures below use them)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _skip_reason(longrepr) -> str:
    # a skip's longrepr is (path, line, "Skipped: reason"); anything else is shown as it is
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_the_skip(report) -> None:
    report.outcome = "failed"
    report.longrepr = f"CI=true forbids skipping; missing here: {_skip_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """CI: a skip (importorskip, a skipif mark, the shared_data fixture) becomes a failure naming what is missing."""
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_the_skip(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """CI: a module that skips as a whole (a module-level importorskip) fails its collection instead."""
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped:
        _fail_the_skip(report)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests run torch on one thread: results do not depend on the machine, and two cores stay enough."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`; tests using it skip when it is absent, or fail when FACEMARK_REQUIRE_SHARED=1 or CI=true."""
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
    from facemark.labels.teachers import MediaPipeTeacher

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


@pytest.fixture(scope="module")
def landmarker():
    """The default Landmarker (built-in face88, default detector) on one thread."""
    from facemark.landmarker import Landmarker

    return Landmarker(threads=1)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """examples/astronaut.png as an RGB uint8 array."""
    from facemark.images import load_image

    return load_image(ASTRONAUT)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, astronaut_labels):
    """A 64-px cache of ~40 real face crops: the astronaut under random shifts, zooms and small rotations,
    10 identities. Its label file and images lie beside it (`labels.jsonl`, `images/`)."""
    from facemark.labels.annotations import LabelRecord
    from facemark.labels.cache import build_cache, is_validation_identity

    rgb, points = astronaut_labels
    root = tmp_path_factory.mktemp("tiny")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    identities = [str(k) for k in range(10)]
    assert any(is_validation_identity(i, 0.3) for i in identities)
    assert not all(is_validation_identity(i, 0.3) for i in identities)
    labels = root / "labels.jsonl"
    with labels.open("w") as fh:
        for n in range(40):
            angle = np.radians(rng.uniform(-10, 10))
            scale = rng.uniform(0.8, 1.2)
            shift = rng.uniform(-20, 20, size=2)
            # image -> new image: p' = s R (p - c) + c + t, with c the image centre (pixel-centre coordinates)
            c = np.array([255.5, 255.5])
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * scale
            new_points = (points - c) @ rot.T + c + shift
            inv = np.linalg.inv(rot)
            # PIL wants the inverse map in pixel-edge coordinates: e_src = inv (e_dst - c' - t) + c'
            ce = c + 0.5
            offset = ce - inv @ (ce + shift)
            data = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
            Image.fromarray(rgb).transform((512, 512), Image.Transform.AFFINE, data,
                                           Image.Resampling.BILINEAR).save(images / f"{identities[n % 10]}_{n}.png")
            fh.write(LabelRecord(image=f"{identities[n % 10]}_{n}.png", points=new_points,
                                 width=512, height=512).to_json() + "\n")
    build_cache(labels, images, root / "cache", size=64, val_fraction=0.3, progress=False)
    return root / "cache"
