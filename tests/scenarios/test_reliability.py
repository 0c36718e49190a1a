"""Nothing lost, nothing made up (issue 22): damaged videos, outputs that cannot be written, animated images.

Every input is a real file made here: a clip of examples/astronaut.png written by OpenCV's VideoWriter (and an
H.264 copy made with the ffmpeg `facemark video` uses) with runs of bytes overwritten in the middle; a folder
made read-only with chmod, and a path under a regular file; animated GIF, WebP and PNG files written by Pillow
whose face appears only after the first frame; a multi-page TIFF.

What a damaged clip should give is measured here, not assumed: which frames a plain OpenCV loop that keeps
reading decodes (numbered by their timestamps), and which ffmpeg itself decodes when it is there.

Root is not stopped by permission bits: as root, the read-only-folder tests drop to the `nobody` user for the
command (the effective ids only, restored after), and skip only where that is not permitted.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facemark.cli.video import VideoError, find_ffmpeg, run_video
from cli_runs import read_jsonl, run_cli

FACE_REGION = (140.0, 30.0, 310.0, 240.0)  # where the whole face lies in examples/astronaut.png (as in test_video)
FRAMES, FPS, SIZE = 100, 25.0, 256
GARBAGE = 4096  # bytes overwritten in each damaged run


def window_origin(i: int) -> np.ndarray:
    """Top-left corner, in the astronaut image, of frame i's 256×256 window: the face drifts right by 86 px
    over the clip and stays whole inside the frame."""
    return np.array([140 - (86 * i) // (FRAMES - 1), 10])


def window(rgb: np.ndarray, i: int) -> np.ndarray:
    x0, y0 = window_origin(i)
    return rgb[y0:y0 + SIZE, x0:x0 + SIZE]


def face_region_in_frame(i: int) -> tuple[float, float, float, float]:
    x0, y0 = window_origin(i)
    return (FACE_REGION[0] - x0, FACE_REGION[1] - y0, FACE_REGION[2] - x0, FACE_REGION[3] - y0)


def write_mp4v(path: Path, astronaut: np.ndarray) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIZE, SIZE))
    assert writer.isOpened()
    for i in range(FRAMES):
        writer.write(cv2.cvtColor(np.ascontiguousarray(window(astronaut, i)), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def garble(source: Path, target: Path, starts: list[int]) -> Path:
    """A copy of `source` with GARBAGE random bytes written over it at each of `starts`."""
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(22)
    for at in starts:
        data[at:at + GARBAGE] = rng.integers(0, 256, GARBAGE, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def thirds(data: bytes, marker: bytes = b"") -> list[int]:
    """Where to damage a file: at 30%, 50% and 70% of it, each moved on to the next `marker` (a frame's start
    code, so that the damage takes a frame's header with it and cannot be hidden by the decoder)."""
    starts = []
    for share in (0.3, 0.5, 0.7):
        at = int(len(data) * share)
        starts.append(data.find(marker, at) if marker else at)
    assert all(at > 0 for at in starts)
    return starts


def decodable_frames(path: Path) -> list[int]:
    """The frames a plain OpenCV loop that reads on past failures decodes, numbered by their timestamps."""
    capture = cv2.VideoCapture(str(path))
    numbers, failures_in_a_row = [], 0
    while failures_in_a_row < 50:
        ok, _ = capture.read()
        if ok:
            numbers.append(round(capture.get(cv2.CAP_PROP_POS_MSEC) * FPS / 1000))
            failures_in_a_row = 0
        else:
            failures_in_a_row += 1
    capture.release()
    return numbers


def in_time_order(numbers: list[int]) -> list[int]:
    """The frames whose timestamp comes after every one before: after damage, a decoder (ffmpeg's as much as
    OpenCV's) may give out a stale picture under a time already passed, which has no place in the video."""
    kept: list[int] = []
    for n in numbers:
        if not kept or n > kept[-1]:
            kept.append(n)
    return kept


def ffmpeg_frames(ffmpeg: str, path: Path) -> list[int]:
    """The frames ffmpeg decodes, numbered by their timestamps, in the order it gives them out."""
    done = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path), "-vf", "showinfo", "-f", "null", "-"],
                          capture_output=True, text=True)
    times = [float(part.split(":")[1]) for line in done.stderr.splitlines() if "Parsed_showinfo" in line
             for part in line.split() if part.startswith("pts_time:")]
    return [round(t * FPS) for t in times]


