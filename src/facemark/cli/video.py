"""`facemark video`: landmarks through a video file, drawn into a new video and written as JSON Lines.

Frames are read by `facemark.video.reader` (OpenCV's FFmpeg; Pillow for animated images), followed by
`facemark.video.tracking.FaceTracker` (the detector runs only now and then) and written back with the points drawn:
same frame count, size and frame rate. One JSON line per frame:

    {"frame": 0, "time": 0.0, "faces": [{"track": 1, "box": [x0, y0, x1, y1], "score": 0.99, "trust": 0.87,
                                         "points": [[x, y], ...], "eye_openness": [0.29, 0.30],
                                         "mouth_openness": 0.02, "pose": {"yaw": 3.1, "pitch": -4.0, "roll": 1.2}}]}

(pixels, pixel-centre convention; `time` in seconds from the container's timestamps; `track` stays with a face
while it is followed; `trust` is the face's trust score on this frame's points, as a photo's
(facemark.pipeline.trust). `eye_openness`: eye aspect ratio of the image-left and image-right eye, `mouth_openness`:
inner-lip gap over mouth width (facemark.geometry.openness); `pose`: degrees, facemark.geometry.pose with its default camera,
null when no pose fits; all from the frame's drawn (smoothed) points. `blink`, only on the frame a face's eyes
are open again after a blink: {"start": first frame, "end": last frame} of the run of frames whose mean eye
openness was under 0.65 × the median of that track's last 300 frames; facemark.geometry.openness.BlinkDetector.)
`plot_path` writes a PNG of the eye and
mouth openness of each track over time, with the blink threshold. Outputs are written under temporary names
beside the targets and renamed when complete, so an error or an interrupt never leaves a partial file under the
name asked for; an interrupt (Ctrl-C), or a frame that stops the run halfway (one of another size), keeps
the JSON Lines of the frames done as NAME.incomplete.jsonl.

- Rotated videos (phones store portrait video as landscape pixels plus a display rotation): frames are turned
  upright as a player shows them, so points, the JSON and the output video (written upright, without a
  rotation tag) are all in the displayed orientation. OpenCV does this only when asked (its
  CAP_PROP_ORIENTATION_AUTO is off by default in the 4.11 wheels); a rotation it cannot apply is an error.
- Variable frame rate: every frame is processed and keeps its own container time in the JSON; the output
  video holds the same frames at one constant rate, the input's average (the rate MP4/MOV state), so it
  lasts as long as the input and its audio stays in sync on average. A container that states a nominal
  rate instead (VFR MKV/WebM) is re-timed to the average measured from its timestamps, with ffmpeg, whenever
  the stated rate would put the drawn video more than a frame off its audio. Timestamps on the stated rate's
  grid that skip places (a phone dropping frames) are not damage: the drawn video repeats the frame before
  each place, and the summary's `skipped` (not `undecodable`) lists them.
- Codec: the drawn video is H.264 (yuv420p, what browsers and phones play), encoded by an ffmpeg binary: the
  one on PATH or else the one the `imageio-ffmpeg` package bundles (the `video` extra). Without an ffmpeg
  that has libx264 it is OpenCV's 'mp4v' (MPEG-4 part 2: larger, and browsers do not play it), with a notice.
- Frame size: both codecs need even sides, so a frame with an odd width or height (321×241) is padded with
  one black column or row at the right or bottom (322×242), with a notice; points keep their coordinates.
  The JSON Lines state the input's own size.
- Audio: the input's audio is copied into the output with the same ffmpeg. Without one the output has no
  audio, and a notice says so.
- The points never depend on the drawing: when the drawn video cannot be written (a full disk, an encoder
  that fails), the JSON Lines are still completed and put in place before the error is raised.
- A damaged file: reading goes on past frames that cannot be decoded, and each frame keeps the number its
  timestamp gives it. The frames lost have no JSON line; in the drawn video each is the frame before it
  (the first that decodes, for those before it), without points: the video keeps the input's length, and
  its audio stays in sync. The summary names them (`undecodable`, and one line in `failed`: the command line
  exits with 1 once everything is written).
- An image file given as the input is refused (`facemark predict` is for images); an animated GIF, WebP or
  PNG is read frame by frame, timed by its frames' durations.
- Every output is checked writable before the first frame is read (`facemark.cli.outputs`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facemark.drawing import REGION_COLOURS
from facemark.cli.outputs import check_writable_file
from facemark.layouts import Scheme
from facemark.video.tracking import FaceTracker, TrackedFace, TrackerConfig

# reading (and OpenCV's FFmpeg log level, set before any capture exists) lives in facemark.video.reader; its
# names stay importable from here, as before
from facemark.video.reader import (  # noqa: F401
    DEFAULT_FPS,
    ReadAhead,
    VideoError,
    _quiet_opencv,
    check_video_input,
    display_rotation,
    open_frames,
    open_video,
    video_fps,
)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")  # containers the 'mp4v' codec is written into
# A stated frame rate that would make the output longer or shorter than the input by more than this many
# frames is a nominal one (VFR MKV/WebM state their time base's rate): the output is re-timed to the average
# of the timestamps, so its audio stays in sync to within a frame. MP4/MOV state the average already, up to
# the last frame's duration, which the timestamps do not show (less than a frame over the whole video).
RETIME_TOLERANCE_FRAMES = 1.0


class VideoWriteError(RuntimeError):
    """An output that cannot be written; the message names the file."""


# browser-safe H.264. x264's "superfast" preset at CRF 25: a third less encoder CPU than "veryfast" at CRF 23 (the
# encoder shares the two cores with the landmarks), the same PSNR, files about 1.4× as large (docs/decisions.md)
H264_ARGS = ["-c:v", "libx264", "-preset", "superfast", "-crf", "25", "-pix_fmt", "yuv420p"]
PIPE_BYTES = 1 << 20  # the frames' pipe to ffmpeg: Linux's largest for a user (pipe-max-size's default)


@dataclass
class VideoSummary:
    frames: int = 0
    width: int = 0
    height: int = 0
    video_fps: float = 0.0  # the output's frame rate: the input's (its average when the frame rate varies)
    rotation: int = 0  # degrees the stored frames were turned clockwise to show them upright
    codec: str | None = None  # of the drawn video: "h264", or "mp4v" without an ffmpeg that has libx264
    faces: int = 0  # faces over all frames
    max_faces: int = 0  # most faces in one frame
    frames_with_faces: int = 0
    tracks: int = 0  # distinct track ids
    detector_calls: int = 0
    seconds: float = 0.0  # wall time, reading and writing included
    output: str | None = None
    json: str | None = None
    notices: list[str] = field(default_factory=list)
    undecodable: list[int] = field(default_factory=list)  # numbers of the frames that could not be decoded
    # numbers the timestamps skip in an intact file (a variable frame rate on the stated rate's grid): no frame
    # is stored there, so none is lost
    skipped: list[int] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line each: what went wrong (frames not decoded)

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
        lost = f" ({len(self.undecodable)} more could not be decoded)" if self.undecodable else ""
        return (f"{self.frames} frames{lost} ({self.width}×{self.height}{turned}, {self.video_fps:.4g} fps), "
                f"{self.faces_per_frame:.2f} faces per frame, {self.tracks} tracks, "
                f"{self.detector_calls} detector calls, {self.seconds:.1f} s ({self.fps:.1f} frames/s)"
                + (f" -> {outputs}" if outputs else ""))


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


class _DrawnVideoWriter:
    """BGR frames of the input's size -> a video file without audio: H.264 through an ffmpeg pipe when an ffmpeg
    with libx264 is found, else OpenCV's 'mp4v'. Odd sides are padded to even ones (both codecs need them).

    `write` and `close` raise VideoWriteError (naming `target`, the name the user asked for) when the encoder
    fails; the caller then drops the video and keeps everything else."""

    def __init__(self, path: Path, target: Path, fps: float, size: tuple[int, int], notices: list[str]):
        self.path, self.target = path, target
        width, height = size
        self.pad = (width % 2, height % 2)  # black columns at the right, rows at the bottom
        self.size = (width + self.pad[0], height + self.pad[1])
        if any(self.pad):
            notices.append(f"the frames are {width}×{height}; the drawn video is {self.size[0]}×{self.size[1]}, "
                           "padded with black at the right/bottom (its codec needs even sides); the points "
                           "keep their coordinates")
        self.frames = 0
        self.process = self.writer = self.log = None
        ffmpeg = find_ffmpeg()
        if ffmpeg is not None and _has_libx264(ffmpeg):
            self.codec = "h264"
            self.log = tempfile.TemporaryFile()  # ffmpeg's messages; a pipe could fill up and block it
            # frames go in as YUV 4:2:0 (BT.601, limited range, as OpenCV converts them): half the bytes through the
            # pipe, and OpenCV's conversion is cheaper than ffmpeg's (docs/decisions.md)
            command = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                       "-s", f"{self.size[0]}x{self.size[1]}", "-framerate", f"{fps:.9g}", "-i", "-",
                       "-an", *H264_ARGS, "-f", "mp4", str(path)]
            try:
                self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                stderr=self.log)
                _widen_pipe(self.process.stdin)
            except OSError as e:
                self.log.close()
                raise VideoWriteError(f"{target}: cannot start ffmpeg to write H.264 ({e})") from None
        else:
            self.codec = "mp4v"
            if ffmpeg is not None:  # without any ffmpeg, the notice on the audio says so
                notices.append(f"{ffmpeg} cannot encode H.264 (no libx264): the drawn video is mp4v, which "
                               "browsers may not play (imageio-ffmpeg's ffmpeg can: pip install 'facemark[video]' "
                               "and take this one off PATH)")
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size)
            if not self.writer.isOpened():
                raise VideoWriteError(f"{target}: OpenCV cannot write an mp4v video here")

    def write(self, bgr: np.ndarray) -> None:
        if any(self.pad):
            bgr = cv2.copyMakeBorder(bgr, 0, self.pad[1], 0, self.pad[0], cv2.BORDER_CONSTANT, value=(0, 0, 0))
        if self.process is not None:
            try:
                self.process.stdin.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).data)
            except OSError:  # a broken pipe: ffmpeg has exited, and close() says why
                self.close()
                raise VideoWriteError(f"{self.target}: ffmpeg stopped taking frames") from None
        else:
            self.writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        """Finish the file; VideoWriteError if the encoder failed. Safe to call more than once."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.process is None:
            return
        process, self.process = self.process, None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            code = process.wait(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        self.log.seek(0)
        message = self.log.read().decode("utf-8", "replace")
        self.log.close()
        if code != 0:
            why = next((line.strip() for line in reversed(message.splitlines()) if line.strip()),
                       f"exit status {code}")
            raise VideoWriteError(f"{self.target}: ffmpeg could not encode the drawn video ({why})")

    def abort(self) -> None:
        """Stop without caring how it ends (the file is then deleted by the caller)."""
        if self.process is not None:
            self.process.kill()
        with contextlib.suppress(VideoWriteError, OSError, ValueError):
            self.close()


def _widen_pipe(pipe) -> None:
    """Ask Linux for a pipe of PIPE_BYTES (its default is 64 KiB, so a 720p frame took some 20 hand-overs to
    ffmpeg); elsewhere, or when refused (/proc/sys/fs/pipe-max-size), the pipe stays as it is."""
    try:
        import fcntl
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass


@functools.lru_cache(maxsize=4)
def _has_libx264(ffmpeg: str) -> bool:
    """Whether this ffmpeg binary can encode H.264 with libx264 (imageio-ffmpeg's static build can; some
    distribution builds cannot)."""
    try:
        done = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-encoders"], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and any(line.split()[1:2] == ["libx264"] for line in done.stdout.splitlines())


def incomplete_name(path: Path) -> Path:
    """Where an interrupted run leaves the JSON Lines it wrote: clip.jsonl -> clip.incomplete.jsonl."""
    return path.with_name(f"{path.stem}.incomplete{path.suffix}")


def _temporary(path: Path) -> Path:
    """A hidden name beside `path`, with its suffix (OpenCV picks the container from it)."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def _frame_record(index: int, t: float, faces: list[TrackedFace], size: tuple[int, int] | None = None) -> dict:
    return {"frame": index, "time": round(t, 6), "faces": [_face_record(f, size) for f in faces]}


def _face_record(face: TrackedFace, size: tuple[int, int] | None) -> dict:
    """A tracked face's JSON, with its eye and mouth openness and head pose (facemark.geometry.openness, .pose)."""
    from facemark.geometry.openness import eye_openness, mouth_openness
    from facemark.geometry.pose import PoseError, head_pose

    record = face.to_dict()
    if face.scheme.name not in ("face88", "ibug68"):
        return record
    eyes = eye_openness(face.points, face.scheme)
    mouth = float(mouth_openness(face.points, face.scheme))
    record["eye_openness"] = [_rounded(v) for v in eyes]
    record["mouth_openness"] = _rounded(mouth)
    try:
        record["pose"] = head_pose(face.points, face.scheme, image_size=size).to_dict()
    except PoseError:
        record["pose"] = None
    return record


def _add_blinks(record: dict, detectors: dict) -> None:
    """A face's record gets `"blink": {"start": first, "end": last}` (frame numbers, inclusive) on the frame its
    eyes are open again after a blink (facemark.geometry.openness.BlinkDetector, one per track)."""
    from facemark.geometry.openness import BlinkDetector

    for face in record["faces"]:
        if "eye_openness" not in face:
            continue
        values = [v for v in face["eye_openness"] if v is not None]
        detector = detectors.setdefault(face["track"], BlinkDetector())
        blink = detector.update(record["frame"], float(np.mean(values)) if values else math.nan)
        if blink is not None:
            face["blink"] = {"start": blink[0], "end": blink[1]}


def _rounded(v: float) -> float | None:
    v = float(v)
    return round(v, 4) if math.isfinite(v) else None


def check_video_outputs(input_path: str | Path, output_path: str | Path | None,
                        json_path: str | Path | None, plot_path: str | Path | None = None) -> None:
    """Raise the error `run_video` would raise for these output names before reading a frame (fast: nothing
    is opened): a ValueError for a name that cannot be used, an OutputError (an OSError) for an output that
    cannot be written there (a read-only folder, a file where a folder should be)."""
    _plan_outputs(Path(input_path), output_path, json_path, plot_path)


def _plan_outputs(source: Path, output_path, json_path, plot_path=None):
    """(video target, JSON file target, JSON stream, JSON to stdout) for the names asked for, each checked
    writable; a ValueError or OutputError when one cannot be used."""
    target = Path(output_path) if output_path is not None else None
    if plot_path is not None:
        plot = Path(plot_path)
        if plot.suffix.lower() != ".png":
            raise ValueError(f"{plot}: the plot must be a .png file")
        if plot.is_dir():
            raise ValueError(f"{plot}: is a directory; give the plot's file name")
    if target is None and json_path is None and plot_path is None:
        raise ValueError("nothing to write: give an output video, a JSON path, a plot, or more than one")
    if target is not None:
        if target.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{target}: the output video must end in {', '.join(VIDEO_SUFFIXES)}")
        if target.is_dir():
            raise ValueError(f"{target}: is a directory; give the output video's file name")
        if source.exists() and target.exists() and os.path.samefile(source, target):
            raise ValueError(f"{target}: the output would overwrite the input")
    json_to_stdout = json_path is not None and str(json_path) == "-"
    json_target = Path(json_path) if json_path is not None and not json_to_stdout else None
    json_stream = None  # a FIFO or device (/dev/stdout): written directly, it cannot be renamed into place
    if json_target is not None and json_target.exists() and not json_target.is_file():
        if json_target.is_dir():
            raise ValueError(f"{json_target}: is a directory, not a JSON Lines file")
        json_stream, json_target = json_target, None
    # every output can be written, before a frame is decoded: a read-only folder found at the end would lose
    # the whole run's work
    for path in (target, json_target, None if plot_path is None else Path(plot_path)):
        if path is not None:
            check_writable_file(path)
    return target, json_target, json_stream, json_to_stdout


def _frame_ranges(numbers: list[int], most: int = 8) -> str:
    """"frames 3, 7–9, 12" for [3, 7, 8, 9, 12] ("frame 3" for [3]); after `most` ranges, how many frames are
    left unnamed."""
    ranges: list[list[int]] = []
    for n in numbers:
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    shown = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in ranges[:most])
    left = sum(b - a + 1 for a, b in ranges[most:])
    return ("frame " if len(numbers) == 1 else "frames ") + shown + (f" and {left} more" if left else "")


