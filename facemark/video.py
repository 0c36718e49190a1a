"""`facemark video`: landmarks through a video file, drawn into a new video and written as JSON Lines.

Frames are read with OpenCV, followed by `facemark.tracking.FaceTracker` (the detector runs only now and
then) and written back with the points drawn: same frame count, size and frame rate. One JSON line per frame:

    {"frame": 0, "time": 0.0, "faces": [{"track": 1, "box": [x0, y0, x1, y1], "score": 0.99,
                                         "points": [[x, y], ...]}]}

(pixels, pixel-centre convention; `time` in seconds from the container's timestamps; `track` stays with a face
while it is followed.) Outputs are written under temporary names beside the targets and renamed when complete,
so an error or an interrupt never leaves a partial file under the name asked for.

- Rotated videos (phones store portrait video as landscape pixels plus a display rotation): frames are turned
  upright as a player shows them, so points, the JSON and the output video (written upright, without a
  rotation tag) are all in the displayed orientation. OpenCV does this only when asked (its
  CAP_PROP_ORIENTATION_AUTO is off by default in the 4.11 wheels); a rotation it cannot apply is an error.
- Variable frame rate: every frame is processed and keeps its own container time in the JSON; the output
  video holds the same frames at one constant rate, the input's average (the rate MP4/MOV state), so it
  lasts as long as the input and its audio stays in sync on average. A container that states a nominal
  rate instead (VFR MKV/WebM) is re-timed to the average measured from its timestamps, with ffmpeg.
- Audio: OpenCV writes video only; the input's audio is copied into the output with an ffmpeg binary, the
  one on PATH or else the one the `imageio-ffmpeg` package bundles (the `video` extra). Without either the
  output has no audio, and a notice says so.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

# FFmpeg inside OpenCV prints its own line ("moov atom not found") before our one-line error; silence it.
# Read when OpenCV first opens a file with FFmpeg, so it must be set before any capture exists.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
import cv2  # noqa: E402

from facemark.drawing import REGION_COLOURS
from facemark.images import file_head, looks_like_text
from facemark.scheme import Scheme
from facemark.tracking import FaceTracker, TrackedFace, TrackerConfig

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")  # containers the 'mp4v' codec is written into
DEFAULT_FPS = 30.0  # used when a file does not say its frame rate
# A stated frame rate this far from the average of the timestamps is a nominal one (VFR MKV/WebM state
# their time base's rate): the output is re-timed to the average. MP4/MOV state the average already, up to
# the last frame's duration, which the timestamps do not show (1/frames; 5% covers clips of 20 frames).
RETIME_TOLERANCE = 0.05


class VideoError(ValueError):
    """An input video that cannot be used; the message names the file and says why, in one line."""


class VideoWriteError(RuntimeError):
    """An output that cannot be written; the message names the file."""


@dataclass
class VideoSummary:
    frames: int = 0
    width: int = 0
    height: int = 0
    video_fps: float = 0.0  # the output's frame rate: the input's (its average when the frame rate varies)
    rotation: int = 0  # degrees the stored frames were turned clockwise to show them upright
    faces: int = 0  # faces over all frames
    max_faces: int = 0  # most faces in one frame
    frames_with_faces: int = 0
    tracks: int = 0  # distinct track ids
    detector_calls: int = 0
    seconds: float = 0.0  # wall time, reading and writing included
    output: str | None = None
    json: str | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def faces_per_frame(self) -> float:
        return self.faces / self.frames if self.frames else 0.0

    @property
    def fps(self) -> float:
        """Processing speed: frames per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        outputs = " and ".join(p for p in (self.output, self.json) if p)
        turned = f", turned {self.rotation}° clockwise" if self.rotation else ""
        return (f"{self.frames} frames ({self.width}×{self.height}{turned}, {self.video_fps:.4g} fps), "
                f"{self.faces_per_frame:.2f} faces per frame, {self.tracks} tracks, "
                f"{self.detector_calls} detector calls, {self.seconds:.1f} s ({self.fps:.1f} frames/s)"
                + (f" -> {outputs}" if outputs else ""))