def frames_in(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def on_face(face: dict, region) -> bool:
    points = np.array(face["points"])
    return bool(((points[:, 0] >= region[0]) & (points[:, 0] <= region[2])
                 & (points[:, 1] >= region[1]) & (points[:, 1] <= region[3])).all())


# ----------------------------------------------------------------------- 1. a damaged video keeps its frames


@pytest.mark.parametrize("where", ["middle", "start"])
def test_a_damaged_video_keeps_every_frame_that_decodes(where, astronaut, tmp_path, capsys):
    clean = write_mp4v(tmp_path / "clean.mp4", astronaut)
    data = clean.read_bytes()
    # in the middle: three runs, each from an MPEG-4 frame's start code on; at the start: the first frame's data
    starts = thirds(data, marker=b"\x00\x00\x01\xb6") if where == "middle" else [data.find(b"mdat") + 4]
    damaged = garble(clean, tmp_path / "damaged.mp4", starts)
    expected = in_time_order(decodable_frames(damaged))
    lost = sorted(set(range(FRAMES)) - set(expected))
    assert lost and len(expected) + len(lost) == FRAMES, "the damage made no frame undecodable"
    assert (lost[0] == 0) == (where == "start")
    ffmpeg = find_ffmpeg()
    if ffmpeg is not None:  # ffmpeg agrees on which frames decode
        assert in_time_order(ffmpeg_frames(ffmpeg, damaged)) == expected

    out, js = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    code, _, err = run_cli(["video", damaged, "--out", out, "--json", js, "--quiet", "--threads", "1"], capsys)

    assert code == 1, err  # frames were lost: not a success, though everything else is written
    records = read_jsonl(js)
    assert [r["frame"] for r in records] == expected  # each decoded frame, under its own number
    np.testing.assert_allclose([r["time"] for r in records], np.array(expected) / FPS, atol=1e-3)
    assert records[-1]["frame"] == FRAMES - 1 and on_face(records[-1]["faces"][0], face_region_in_frame(FRAMES - 1))
    assert frames_in(out) == FRAMES  # the drawn video keeps the input's timing: a stand-in for each lost frame
    problems = [line for line in err.splitlines() if line.startswith(f"facemark video: {damaged}: ")]
    assert len(problems) == 1, err
    assert f"{len(lost)} of {FRAMES} frames could not be decoded" in problems[0]
    assert f"({'frame' if len(lost) == 1 else 'frames'} {lost[0]}" in problems[0]
    assert "error" not in err.lower() and "Traceback" not in err


def test_a_damaged_h264_video_numbers_its_frames_as_ffmpeg_does(landmarker, astronaut, tmp_path):
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        pytest.skip("no ffmpeg on PATH and no imageio-ffmpeg package: no H.264 clip can be made")
    source = write_mp4v(tmp_path / "source.mp4", astronaut)
    h264 = tmp_path / "h264.mp4"
    done = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source), "-c:v", "libx264",
                           "-g", "25", "-pix_fmt", "yuv420p", str(h264)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"{ffmpeg} cannot encode H.264: {done.stderr.strip().splitlines()[-1:]}")
    damaged = garble(h264, tmp_path / "damaged.mp4", thirds(h264.read_bytes()))
    expected = in_time_order(ffmpeg_frames(ffmpeg, damaged))
    assert 0 < len(expected) < FRAMES and expected[-1] == FRAMES - 1, "the damage made no frame undecodable"

    js = tmp_path / "out.jsonl"
    summary = run_video(landmarker, damaged, tmp_path / "out.mp4", json_path=js, progress=False)

    # B-frames come out of the decoder after the frames they sit before: numbering by timestamps, not by the
    # order of failed reads, puts each one where ffmpeg does
    assert [r["frame"] for r in read_jsonl(js)] == expected
    assert summary.undecodable == sorted(set(range(FRAMES)) - set(expected))
    assert summary.frames == len(expected) and len(summary.failed) == 1
    assert summary.failed[0].startswith(f"{damaged}: {FRAMES - len(expected)} of {FRAMES} frames could not be")
    assert frames_in(tmp_path / "out.mp4") == FRAMES


