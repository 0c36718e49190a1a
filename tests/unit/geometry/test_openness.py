"""Eye and mouth openness (facemark.geometry.openness, Face, `facemark video`'s JSON and --plot): exact values on
constructed shapes, blinks found at known frames, and a synthetic clip whose eyes close at known frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facemark.cli import main
from facemark.geometry.openness import blink_threshold, eye_openness, find_blinks, mouth_openness
from facemark.layouts import FACE88, IBUG68

CLOSED_FRAMES = [(12, 15), (28, 30)]  # the synthetic clip's blinks, inclusive
FRAMES = 40


def face88_shape(eye_gap: float, mouth_gap: float) -> np.ndarray:
    """face88 points with eyes 30 px wide whose lids are `eye_gap` apart and inner lips `mouth_gap` apart."""
    p = np.zeros((88, 2))
    s = FACE88.region_slice
    for eye, x0 in (("left_eye", 100.0), ("right_eye", 170.0)):
        e = np.zeros((8, 2))
        e[0], e[4] = (x0, 100), (x0 + 30, 100)
        e[1:4] = [(x0 + 7.5 * k, 100 - eye_gap / 2) for k in (1, 2, 3)]  # upper lid, left to right
        e[5:8] = [(x0 + 7.5 * k, 100 + eye_gap / 2) for k in (3, 2, 1)]  # lower lid, right to left
        p[s(eye)] = e
    m = np.zeros((22, 2))
    m[0], m[6] = (110, 200), (190, 200)  # outer corners: 80 px wide
    m[12:17] = [(130 + 10 * k, 200 - mouth_gap / 2) for k in range(5)]  # inner upper, left to right
    m[17:22] = [(170 - 10 * k, 200 + mouth_gap / 2) for k in range(5)]  # inner lower, right to left
    p[s("mouth")] = m
    return p


def test_eye_aspect_ratio_and_mouth_openness_exact():
    p = face88_shape(eye_gap=9.0, mouth_gap=20.0)
    assert eye_openness(p) == pytest.approx([0.3, 0.3])
    assert mouth_openness(p) == pytest.approx(0.25)
    assert eye_openness(face88_shape(0.0, 0.0)) == pytest.approx([0.0, 0.0])
    # invariant to scale, shift and in-plane rotation
    a = np.radians(30)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = p @ r.T * 2.5 + [40, -7]
    assert eye_openness(q) == pytest.approx([0.3, 0.3]) and mouth_openness(q) == pytest.approx(0.25)
    # batches
    batch = np.stack([p, face88_shape(3.0, 0.0)])
    assert eye_openness(batch).shape == (2, 2) and eye_openness(batch)[1, 0] == pytest.approx(0.1)


def test_ibug68_layout():
    p = np.zeros((68, 2))
    s = IBUG68.region_slice
    for eye, x0 in (("left_eye", 0.0), ("right_eye", 60.0)):
        p[s(eye)] = [(x0, 0), (x0 + 10, -4), (x0 + 20, -4), (x0 + 30, 0), (x0 + 20, 4), (x0 + 10, 4)]
    mouth = np.zeros((20, 2))
    mouth[0], mouth[6] = (0, 50), (60, 50)
    mouth[13:16] = [(20, 47), (30, 47), (40, 47)]
    mouth[17:20] = [(40, 53), (30, 53), (20, 53)]
    p[s("mouth")] = mouth
    assert eye_openness(p, "ibug68") == pytest.approx([8 / 30, 8 / 30])
    assert mouth_openness(p, "ibug68") == pytest.approx(0.1)


def test_find_blinks():
    x = np.full(30, 0.3)
    x[5:8] = 0.05
    x[20] = 0.1
    x[25] = np.nan  # no face: never a blink
    assert find_blinks(x) == [(5, 7), (20, 20)]
    assert blink_threshold(x) == pytest.approx(0.65 * 0.3)
    assert find_blinks(x, threshold=0.08) == [(5, 7)]
    x[-2:] = 0.01
    assert find_blinks(x)[-1] == (28, 29)  # a run at the end is closed
    assert find_blinks(np.stack([x, x], axis=1)) == find_blinks(x)


def test_bad_inputs():
    with pytest.raises(ValueError, match="expected \\(..., 88, 2\\)"):
        eye_openness(np.zeros((68, 2)))
    with pytest.raises(ValueError, match="one openness per frame"):
        find_blinks(np.zeros((2, 2, 2)))


def _closed_eyes(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The face with both eyes painted shut: each eye's contour filled with the skin below it, a dark lash line
    along the middle."""
    out = rgb.copy()
    for eye in ("left_eye", "right_eye"):
        e = points[FACE88.region_slice(eye)]
        c = e.mean(axis=0)
        w = np.linalg.norm(e[0] - e[4])
        skin = rgb[int(c[1] + 0.45 * w):int(c[1] + 0.6 * w), int(c[0] - 0.2 * w):int(c[0] + 0.2 * w)]
        colour = tuple(int(v) for v in skin.reshape(-1, 3).mean(axis=0))
        cv2.fillPoly(out, [np.round((c + (e - c) * 1.35) * 16).astype(np.int32)], colour, cv2.LINE_AA, 4)
        lash = np.array([e[0], e[7], e[6], e[5], e[4]])
        lash[:, 1] = (lash[:, 1] + c[1]) / 2
        cv2.polylines(out, [np.round(lash * 16).astype(np.int32)], False, (60, 40, 30), 2, cv2.LINE_AA, 4)
    return out


