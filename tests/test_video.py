"""Video: One-Euro smoothing, face tracking and `run_video` on small clips made from examples/astronaut.png.

The clips are real encoded videos (OpenCV's mp4v): a 256×256 window sliding over the astronaut image, so the
face moves by a known number of pixels per frame. Assertions on points only ask for "on the face, moving with
it" (a fraction of the face's size), not for a particular model's accuracy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from facemark.images import load_image
from facemark.smoothing import OneEuroFilter
from facemark.tracking import FaceTracker, TrackerConfig
from facemark.video import VideoError, run_video

ASTRONAUT = Path(__file__).parents[1] / "examples" / "astronaut.png"
# Where the face lies in examples/astronaut.png (pixel-centre): eye centres and mouth centre (hand-checked,
# as in test_detection.py), and a region the whole face lies in.
ASTRONAUT_EYES_MOUTH = np.array([[203.0, 101.0], [247.0, 103.0], [223.0, 141.0]])
ASTRONAUT_FACE_REGION = (140.0, 30.0, 310.0, 240.0)
SIZE = 256  # clip frame side
FPS = 25.0
STEP = np.array([2.0, 1.0])  # the face's motion per frame in the moving clip (pixels, x right, y down)


@pytest.fixture(scope="module")
def landmarker():
    from facemark.api import Landmarker

    return Landmarker()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return load_image(ASTRONAUT)


def window(rgb: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i of the moving clip (RGB) and the offset that maps image points into it (add to points)."""
    x0, y0 = (np.array([100.0, 40.0]) - STEP * i).astype(int)
    return rgb[y0:y0 + SIZE, x0:x0 + SIZE], -np.array([x0, y0], dtype=np.float64)