def test_an_undamaged_clip_is_unchanged_by_reading_on(landmarker, astronaut, tmp_path):
    clip = write_mp4v(tmp_path / "clean.mp4", astronaut)
    js = tmp_path / "out.jsonl"
    summary = run_video(landmarker, clip, None, json_path=js, progress=False)
    assert [r["frame"] for r in read_jsonl(js)] == list(range(FRAMES))
    assert summary.undecodable == [] and summary.failed == [] and summary.notices == []


# ----------------------------------------------------------------------- 2. outputs that cannot be written


@pytest.fixture
def shared_tmp():
    """A folder every user can enter (pytest's own are root's alone), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="facemark-outputs-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


# modules the commands import on first use: imported before the ids change (the interpreter's own files may
# be readable by root alone)
_COMMAND_MODULES = ["facemark.cli.predict", "facemark.cli.video", "facemark.cli.chips", "facemark.geometry.chips",
                    "facemark.labels.labelling", "facemark.cli.sharding", "facemark.network", "facemark.landmarker", "tempfile"]


@contextlib.contextmanager
def as_ordinary_user():
    """The block runs as a user whom permission bits stop: as it is, or as `nobody` when the tests run as root."""
    if os.geteuid() != 0:
        yield
        return
    for module in _COMMAND_MODULES:
        importlib.import_module(module)
    try:
        os.setegid(65534)
        os.seteuid(65534)
    except PermissionError as e:
        os.setegid(0)
        pytest.skip(f"running as root, which chmod does not stop, without the right to act as another user ({e})")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def nothing_loads(monkeypatch):
    """Fails the test if a landmark model or a teacher is built: an unwritable output must stop the command
    first."""
    import facemark.landmarker
    import facemark.labels.labelling

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the outputs were checked")

    monkeypatch.setattr(facemark.landmarker.Landmarker, "__init__", loaded)
    monkeypatch.setattr(facemark.labels.labelling, "create_teacher", loaded)


def _inputs(folder: Path, astronaut: np.ndarray) -> dict[str, Path]:
    """A clip, three images and a folder of one, readable by every user."""
    images = folder / "images"
    images.mkdir()
    paths = {}
    for k in range(3):
        paths[f"image{k}"] = images / f"a{k}.png"
        Image.fromarray(astronaut).save(paths[f"image{k}"])
    clip = write_mp4v(folder / "clip.mp4", astronaut[:, :, :])
    paths.update(clip=clip, images=images)
    for path in paths.values():
        path.chmod(0o755 if path.is_dir() else 0o644)
    return paths


COMMANDS = {  # a verb and its arguments, with OUT where the output that cannot be written goes
    "video --out": ["video", "{clip}", "--out", "OUT/drawn.mp4"],
    "video --json": ["video", "{clip}", "--json", "OUT/points.jsonl"],
    "video --plot": ["video", "{clip}", "--out", "{ok}/drawn.mp4", "--plot", "OUT/plot.png"],
    "predict --draw --out": ["predict", "{image0}", "{image1}", "{image2}", "--draw", "--out", "OUT"],
    "predict --draw --out (a new subfolder)": ["predict", "{image0}", "--draw", "--out", "OUT/drawn"],
    "predict --json": ["predict", "{image0}", "--json", "OUT/points.jsonl"],
    "chips --out": ["chips", "{image0}", "{image1}", "--out", "OUT"],
    "label --out": ["label", "{images}", "--out", "OUT/labels.jsonl", "--workers", "1"],
}


def _argv(command: str, out: Path, paths: dict[str, Path], ok: Path, below: bool = False) -> list[str]:
    """The command's arguments with OUT replaced by `out` (`below`: a folder output named OUT itself goes to
    OUT/sub, so that every output lies below `out`)."""
    args = [("OUT/sub" if below and a == "OUT" else a) for a in COMMANDS[command]]
    return [a.replace("OUT", str(out)).format(ok=ok, **paths) for a in args] + ["--quiet"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_output_in_a_read_only_folder_fails_before_any_work(command, astronaut, shared_tmp, capsys,
                                                                nothing_loads):
    paths = _inputs(shared_tmp, astronaut)
    read_only = shared_tmp / "read-only"
    read_only.mkdir(mode=0o555)
    read_only.chmod(0o555)
    ok = shared_tmp / "writable"
    ok.mkdir(mode=0o777)
    ok.chmod(0o777)
    with as_ordinary_user():
        code, _, err = run_cli(_argv(command, read_only, paths, ok), capsys)
    verb = command.split()[0]
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err  # one line, not one per image
    assert lines[0].startswith(f"facemark {verb}: error: cannot write ") and "not writable" in lines[0], lines[0]
    assert "Permission denied" in lines[0] and str(read_only) in lines[0]
    assert list(read_only.iterdir()) == [] and list(ok.iterdir()) == []


# folder outputs, which answer a file in their place (or above them) with a usage error (exit 2), as any
# mistake in the arguments is; the other outputs cannot be written there (exit 1)
FOLDER_OUTPUTS = {"predict --draw --out": "the drawings need a folder",
                  "predict --draw --out (a new subfolder)": "the drawings need a folder",
                  "chips --out": "the chips need a folder"}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_output_under_a_file_fails_before_any_work(command, astronaut, shared_tmp, capsys, nothing_loads):
    """A file where the output's folder should be: what no user, root included, can write into."""
    paths = _inputs(shared_tmp, astronaut)
    blocker = shared_tmp / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    ok = shared_tmp / "writable"
    ok.mkdir()
    code, _, err = run_cli(_argv(command, blocker, paths, ok, below=True), capsys)
    lines = err.strip().splitlines()
    verb = command.split()[0]
    if command in FOLDER_OUTPUTS:  # a folder output under a file is the usage error of one that is a file
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"facemark {verb}: error: --out {blocker}/"), lines[0]
        assert lines[0].endswith(f": {blocker} is a file; {FOLDER_OUTPUTS[command]}"), lines[0]
    else:
        assert code == 1 and len(lines) == 1, err
        assert lines[0].startswith(f"facemark {verb}: error: cannot write ")
        assert lines[0].endswith(f"{blocker} is a file, not a folder"), lines[0]
    assert blocker.read_text() == "a file, not a folder\n" and list(ok.iterdir()) == []