# ------------------------------------------------------------------------------------------------ reading


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs its own version of the errors we raise; keep stderr for ours."""
    previous = cv2.getLogLevel() if hasattr(cv2, "getLogLevel") else None
    if previous is not None:
        cv2.setLogLevel(0)  # silent
    try:
        yield
    finally:
        if previous is not None:
            cv2.setLogLevel(previous)


def open_video(path: str | Path) -> cv2.VideoCapture:
    """An opened capture of a video file, or a VideoError saying why not."""
    name = str(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise VideoError(f"{name}: no such file") from None
    except OSError as e:
        raise VideoError(f"{name}: {e.strerror or e}") from None
    if os.path.isdir(name):
        raise VideoError(f"{name}: is a directory, not a video file")
    if st.st_size == 0:
        raise VideoError(f"{name}: file is empty (0 bytes)")
    with _quiet_opencv():
        capture = cv2.VideoCapture(name)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{name}: {_not_a_video(name)}")
    try:
        display_rotation(capture, name)
    except VideoError:
        capture.release()
        raise
    return capture


def display_rotation(capture: cv2.VideoCapture, name: str) -> int:
    """Degrees (0, 90, 180, 270) the stored frames are turned clockwise to be shown upright, as a player does.

    The rotation comes from the container (an MP4/MOV display matrix, as phones write). OpenCV applies it on
    reading only when CAP_PROP_ORIENTATION_AUTO is on, which 4.11 does not do by default: this turns it on.
    A rotation that is not a multiple of 90°, or that this OpenCV cannot apply, is a VideoError.
    """
    angle = capture.get(cv2.CAP_PROP_ORIENTATION_META)  # 0..359; 0, or -1 from some backends, when unknown
    if not math.isfinite(angle) or angle <= 0 or round(angle) % 360 == 0:
        return 0
    angle = round(angle) % 360
    if angle % 90:
        raise VideoError(f"{name}: the video is to be shown rotated by {angle}°; "
                         "only multiples of 90° can be turned upright")
    if not capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1) or not capture.get(cv2.CAP_PROP_ORIENTATION_AUTO):
        raise VideoError(f"{name}: the video is to be shown rotated by {angle}°, "
                         f"which this OpenCV build ({cv2.__version__}) cannot apply")
    return angle


def _not_a_video(name: str) -> str:
    """Why OpenCV could not open the file, guessed from its first bytes."""
    head = file_head(name)
    if isinstance(head, str):
        return head
    text = looks_like_text(head)
    if text:
        return f"not a video file ({text})"
    if head[4:8] == b"ftyp":
        return "not a readable video (an MP4/MOV container without a playable video stream: truncated?)"
    return f"not a video file OpenCV can read (starts with {head[:8].hex(' ')})"


def video_fps(capture: cv2.VideoCapture) -> float | None:
    """The frame rate the file states, or None when it states none usable."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if math.isfinite(fps) and 0 < fps <= 1000 else None


# ------------------------------------------------------------------------------------------------ drawing