def write_clip(path: Path, frames: list[np.ndarray], fps: float = FPS, fourcc: str = "mp4v") -> Path:
    """RGB frames -> a video file."""
    height, width = frames[0].shape[:2] if frames else (SIZE, SIZE)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def video_props(path: Path) -> tuple[int, int, int, float]:
    """(frames actually decoded, width, height, fps) of a video file."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames, width, height, fps


def inside(points: np.ndarray, box, pad: float = 0.0) -> np.ndarray:
    return ((points[:, 0] >= box[0] - pad) & (points[:, 0] <= box[2] + pad)
            & (points[:, 1] >= box[1] - pad) & (points[:, 1] <= box[3] + pad))


# ------------------------------------------------------------------------------------------- One-Euro


def test_one_euro_keeps_a_constant_signal():
    f = OneEuroFilter(min_cutoff=1.0, beta=5.0, d_cutoff=1.0, frequency=30)
    x = np.array([[10.0, -3.5], [200.25, 7.0]])
    for _ in range(50):
        np.testing.assert_allclose(f(x), x, atol=1e-12)


def test_one_euro_reduces_noise():
    rng = np.random.default_rng(0)
    truth = np.array([[50.0, 80.0]] * 20)  # (P, 2), P = 20 points
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5, d_cutoff=1.0, frequency=30)
    raw, out = [], []
    for _ in range(300):
        noisy = truth + rng.normal(0.0, 2.0, truth.shape)
        raw.append(noisy)
        out.append(f(noisy, scale=100.0))
    raw, out = np.array(raw[30:]), np.array(out[30:])  # after the start-up
    assert out.std(axis=0).mean() < raw.std(axis=0).mean() / 3
    assert np.abs(out.mean(axis=0) - truth).max() < 0.5  # no bias


def test_one_euro_follows_a_ramp_and_a_step_without_large_lag():
    # a face moving at 300 px/s (10 px per frame at 30 fps), face size 100 px: 3 face sizes per second
    f = OneEuroFilter(min_cutoff=1.0, beta=2.0, d_cutoff=1.0, frequency=30)
    lag = []
    for i in range(60):
        x = np.array([[10.0 * i, 5.0 * i]])
        lag.append(np.linalg.norm(f(x, scale=100.0) - x))
    assert max(lag[20:]) < 10.0  # under one frame's motion once the speed estimate has settled
    # a slow filter (beta = 0) lags far more: the speed adaptation is what keeps up
    slow = OneEuroFilter(min_cutoff=1.0, beta=0.0, frequency=30)
    slow_lag = [np.linalg.norm(slow(np.array([[10.0 * i, 5.0 * i]])) - [10.0 * i, 5.0 * i]) for i in range(60)]
    assert slow_lag[-1] > 3 * lag[-1]

    # a step of 50 px: caught up to within 1 px after a second
    f = OneEuroFilter(min_cutoff=1.0, beta=2.0, d_cutoff=1.0, frequency=30)
    for _ in range(10):
        f(np.zeros((3, 2)), scale=100.0)
    errors = [np.abs(f(np.full((3, 2), 50.0), scale=100.0) - 50.0).max() for _ in range(30)]
    assert errors[-1] < 1.0
    assert all(a >= b for a, b in zip(errors, errors[1:]))  # monotone approach, no overshoot


def test_one_euro_timestamps_and_reset():
    # with timestamps, a missing frame (a gap of two periods) moves the estimate further than one period
    a = OneEuroFilter(min_cutoff=1.0, frequency=30)
    b = OneEuroFilter(min_cutoff=1.0, frequency=30)
    for f in (a, b):
        f(np.zeros((1, 2)), 0.0)
    one = a(np.ones((1, 2)), 1 / 30)
    two = b(np.ones((1, 2)), 2 / 30)
    assert 0 < one[0, 0] < two[0, 0] < 1
    # no timestamps: 1 / frequency, the same as regular timestamps
    c = OneEuroFilter(min_cutoff=1.0, frequency=30)
    c(np.zeros((1, 2)))
    np.testing.assert_allclose(c(np.ones((1, 2))), one)
    a.reset()
    np.testing.assert_array_equal(a(np.full((1, 2), 7.0), 5.0), [[7.0, 7.0]])  # passes through after reset


def test_one_euro_nan_points_leave_the_others_alone():
    f = OneEuroFilter(min_cutoff=1.0, frequency=30)
    f(np.array([[0.0, 0.0], [5.0, 5.0]]))
    out = f(np.array([[np.nan, np.nan], [5.0, 5.0]]))
    assert np.isnan(out[0]).all() and np.allclose(out[1], 5.0)
    out = f(np.array([[0.0, 0.0], [5.0, 5.0]]))
    assert np.isfinite(out).all()


def test_one_euro_rejects_bad_parameters():
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)
    with pytest.raises(ValueError, match="beta"):
        OneEuroFilter(beta=-1)


# ------------------------------------------------------------------------------------------- tracking


def test_tracker_follows_the_moving_face_with_few_detector_calls(landmarker, astronaut):
    tracker = FaceTracker(landmarker, TrackerConfig(smooth=False, detect_every=30), frequency=FPS)
    means, offsets = [], []
    for i in range(20):
        frame, offset = window(astronaut, i)
        faces = tracker.update(frame, i / FPS)
        assert len(faces) == 1, f"frame {i}: {len(faces)} faces"
        face = faces[0]
        assert face.track == 1
        assert face.points.shape == (landmarker.scheme.num_points, 2)
        region = np.array(ASTRONAUT_FACE_REGION) + np.tile(offset, 2)
        assert inside(face.points, region, pad=10).mean() > 0.9, f"frame {i}: points off the face"
        means.append(face.points.mean(axis=0))
        offsets.append(offset)
    assert tracker.stats.detector_calls <= 2  # the first frame, and at most one check
    # The mean point moves with the face, (2, 1) px per frame: its fitted speed within a quarter of that, and
    # no frame off by more than a quarter of the distance between the eye centres (the placeholder model
    # wobbles by several pixels).
    moved = np.array(means) - means[0]
    expected = np.array(offsets) - offsets[0]
    speed = np.polyfit(np.arange(20), moved, 1)[0]
    np.testing.assert_allclose(speed, STEP, atol=0.5)
    tolerance = 0.25 * np.linalg.norm(ASTRONAUT_EYES_MOUTH[1] - ASTRONAUT_EYES_MOUTH[0])  # 11 px
    assert np.abs(moved - expected).max() < tolerance, np.round(moved - expected, 1)


def test_tracker_finds_two_faces_and_keeps_their_ids(landmarker, astronaut):
    tracker = FaceTracker(landmarker, TrackerConfig(detect_every=30))
    ids = []
    for i in range(8):
        left, _ = window(astronaut, i)
        right, _ = window(astronaut, 7 - i)
        faces = tracker.update(np.ascontiguousarray(np.concatenate([left, right], axis=1)))
        assert len(faces) == 2, f"frame {i}: {len(faces)} faces"
        ids.append(sorted(f.track for f in faces))
        xs = sorted(f.points[:, 0].mean() for f in faces)
        assert xs[0] < SIZE < xs[1]  # one face in each half
    assert all(i == ids[0] for i in ids) and len(set(ids[0])) == 2
    assert tracker.stats.detector_calls <= 2


def test_tracker_picks_up_a_face_that_enters_at_the_next_periodic_detection(landmarker, astronaut):
    tracker = FaceTracker(landmarker, TrackerConfig(detect_every=5))
    grey = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
    counts = []
    for i in range(12):
        right = window(astronaut, i)[0] if i >= 3 else grey  # the second face enters at frame 3
        counts.append(len(tracker.update(np.ascontiguousarray(np.concatenate([window(astronaut, i)[0], right],
                                                                             axis=1)))))
    # detections at frames 0, 5, 10 (unless a track looked lost): the newcomer is found at frame 5 at the latest
    assert counts[:3] == [1, 1, 1] and counts[5:] == [2] * 7
    assert tracker.stats.detector_calls <= 5


# ------------------------------------------------------------------------------------------- run_video


def test_run_video_output_matches_input(landmarker, astronaut, tmp_path):
    frames = [window(astronaut, i)[0] for i in range(20)]
    clip = write_clip(tmp_path / "moving.mp4", frames)
    out, jsonl = tmp_path / "out" / "drawn.mp4", tmp_path / "out" / "points.jsonl"
    summary = run_video(landmarker, clip, out, json_path=jsonl, progress=False)

    assert video_props(out) == (20, SIZE, SIZE, pytest.approx(FPS))
    assert summary.frames == 20 and (summary.width, summary.height) == (SIZE, SIZE)
    assert summary.video_fps == pytest.approx(FPS)
    assert summary.faces_per_frame == 1.0 and summary.tracks == 1
    assert 1 <= summary.detector_calls <= 2
    assert summary.fps > 0 and summary.seconds > 0
    # the drawing changed the frames (points are drawn), but not beyond recognition
    capture = cv2.VideoCapture(str(out))
    drawn = cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB)
    capture.release()
    difference = np.abs(drawn.astype(int) - frames[0].astype(int)).max(axis=2)
    assert 0.005 < (difference > 60).mean() < 0.2

    records = read_jsonl(jsonl)
    assert [r["frame"] for r in records] == list(range(20))
    np.testing.assert_allclose([r["time"] for r in records], np.arange(20) / FPS, atol=1e-3)
    for i, record in enumerate(records):
        assert len(record["faces"]) == 1
        face = record["faces"][0]
        assert face["track"] == 1 and len(face["box"]) == 4
        points = np.array(face["points"])
        assert points.shape == (landmarker.scheme.num_points, 2)
        region = np.array(ASTRONAUT_FACE_REGION) + np.tile(window(astronaut, i)[1], 2)
        assert inside(points, region, pad=10).mean() > 0.9
    # nothing else was left in the output folder (no temporary files)
    assert sorted(p.name for p in out.parent.iterdir()) == ["drawn.mp4", "points.jsonl"]


def test_run_video_recovers_a_face_after_blank_frames(landmarker, astronaut, tmp_path):
    grey = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
    frames = [window(astronaut, i)[0] for i in range(8)] + [grey] * 5 + [window(astronaut, i)[0] for i in range(8, 20)]
    clip = write_clip(tmp_path / "gap.mp4", frames)
    jsonl = tmp_path / "gap.jsonl"
    summary = run_video(landmarker, clip, None, json_path=jsonl, progress=False)
    counts = [len(r["faces"]) for r in read_jsonl(jsonl)]
    assert len(counts) == 25
    assert counts[:8] == [1] * 8
    assert counts[8:13] == [0] * 5, "a face reported on a blank frame"
    assert counts[13:] == [1] * 12, "the face was not found again after the blank frames"
    # the detector ran on the blank frames (no track) but not on every face frame
    assert 6 <= summary.detector_calls <= 10
    # the returning face lies where the window puts it
    face = read_jsonl(jsonl)[13]["faces"][0]
    region = np.array(ASTRONAUT_FACE_REGION) + np.tile(window(astronaut, 8)[1], 2)
    assert inside(np.array(face["points"]), region, pad=10).mean() > 0.9


def test_run_video_drops_a_face_replaced_by_other_content(landmarker, astronaut, tmp_path):
    # a cut from the face to a part of the picture without a face (the flag and the background at the top right)
    background = np.ascontiguousarray(astronaut[0:SIZE, 512 - SIZE:512])
    frames = [window(astronaut, i)[0] for i in range(6)] + [background] * 6
    clip = write_clip(tmp_path / "cut.mp4", frames)
    jsonl = tmp_path / "cut.jsonl"
    run_video(landmarker, clip, None, json_path=jsonl, progress=False)
    counts = [len(r["faces"]) for r in read_jsonl(jsonl)]
    assert counts[:6] == [1] * 6 and counts[6:] == [0] * 6


def test_run_video_smoothing_is_optional(landmarker, astronaut, tmp_path):
    clip = write_clip(tmp_path / "moving.mp4", [window(astronaut, i)[0] for i in range(10)])
    runs = {}
    for smooth in (True, False):
        jsonl = tmp_path / f"smooth{smooth}.jsonl"
        run_video(landmarker, clip, None, json_path=jsonl, smooth=smooth, progress=False)
        runs[smooth] = np.array([r["faces"][0]["points"] for r in read_jsonl(jsonl)])
    np.testing.assert_allclose(runs[True][0], runs[False][0], atol=0.01)  # the filter starts on the sample
    assert np.abs(runs[True][1:] - runs[False][1:]).max() > 0.1  # and smooths afterwards


# ------------------------------------------------------------------------------------------- errors


def assert_one_line_error(excinfo, path: Path, *words: str):
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message


def test_missing_file_is_a_clear_error(landmarker, tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoError) as excinfo:
        run_video(landmarker, missing, tmp_path / "out.mp4", json_path=tmp_path / "out.jsonl", progress=False)
    assert_one_line_error(excinfo, missing, "no such file")
    assert isinstance(excinfo.value, ValueError)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, words", [
    (b"this is a text file, not a video\n", ("not a video", "text")),
    (b"", ("empty",)),
])
def test_a_file_that_is_not_a_video_is_a_clear_error(landmarker, tmp_path, content, words):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(content)
    with pytest.raises(VideoError) as excinfo:
        run_video(landmarker, fake, tmp_path / "out.mp4", json_path=tmp_path / "out.jsonl", progress=False)
    assert_one_line_error(excinfo, fake, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4"]


def test_a_video_without_frames_is_a_clear_error(landmarker, tmp_path):
    empty = write_clip(tmp_path / "empty.avi", [], fourcc="MJPG")  # a valid AVI header, zero frames
    with pytest.raises(VideoError) as excinfo:
        run_video(landmarker, empty, tmp_path / "out.mp4", json_path=tmp_path / "out.jsonl", progress=False)
    assert_one_line_error(excinfo, empty, "no frames")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.avi"]


class FailingLandmarker:
    """A real landmarker whose network fails after a few calls, as a crash (or Ctrl-C) halfway would."""

    def __init__(self, landmarker, calls: int):
        self._landmarker, self._calls = landmarker, calls

    def __getattr__(self, name):
        return getattr(self._landmarker, name)

    def predict_crops(self, crops):
        self._calls -= 1
        if self._calls < 0:
            raise KeyboardInterrupt
        return self._landmarker.predict_crops(crops)


def test_no_partial_output_after_a_failure_halfway(landmarker, astronaut, tmp_path):
    clip = write_clip(tmp_path / "moving.mp4", [window(astronaut, i)[0] for i in range(12)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(KeyboardInterrupt):
        run_video(FailingLandmarker(landmarker, calls=6), clip, out_dir / "drawn.mp4",
                  json_path=out_dir / "points.jsonl", progress=False)
    assert list(out_dir.iterdir()) == []
    # an earlier complete output under the same name is left as it was
    (out_dir / "points.jsonl").write_text("earlier\n")
    with pytest.raises(KeyboardInterrupt):
        run_video(FailingLandmarker(landmarker, calls=6), clip, None, json_path=out_dir / "points.jsonl",
                  progress=False)
    assert sorted(os.listdir(out_dir)) == ["points.jsonl"]
    assert (out_dir / "points.jsonl").read_text() == "earlier\n"


def test_bad_output_arguments(landmarker, astronaut, tmp_path):
    clip = write_clip(tmp_path / "moving.mp4", [window(astronaut, i)[0] for i in range(2)])
    with pytest.raises(ValueError, match="must end in"):
        run_video(landmarker, clip, tmp_path / "out.avi", progress=False)
    with pytest.raises(ValueError, match="overwrite the input"):
        run_video(landmarker, clip, clip, progress=False)
    with pytest.raises(ValueError, match="nothing to write"):
        run_video(landmarker, clip, None, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moving.mp4"]


def test_cli_error_for_a_broken_video_is_one_line_even_from_ffmpeg(tmp_path):
    """FFmpeg's own log line ("moov atom not found") must not come before facemark's one-line error."""
    import subprocess
    import sys

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    result = subprocess.run([sys.executable, "-m", "facemark", "video", str(broken), "--out",
                             str(tmp_path / "out.mp4"), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("facemark video: error:") and not (tmp_path / "out.mp4").exists()