@pytest.fixture(scope="module")
def blink_clip(tmp_path_factory):
    """A 40-frame clip of the sample face, eyes painted shut at CLOSED_FRAMES; and MediaPipe-free ground truth."""
    from locations import ASTRONAUT

    from facemark.landmarker import Landmarker
    from facemark.images import load_image

    rgb = load_image(ASTRONAUT)
    face = Landmarker(threads=1, trust=False).detect(rgb)[0]
    closed = _closed_eyes(rgb, face.points)
    path = tmp_path_factory.mktemp("blink") / "blink.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, rgb.shape[1::-1])
    shut = {i for a, b in CLOSED_FRAMES for i in range(a, b + 1)}
    for i in range(FRAMES):
        writer.write(cv2.cvtColor(closed if i in shut else rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_json_has_measures_and_plot(blink_clip, tmp_path, capsys):
    out, plot = tmp_path / "clip.jsonl", tmp_path / "plots" / "clip.png"
    assert main(["video", str(blink_clip), "--json", str(out), "--plot", str(plot), "--quiet", "--no-smooth"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == FRAMES
    face = records[0]["faces"][0]
    assert len(face["eye_openness"]) == 2 and all(0.1 < v < 0.6 for v in face["eye_openness"])
    assert 0 <= face["mouth_openness"] < 1
    assert set(face["pose"]) == {"yaw", "pitch", "roll"} and abs(face["pose"]["roll"]) < 15
    png = cv2.imread(str(plot))
    assert png is not None and png.shape[0] > 200 and png.shape[1] > 400
    assert "openness plot ->" in capsys.readouterr().err


def test_synthetic_blinks_are_found_at_their_frames(blink_clip, tmp_path):
    """The painted-shut eyes read about 0.1 with the eye refiner (0.2 without it, 0.3 open), so `facemark video`'s
    openness finds both blinks at their frames, and nothing else."""
    out = tmp_path / "clip.jsonl"
    assert main(["video", str(blink_clip), "--json", str(out), "--quiet", "--no-smooth"]) == 0
    eyes = [np.mean(json.loads(line)["faces"][0]["eye_openness"]) for line in out.read_text().splitlines()]
    assert find_blinks(np.array(eyes)) == CLOSED_FRAMES


def test_painted_shut_eyes_are_shut_for_another_landmarker(blink_clip):
    """The synthetic blink is a real one for a landmarker whose lids follow the eye (MediaPipe Face Mesh): the
    clip tests the model, not the painting."""
    pytest.importorskip("mediapipe")
    from facemark.labels.teachers import MediaPipeTeacher

    capture = cv2.VideoCapture(str(blink_clip))
    teacher = MediaPipeTeacher()
    eyes = []
    ok, frame = capture.read()
    while ok:
        eyes.append(eye_openness(teacher.label(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).points).mean())
        ok, frame = capture.read()
    teacher.close()
    assert find_blinks(np.array(eyes)) == CLOSED_FRAMES


def test_plot_option_errors(blink_clip, tmp_path, capsys):
    assert main(["video", str(blink_clip), "--plot", str(tmp_path / "x.jpg")]) == 1
    err = capsys.readouterr().err.strip()
    assert "the plot must be a .png file" in err and len(err.splitlines()) == 1