def draw_faces(bgr: np.ndarray, faces: list[TrackedFace], scheme: Scheme) -> np.ndarray:
    """Points and contours (one colour per region) and track ids drawn into a BGR frame, in place."""
    region = scheme.region_of_point()
    colours = [(b, g, r) for r, g, b in REGION_COLOURS]
    shift = 4  # OpenCV draws at 1/16-pixel precision with integer coordinates scaled by 2**shift
    for face in faces:
        pts = np.asarray(face.points, dtype=np.float64)
        finite = np.isfinite(pts).all(axis=1)
        if not finite.any():
            continue
        size = max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1.0)
        radius = max(1.0, size / 90)
        thickness = max(1, int(round(size / 200)))
        # pixel-centre convention: OpenCV's integer pixel (i, j) is centred on (i, j) as well
        fixed = np.round(np.where(finite[:, None], pts, 0) * (1 << shift)).astype(np.int32)
        for indices, closed in scheme.contours:
            idx = [i for i in indices if finite[i]]
            if len(idx) >= 2:
                cv2.polylines(bgr, [fixed[idx].reshape(-1, 1, 2)], closed and len(idx) == len(indices),
                              colours[region[idx[0]] % len(colours)], thickness, cv2.LINE_AA, shift)
        r = int(round(radius * (1 << shift)))
        for i in np.flatnonzero(finite):
            cv2.circle(bgr, (int(fixed[i, 0]), int(fixed[i, 1])), r, colours[region[i] % len(colours)], -1,
                       cv2.LINE_AA, shift)
        x0, y0 = face.box[0], face.box[1]
        cv2.putText(bgr, f"#{face.track}", (int(x0), max(int(y0) - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.4, size / 400), (255, 255, 255), thickness, cv2.LINE_AA)
    return bgr


# ------------------------------------------------------------------------------------------------ the run


def _temporary(path: Path) -> Path:
    """A hidden name beside `path`, with its suffix (OpenCV picks the container from it)."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def _frame_record(index: int, t: float, faces: list[TrackedFace]) -> dict:
    return {"frame": index, "time": round(t, 6), "faces": [f.to_dict() for f in faces]}


def run_video(landmarker, input_path: str | Path, output_path: str | Path | None, *,
              json_path: str | Path | None = None, smooth: bool = True, detect_every: int = 30,
              progress: bool = True, config: TrackerConfig | None = None) -> VideoSummary:
    """Landmarks for every frame of a video: a drawn copy at `output_path` (.mp4, 'mp4v' codec) and/or JSON
    Lines at `json_path` ("-" for stdout). `config` (a TrackerConfig) overrides `smooth` and `detect_every`.
    `progress`: a progress bar, and notices (no audio, no frame rate stated, ...) on stderr; they are also in
    the summary's `notices`.

    Raises VideoError (a ValueError) for an input that is missing, not a video or has no frames, ValueError
    for unusable arguments, VideoWriteError (a RuntimeError) when the output cannot be written.
    """
    source = Path(input_path)
    target = Path(output_path) if output_path is not None else None
    if target is None and json_path is None:
        raise ValueError("nothing to write: give an output video, a JSON path or both")
    if target is not None:
        if target.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{target}: the output video must end in {', '.join(VIDEO_SUFFIXES)}")
        if source.exists() and target.exists() and os.path.samefile(source, target):
            raise ValueError(f"{target}: the output would overwrite the input")
    json_to_stdout = json_path is not None and str(json_path) == "-"
    json_target = Path(json_path) if json_path is not None and not json_to_stdout else None
    json_stream = None  # a FIFO or device (/dev/stdout): written directly, it cannot be renamed into place
    if json_target is not None and json_target.exists() and not json_target.is_file():
        if json_target.is_dir():
            raise ValueError(f"{json_target}: is a directory, not a JSON Lines file")
        json_stream, json_target = json_target, None

    start = time.perf_counter()
    capture = open_video(source)
    summary = VideoSummary(output=str(target) if target else None,
                           json=str(json_path) if json_path is not None else None,
                           rotation=display_rotation(capture, str(source)))
    video_tmp = _temporary(target) if target is not None else None
    json_tmp = _temporary(json_target) if json_target is not None else None
    writer = json_out = None
    try:
        with _quiet_opencv():
            ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError(f"{source}: the video has no frames")
        fps = video_fps(capture)
        if fps is None:
            fps = DEFAULT_FPS
            summary.notices.append(f"{source} states no frame rate; assuming {DEFAULT_FPS:g} fps")
        height, width = frame.shape[:2]
        summary.width, summary.height, summary.video_fps = width, height, fps
        stated_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))

        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(video_tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
            if not writer.isOpened():
                raise VideoWriteError(f"{target}: OpenCV cannot write an mp4v video here")
        if json_target is not None:
            json_target.parent.mkdir(parents=True, exist_ok=True)
            json_out = open(json_tmp, "w", encoding="utf-8")
        elif json_stream is not None:
            json_out = open(json_stream, "w", encoding="utf-8")
        elif json_to_stdout:
            json_out = sys.stdout

        if config is None:
            config = TrackerConfig(smooth=smooth, detect_every=detect_every)
        tracker = FaceTracker(landmarker, config, frequency=fps)
        track_ids: set[int] = set()
        bar = tqdm(total=stated_frames if stated_frames > 0 else None, desc="video", unit="frame",
                   disable=not progress)
        timeline = _Timeline()
        index = 0
        with bar:
            while ok:
                if frame.shape[:2] != (height, width):
                    raise VideoError(f"{source}: frame {index} is {frame.shape[1]}×{frame.shape[0]}, "
                                     f"the first was {width}×{height}")
                t = timeline.next(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, fps)
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                faces = tracker.update(rgb, t)

                summary.faces += len(faces)
                summary.max_faces = max(summary.max_faces, len(faces))
                summary.frames_with_faces += bool(faces)
                track_ids.update(f.track for f in faces)
                if writer is not None:
                    writer.write(draw_faces(frame, faces, landmarker.scheme))
                if json_out is not None:
                    json_out.write(json.dumps(_frame_record(index, t, faces)) + "\n")
                index += 1
                bar.update(1)
                ok, frame = capture.read()
        summary.frames = index
        summary.tracks = len(track_ids)
        summary.detector_calls = tracker.stats.detector_calls
        if stated_frames > 0 and stated_frames != index:
            summary.notices.append(f"{source} states {stated_frames} frames, {index} could be read")
        average = timeline.average_fps()
        timescale = fps / average if average and abs(fps / average - 1) > RETIME_TOLERANCE else None

        if writer is not None:
            writer.release()
            writer = None
            _check_written(video_tmp, target, index, (width, height))
            finished = _finish_with_ffmpeg(source, video_tmp, target, index, (width, height), summary.notices,
                                           timescale=timescale)
            if timescale and finished:
                summary.video_fps = average
            elif timescale:
                summary.notices.append(
                    f"{source} states {fps:.4g} fps but its frames come at {average:.4g} per second: not "
                    f"re-timed without a working ffmpeg, the output lasts {index / fps:.1f} s instead of "
                    f"{index / average:.1f} s")
        if timeline.variable:
            summary.notices.append(
                f"{source} has a variable frame rate (frames {1000 * timeline.min_gap:.0f} to "
                f"{1000 * timeline.max_gap:.0f} ms apart): each frame's own time is in the JSON Lines; an output "
                f"video shows them at a constant {summary.video_fps:.4g} fps, the average")
        if json_out is not None and json_out is not sys.stdout:
            json_out.close()
        json_out = None
        # everything is complete: only now do the files take the names asked for
        if target is not None:
            os.replace(video_tmp, target)
            video_tmp = None
        if json_target is not None:
            os.replace(json_tmp, json_target)
            json_tmp = None
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if json_out is not None and json_out is not sys.stdout:
            json_out.close()
        elif json_out is sys.stdout:
            sys.stdout.flush()
        for tmp in (video_tmp, json_tmp):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    summary.seconds = time.perf_counter() - start
    if progress:  # otherwise the caller reads summary.notices
        for notice in summary.notices:
            print(f"facemark video: {notice}", file=sys.stderr)
    return summary


def _check_written(path: Path, target: Path, frames: int, size: tuple[int, int]) -> None:
    """The written video reads back with the frame count and size it should have."""
    with _quiet_opencv():
        capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoWriteError(f"{target}: the written video cannot be read back")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        got = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    if count != frames or got != size:
        raise VideoWriteError(f"{target}: wrote {count} frames of {got[0]}×{got[1]}, "
                              f"expected {frames} of {size[0]}×{size[1]}")


def find_ffmpeg() -> str | None:
    """An ffmpeg binary: the one on PATH, else the one bundled with the imageio-ffmpeg package (the `video`
    extra), else None."""
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # installed without a binary for this platform
        return None


def _finish_with_ffmpeg(source: Path, video: Path, target: Path, frames: int, size: tuple[int, int],
                        notices: list[str], *, timescale: float | None = None) -> bool:
    """Copy the source's audio (if any) into `video`, in place, with ffmpeg; `timescale` stretches the video's
    timestamps by that factor (a re-timing without re-encoding). True when done; otherwise `video` stays as
    OpenCV wrote it, and a notice says why."""
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        notices.append("no ffmpeg (none on PATH, and no imageio-ffmpeg package: pip install 'facemark[video]'): "
                       "the output has no audio track (OpenCV writes video only)")
        return False
    muxed = video.with_name(f".{video.stem}.audio{video.suffix}")
    retime = ["-itsscale", f"{timescale:.9g}"] if timescale else []
    # "1:a?" maps the audio streams if there are any; no -shortest, so no video frame is ever cut
    base = [ffmpeg, "-nostdin", "-v", "error", "-y", *retime, "-i", str(video), "-i", str(source),
            "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy"]
    try:
        for audio in (["-c:a", "copy"], ["-c:a", "aac"]):  # copy when the mp4 can hold the codec, else encode
            done = subprocess.run(base + audio + [str(muxed)], capture_output=True, text=True, timeout=600)
            if done.returncode == 0:
                _check_written(muxed, target, frames, size)
                os.replace(muxed, video)
                return True
        why = next((line.strip() for line in reversed(done.stderr.splitlines()) if line.strip()),
                   f"exit status {done.returncode}")
        notices.append(f"ffmpeg could not copy the audio of {source} ({why}); the output has no audio")
    except (OSError, subprocess.SubprocessError, VideoWriteError) as e:
        notices.append(f"ffmpeg failed ({e}); the output has no audio")
    finally:
        with contextlib.suppress(OSError):
            muxed.unlink()
    return False


@dataclass
class _Timeline:
    """The frames' times as they are read, and what the output's frame rate is decided from."""

    first: float = math.nan
    last: float = -math.inf
    count: int = 0
    min_gap: float = math.inf
    max_gap: float = 0.0
    nominal: int = 0  # frames without a usable container timestamp (given the nominal time instead)

    def next(self, stamp: float, fps: float) -> float:
        """The next frame's time: its container timestamp when that moves forward, else 1 / fps later."""
        t = stamp
        if not (math.isfinite(t) and t > self.last):
            t = self.last + 1.0 / fps if self.count else 0.0
            self.nominal += 1
        if self.count:
            self.min_gap, self.max_gap = min(self.min_gap, t - self.last), max(self.max_gap, t - self.last)
        else:
            self.first = t
        self.last = t
        self.count += 1
        return t

    def average_fps(self) -> float | None:
        """Frames per second over the container's timestamps; None without two frames that all have one."""
        if self.count < 2 or self.nominal:
            return None
        return (self.count - 1) / (self.last - self.first)

    @property
    def variable(self) -> bool:
        """Irregular gaps between frames (a phone's variable frame rate), beyond timestamp rounding."""
        return self.count >= 3 and self.max_gap > 1.5 * self.min_gap