def test_a_file_written_in_place_needs_only_itself_writable(shared_tmp):
    """`predict --json` and `label --out` open their file where it is: an existing writable one in a read-only
    folder is fine for them, not for outputs written beside the target and renamed into place (`video`)."""
    from facemark.cli.outputs import OutputError, check_writable_file

    folder = shared_tmp / "read-only"
    folder.mkdir()
    (folder / "points.jsonl").write_text("{}\n")
    (folder / "points.jsonl").chmod(0o666)
    (folder / "locked.jsonl").write_text("{}\n")
    (folder / "locked.jsonl").chmod(0o444)
    folder.chmod(0o555)
    with as_ordinary_user():
        check_writable_file(folder / "points.jsonl", in_place=True)
        with pytest.raises(OutputError, match="not writable"):
            check_writable_file(folder / "points.jsonl")
        with pytest.raises(OutputError, match="locked.jsonl: Permission denied"):
            check_writable_file(folder / "locked.jsonl", in_place=True)
        with pytest.raises(OutputError, match="not writable"):
            check_writable_file(folder / "new.jsonl", in_place=True)
    assert (folder / "points.jsonl").read_text() == "{}\n"  # looked at, not changed
    assert sorted(p.name for p in folder.iterdir()) == ["locked.jsonl", "points.jsonl"]


class CountingLandmarker:
    """A real landmarker that counts the frames it is asked about."""

    def __init__(self, landmarker):
        self._landmarker, self.calls = landmarker, 0

    def __getattr__(self, name):
        return getattr(self._landmarker, name)

    def detect(self, *args, **kwargs):
        self.calls += 1
        return self._landmarker.detect(*args, **kwargs)

    def predict_crops(self, crops):
        self.calls += 1
        return self._landmarker.predict_crops(crops)