def run_video(landmarker, input_path: str | Path, output_path: str | Path | None, *,
              json_path: str | Path | None = None, smooth: bool = True, detect_every: int = 30,
              progress: bool = True, config: TrackerConfig | None = None,
              plot_path: str | Path | None = None) -> VideoSummary:
    """Landmarks for every frame of a video: a drawn copy at `output_path` (.mp4; H.264, or 'mp4v' without an
    ffmpeg that has libx264) and/or JSON Lines at `json_path` ("-" for stdout). `config` (a TrackerConfig)
    overrides `smooth` and `detect_every`. `progress`: a progress bar, and notices (no audio, no frame rate
    stated, odd frame size padded, ...) on stderr; they are also in the summary's `notices`.

    The input may be a video file or an animated GIF, WebP or PNG (facemark.video.reader). Frames that cannot
    be decoded (a damaged file) are skipped and reading goes on: the summary's `undecodable` lists their
    numbers, and `failed` says so in one line (the command line then exits with 1); in the drawn video a
    neighbouring frame stands in for each, without points, so it keeps the input's length and timing.

    Raises VideoError (a ValueError) for an input that is missing, not a video (an image, say) or has no
    frame that decodes, ValueError for unusable arguments, OutputError (an OSError) for an output that cannot
    be written there (checked before any frame is read), VideoWriteError (a RuntimeError) when the output
    video cannot be written after all; the JSON Lines asked for are then complete and in place before it is
    raised.
    """
    source = Path(input_path)
    target, json_target, json_stream, json_to_stdout = _plan_outputs(source, output_path, json_path, plot_path)

    start = time.perf_counter()
    reader = open_frames(source)
    summary = VideoSummary(output=str(target) if target else None,
                           json=str(json_path) if json_path is not None else None,
                           rotation=reader.rotation)
    video_tmp = _temporary(target) if target is not None else None
    json_tmp = _temporary(json_target) if json_target is not None else None
    writer: _DrawnVideoWriter | None = None
    json_out = None
    video_error: str | None = None  # why the drawn video was dropped; the points are still written
    undrawn: list[str] = []  # frames whose points could not be drawn (written without them)
    written = 0  # frames in the drawn video: those decoded, and a stand-in for each that could not be

    def write_stand_ins(count: int, rgb: np.ndarray | None) -> None:
        """In the drawn video, frames that could not be decoded as a player shows them: the frame before (the
        first that decodes, for those before it), without points as the JSON has none, so that the video keeps
        the input's length and timing."""
        nonlocal writer, video_error, written
        if writer is None or count <= 0 or rgb is None:
            return
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        try:
            for _ in range(count):
                writer.write(bgr)
                written += 1
        except VideoWriteError as e:
            video_error = str(e)
            writer.abort()
            writer = None

    frames = None
    try:
        # decoded a few frames ahead by a thread of its own, while the frames before are worked on
        frames = ReadAhead(reader)
        frame = next(frames, None)
        if frame is None:
            raise reader.no_frames_error()
        fps = reader.fps
        if fps is None:
            fps = DEFAULT_FPS
            summary.notices.append(f"{source} states no frame rate; assuming {DEFAULT_FPS:g} fps")
        height, width = frame.bgr.shape[:2]
        summary.width, summary.height, summary.video_fps = width, height, fps

        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            writer = _DrawnVideoWriter(video_tmp, target, fps, (width, height), summary.notices)
            summary.codec = writer.codec
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
        bar = tqdm(total=reader.stated_frames or None, desc="video", unit="frame", disable=not progress)
        timeline_of_measures: list[dict] = []  # the frames' records, for the plot
        blink_detectors: dict = {}  # track -> BlinkDetector
        last_number, last_rgb = None, None
        with bar:
            while frame is not None:
                if frame.bgr.shape[:2] != (height, width):
                    raise VideoError(f"{source}: frame {frame.number} is {frame.bgr.shape[1]}×"
                                     f"{frame.bgr.shape[0]}, the first was {width}×{height}")
                rgb = cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2RGB)
                lost = frame.number - (-1 if last_number is None else last_number) - 1
                write_stand_ins(lost, rgb if last_number is None else last_rgb)
                faces = tracker.update(rgb, frame.time)

                summary.faces += len(faces)
                summary.max_faces = max(summary.max_faces, len(faces))
                summary.frames_with_faces += bool(faces)
                track_ids.update(f.track for f in faces)
                record = _frame_record(frame.number, frame.time, faces, (width, height))
                _add_blinks(record, blink_detectors)
                if plot_path is not None:
                    timeline_of_measures.append(record)
                if json_out is not None:  # the points first: nothing about the drawing may lose them
                    json_out.write(json.dumps(record) + "\n")
                if writer is not None:
                    try:
                        draw_faces(frame.bgr, faces, landmarker.scheme)
                    except (cv2.error, ValueError, OverflowError) as e:
                        undrawn.append(f"frame {frame.number}: {' '.join(str(e).split())[:120]}")
                    try:
                        writer.write(frame.bgr)
                        written += 1
                    except VideoWriteError as e:
                        video_error = str(e)
                        writer.abort()
                        writer = None
                last_number, last_rgb = frame.number, rgb
                bar.update(1 + lost)
                frame = next(frames, None)
        frames.close()  # the reader's counts below are final once its thread is done
        lost_at_end = [n for n in reader.undecodable if n > last_number]  # an animation that breaks off
        write_stand_ins(len(lost_at_end), last_rgb)
        # the frames up to the last one known, those that could not be decoded included
        in_timeline = max([last_number, *lost_at_end]) + 1
        summary.frames = reader.decoded
        if reader.failed_reads:  # a damaged file: the frames missing are those that could not be decoded
            summary.undecodable = list(reader.undecodable)
        else:  # an intact file whose timestamps skip places on the stated rate's grid: a variable frame rate
            summary.skipped = list(reader.undecodable)
        summary.tracks = len(track_ids)
        summary.detector_calls = tracker.stats.detector_calls
        stale = (f"{reader.out_of_order} pictures came out under the time of a frame already shown (a damaged "
                 "stream) and are left out" if reader.out_of_order else "")
        if reader.undecodable and reader.failed_reads:
            summary.failed.append(
                f"{source}: {len(reader.undecodable)} of {in_timeline} frames could not be decoded ("
                f"{_frame_ranges(reader.undecodable)}): they have no line in the JSON Lines, and in the drawn video "
                "a neighbouring frame stands in for each, without points" + (f"; {stale}" if stale else ""))
        elif stale:
            summary.failed.append(f"{source}: {stale}")
        timeline = reader.timeline
        if summary.skipped:  # gaps in the timestamps: no frame is stored there
            summary.notices.append(
                f"{source} has a variable frame rate (frames {1000 * timeline.min_step:.0f} to "
                f"{1000 * timeline.max_step:.0f} ms apart): its timestamps skip {len(summary.skipped)} places of "
                f"its {fps:.4g} fps ({_frame_ranges(summary.skipped)}); the JSON Lines number frames by their "
                "timestamps, the drawn video repeats the frame before each skipped place, so it lasts as long as "
                "the input")
        average = timeline.average_fps()
        # how many frames longer (or shorter) the output would last at the stated rate than the input does
        drift = in_timeline * abs(average / fps - 1) if average else 0.0
        timescale = fps / average if drift > RETIME_TOLERANCE_FRAMES else None
        # a file that states a nominal rate estimates its frame count from it (duration × rate): no count to hold
        # the frames read against
        if reader.stated_frames > 0 and reader.stated_frames != in_timeline and not timescale:
            summary.notices.append(f"{source} states {reader.stated_frames} frames, {in_timeline} could be read")
        if undrawn:
            summary.notices.append(f"{len(undrawn)} frames are in the drawn video without their points, which "
                                   f"could not be drawn (first: {undrawn[0]}); the JSON Lines have them")

        if writer is not None:
            try:
                writer.close()
                _check_written(video_tmp, target, written, writer.size)
                finished = _finish_with_ffmpeg(source, video_tmp, target, written, writer.size, summary.notices,
                                               timescale=timescale, codec=writer.codec, audio=reader.has_audio)
            except VideoWriteError as e:
                video_error = str(e)
            else:
                if timescale and finished:
                    summary.video_fps = average
                    if not timeline.variable:  # the variable frame rate's notice (below) says so otherwise
                        summary.notices.append(
                            f"{source} states {fps:.4g} fps but its frames come at {average:.4g} per second: the "
                            "drawn video shows them at that rate, so it lasts as long as the input")
                elif timescale:
                    summary.notices.append(
                        f"{source} states {fps:.4g} fps but its frames come at {average:.4g} per second: not "
                        f"re-timed without a working ffmpeg, the output lasts {written / fps:.1f} s instead of "
                        f"{written / average:.1f} s")
            writer = None
        if timeline.variable and not summary.skipped:
            summary.notices.append(
                f"{source} has a variable frame rate (frames {1000 * timeline.min_gap:.0f} to "
                f"{1000 * timeline.max_gap:.0f} ms apart): each frame's own time is in the JSON Lines; an output "
                f"video shows them at a constant {summary.video_fps:.4g} fps, the average")
        if json_out is not None and json_out is not sys.stdout:
            json_out.close()
        json_out = None
        # everything is complete: only now do the files take the names asked for
        if json_target is not None:
            os.replace(json_tmp, json_target)
            json_tmp = None
        if plot_path is not None:
            write_measures_plot(timeline_of_measures, plot_path, title=source.name)
        if video_error is not None:
            kept = f"; the points are in {json_path}" if json_path is not None else ""
            raise VideoWriteError(f"{video_error}; no drawn video was written{kept}")
        if target is not None:
            os.replace(video_tmp, target)
            video_tmp = None
    except (KeyboardInterrupt, VideoError) as stop:
        # Ctrl-C, or a frame that cannot go on (a frame of another size): the points of the frames done are
        # kept, under a name that says they are not all; the drawn video, which would not keep the input's
        # length, is not
        if json_tmp is None or json_out is None or json_out is sys.stdout:
            raise
        json_out.close()
        json_out = None
        # the frames done: the whole lines in the file (a count kept beside the writes could be one off at Ctrl-C)
        with open(json_tmp, encoding="utf-8", errors="replace") as written_lines:
            in_json = sum(1 for line in written_lines if line.endswith("\n"))
        if in_json == 0:
            raise
        kept = incomplete_name(json_target)
        os.replace(json_tmp, kept)
        json_tmp = None
        what = (f"the points of the first {in_json} frames are in {kept} (incomplete: the video was not read to "
                "its end); no other output was written")
        if isinstance(stop, KeyboardInterrupt):
            raise KeyboardInterrupt(what) from None
        raise VideoError(f"{stop}; {what}") from None
    finally:
        if frames is not None:
            frames.close()
        reader.close()
        if writer is not None:
            writer.abort()
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