def test_run_video_checks_its_outputs_before_reading_a_frame(landmarker, astronaut, tmp_path):
    clip = write_mp4v(tmp_path / "clip.mp4", astronaut)
    (tmp_path / "blocker").write_text("")
    from facemark.cli.outputs import OutputError

    counting = CountingLandmarker(landmarker)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        run_video(counting, clip, tmp_path / "blocker" / "drawn.mp4", progress=False)
    with pytest.raises(OSError, match="blocker"):  # OutputError is an OSError: the command line's exit 1
        run_video(counting, clip, tmp_path / "drawn.mp4", json_path=tmp_path / "blocker" / "p.jsonl", progress=False)
    assert counting.calls == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "clip.mp4"]


# ----------------------------------------------------------------------- 4. animated images

DURATION_MS = 80


def animated(path: Path, astronaut: np.ndarray, fmt: str) -> Path:
    """Six frames, 80 ms each: a plain grey one, then the astronaut's face drifting right (frames 1 to 5)."""
    frames = [Image.new("RGB", (SIZE, SIZE), (90, 120, 150))]
    frames += [Image.fromarray(np.ascontiguousarray(window(astronaut, 20 * k))) for k in range(1, 6)]
    options = {"WEBP": {"quality": 90}, "GIF": {}, "PNG": {}}[fmt]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=DURATION_MS, loop=0,
                   **options)
    with Image.open(path) as check:
        assert check.format == fmt and check.n_frames == 6
    return path


ANIMATED = {"gif": "GIF", "webp": "WEBP", "png": "PNG"}


@pytest.mark.parametrize("suffix", list(ANIMATED))
def test_predict_on_an_animated_image_says_it_read_the_first_frame(suffix, astronaut, tmp_path, capsys):
    image = animated(tmp_path / f"anim.{suffix}", astronaut, ANIMATED[suffix])
    js = tmp_path / "p.jsonl"
    code, _, err = run_cli(["predict", image, "--json", js, "--quiet", "--threads", "1"], capsys)
    (record,) = read_jsonl(js)
    assert code == 0 and record["error"] is None and record["faces"] == []  # frame 0 has no face, truly
    notices = [line for line in err.splitlines() if "first frame" in line]
    assert len(notices) == 1, err
    assert notices[0].startswith(f"facemark predict: {image}: an animated ") and "of 6 frames" in notices[0]
    assert f"`facemark video {image}`" in notices[0]


@pytest.mark.parametrize("suffix", list(ANIMATED))
def test_video_reads_an_animated_image_frame_by_frame(suffix, landmarker, astronaut, tmp_path):
    image = animated(tmp_path / f"anim.{suffix}", astronaut, ANIMATED[suffix])
    js, out = tmp_path / "p.jsonl", tmp_path / "drawn.mp4"
    summary = run_video(landmarker, image, out, json_path=js, progress=False)
    records = read_jsonl(js)
    assert [r["frame"] for r in records] == list(range(6))
    np.testing.assert_allclose([r["time"] for r in records], np.arange(6) * DURATION_MS / 1000, atol=1e-6)
    assert records[0]["faces"] == []
    for k in range(1, 6):
        (face,) = records[k]["faces"]
        assert on_face(face, face_region_in_frame(20 * k))
    assert summary.failed == [] and frames_in(out) == 6
    assert not any("audio" in n and "ffmpeg could not" in n for n in summary.notices), summary.notices


def test_video_names_an_image_format_it_does_not_read_as_frames(astronaut, tmp_path, capsys):
    pages = tmp_path / "scan.tif"
    first, *rest = [Image.fromarray(np.ascontiguousarray(window(astronaut, k))) for k in (0, 50, 99)]
    first.save(pages, save_all=True, append_images=rest)
    with pytest.raises(VideoError, match="TIFF image of 3 pictures"):
        run_video(None, pages, tmp_path / "drawn.mp4", progress=False)
    code, _, err = run_cli(["video", pages, "--out", tmp_path / "drawn.mp4", "--quiet"], capsys)
    assert code == 1 and err.strip().splitlines() == [err.strip()]
    assert err.startswith(f"facemark video: error: {pages}: is a TIFF image of 3 pictures, not a video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.tif"]