def write_measures_plot(records: list[dict], path: str | Path, *, title: str = "",
                        blink_threshold: float | None = None) -> None:
    """A PNG of each track's eye openness (mean of both eyes) and mouth openness over time, from the frames'
    JSON records, with each track's blink threshold (facemark.geometry.openness.blink_threshold: a share of its median,
    unless `blink_threshold` is given) dashed and the blinks found under it shaded. Written under a temporary
    name and renamed; VideoWriteError when it cannot be written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facemark.geometry.openness import BLINK_SHARE_OF_MEDIAN, find_blinks
    from facemark.geometry.openness import blink_threshold as relative_threshold
    tracks: dict[int, list[tuple[float, float, float]]] = {}
    for record in records:
        for face in record["faces"]:
            eyes = [v for v in face.get("eye_openness") or [] if v is not None]
            mouth = face.get("mouth_openness")
            tracks.setdefault(face["track"], []).append(
                (record["time"], float(np.mean(eyes)) if eyes else math.nan, math.nan if mouth is None else mouth))
    fig, (ax_eye, ax_mouth) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for track, rows in sorted(tracks.items()):
        t, eye, mouth = (np.array(c) for c in zip(*rows))
        threshold = relative_threshold(eye) if blink_threshold is None else blink_threshold
        blinks = find_blinks(eye, threshold)
        line, = ax_eye.plot(t, eye, lw=1, label=f"track {track}: {len(blinks)} blinks")
        ax_mouth.plot(t, mouth, lw=1, color=line.get_color())
        if np.isfinite(threshold):
            ax_eye.axhline(threshold, color=line.get_color(), ls="--", lw=0.8)
        for first, last in blinks:
            ax_eye.axvspan(t[first], t[last] + 1e-3, color=line.get_color(), alpha=0.2, lw=0)
    rule = (f"{blink_threshold:g}" if blink_threshold is not None else f"{BLINK_SHARE_OF_MEDIAN:g} × median")
    ax_eye.plot([], [], color="k", ls="--", lw=0.8, label=f"blink threshold ({rule})")
    ax_eye.set_ylabel("eye openness (EAR)")
    ax_mouth.set_ylabel("mouth openness")
    ax_mouth.set_xlabel("time (s)")
    ax_eye.set_title(title or "eye and mouth openness")
    ax_eye.legend(fontsize=7, loc="lower right")
    for ax in (ax_eye, ax_mouth):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.tmp{os.getpid()}.png")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, dpi=90)
        os.replace(tmp, target)
    except OSError as e:
        raise VideoWriteError(f"{target}: cannot write the plot: {e.strerror or e}") from None
    finally:
        plt.close(fig)
        with contextlib.suppress(OSError):
            tmp.unlink()


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
                        notices: list[str], *, timescale: float | None = None, codec: str = "mp4v",
                        audio: bool = True) -> bool:
    """Copy the source's audio (if any) into `video`, in place, with ffmpeg; `timescale` stretches the video's
    timestamps by that factor (a re-timing without re-encoding). True when done; otherwise `video` stays as
    it was first written (without audio), and a notice says why. `audio=False`: a source that holds none (an
    animated image, which ffmpeg may not even read): the video alone is re-muxed (and re-timed)."""
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        notices.append("no ffmpeg (none on PATH, and no imageio-ffmpeg package: pip install 'facemark[video]'): "
                       f"the output is {codec} (browsers may not play it)"
                       + (" and has no audio track (OpenCV writes video only)" if audio else ""))
        return False
    muxed = video.with_name(f".{video.stem}.audio{video.suffix}")
    retime = ["-itsscale", f"{timescale:.9g}"] if timescale else []
    # "1:a?" maps the audio streams if there are any; no -shortest, so no video frame is ever cut
    sound = ["-i", str(source), "-map", "0:v:0", "-map", "1:a?"] if audio else ["-map", "0:v:0"]
    base = [ffmpeg, "-nostdin", "-v", "error", "-y", *retime, "-i", str(video), *sound,
            "-c:v", "copy", "-movflags", "+faststart"]
    try:
        # copy the audio when the mp4 can hold its codec, else encode it
        for codec_args in ((["-c:a", "copy"], ["-c:a", "aac"]) if audio else ([],)):
            done = subprocess.run(base + codec_args + [str(muxed)], capture_output=True, text=True, timeout=600)
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
