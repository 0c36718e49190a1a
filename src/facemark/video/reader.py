"""Reading a video for `facemark video`: a video file or an animated image -> numbered, timed BGR frames.

- Video files are decoded by OpenCV's FFmpeg. A frame that fails to decode (a damaged file) does not end the
  video: reading goes on until the end (the frame count the file states, or many failed reads in a row), as
  ffmpeg and players do. Frames are numbered by their timestamps when they lie on the stated frame rate's grid
  (constant-rate files), so a frame keeps its number whatever was lost before it; otherwise (a variable frame
  rate) one after another, counting each failed read as one lost frame. The numbers skipped are the frames
  that could not be decoded: `FrameReader.undecodable`. After damage, a picture the decoder gives out under a
  time already passed (a stale reference picture; ffmpeg gives it out too, and its constant-rate output drops
  it) has no place in the video and is left out, counted.
- Animated GIF, WebP and PNG (APNG) are decoded by Pillow (FFmpeg reads no animated WebP), each frame
  composited over black as `facemark.images` does for still images, timed by the frames' durations.
- A still image is refused (`facemark predict` is for images), and so is any other image holding several
  pictures (a multi-page TIFF), naming its format.
- Rotated videos (phones store portrait video as landscape pixels plus a display rotation): frames are turned
  upright as a player shows them. OpenCV does this only when asked (its CAP_PROP_ORIENTATION_AUTO is off by
  default in the 4.11 wheels); a rotation it cannot apply is an error.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# FFmpeg inside OpenCV prints its own line ("moov atom not found") before our one-line error; silence it.
# Read when OpenCV first opens a file with FFmpeg, so it must be set before any capture exists.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
import cv2  # noqa: E402

from facemark.images import IMAGE_EXTENSIONS, sniff, to_rgb  # noqa: E402

DEFAULT_FPS = 30.0  # used when a file does not say its frame rate
# Failed reads in a row after which a video whose stated frame count is not reached yet is taken to have
# ended (a truncated file, a count estimated from the duration). A damaged stretch costs one failed read per
# frame it spoils; at the end of a file a read fails in microseconds, so a generous limit costs nothing.
MAX_FAILED_READS_IN_A_ROW = 250
# A timestamp this far (in frame periods) from the stated rate's grid means the frames do not come at that
# rate (a variable frame rate): frames are then numbered one after another.
GRID_TOLERANCE = 0.25
# What browsers do with a GIF frame delay of 0 or 10 ms: show it for 100 ms
MIN_FRAME_DURATION_MS, BROWSER_FRAME_DURATION_MS = 20, 100
# Pillow formats read as animations; other images with several pictures are refused
ANIMATED_FORMATS = {"GIF": "GIF", "WEBP": "WebP", "PNG": "PNG (APNG)"}


class VideoError(ValueError):
    """An input video that cannot be used; the message names the file and says why, in one line."""


@dataclass
class Frame:
    number: int  # its place in the video, counting the frames before it that could not be decoded
    time: float  # seconds: the container's timestamp (or the nominal time when it has none)
    bgr: np.ndarray  # H×W×3 uint8, upright as a player shows it


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


# ------------------------------------------------------------------------------------------------ opening


def _check_file(name: str) -> None:
    """A VideoError unless `name` is a non-empty file."""
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


def _image_kind(name: str) -> tuple[str, int] | None:
    """(Pillow format, number of pictures) of an image file in one of the formats facemark reads, else None
    (a video, anything Pillow does not take for one of those formats)."""
    from PIL import Image

    formats = sorted({Image.registered_extensions().get(ext) for ext in IMAGE_EXTENSIONS} - {None})
    try:
        with Image.open(name, formats=formats) as img:  # reads the header (a GIF: every frame's header)
            return img.format, int(getattr(img, "n_frames", 1))
    except Exception:  # not an image Pillow knows: the usual case for a video
        return None


def _refuse_images(name: str) -> tuple[str, int] | None:
    """(format, frames) of an animated GIF, WebP or PNG; None for anything else that may be a video; a
    VideoError for other images."""
    kind = _image_kind(name)
    if kind is None:
        return None
    fmt, frames = kind
    if frames == 1:  # OpenCV's FFmpeg would read it as a video of one frame
        raise VideoError(f"{name}: is an image ({fmt}), not a video; for an image use `facemark predict {name}`")
    if fmt not in ANIMATED_FORMATS:
        raise VideoError(f"{name}: is a {fmt} image of {frames} pictures, not a video; `facemark video` reads "
                         f"video files and animated {', '.join(ANIMATED_FORMATS.values())}")
    return kind


def open_video(path: str | os.PathLike) -> cv2.VideoCapture:
    """An opened OpenCV capture of a video file, or a VideoError saying why not. `open_frames` reads more: past
    damaged frames, and animated WebP (which OpenCV's FFmpeg does not read)."""
    name = os.fspath(path)
    _check_file(name)
    _refuse_images(name)
    return _open_capture(name)


def _open_capture(name: str) -> cv2.VideoCapture:
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


def open_frames(path: str | os.PathLike) -> FrameReader:
    """The frames of a video file or an animated GIF/WebP/PNG, or a VideoError saying why they cannot be read
    (the file itself is opened; no frame is decoded yet)."""
    name = os.fspath(path)
    _check_file(name)
    kind = _refuse_images(name)
    if kind is not None:
        return _AnimatedImageReader(name, *kind)
    return _VideoFileReader(name, _open_capture(name))


def check_video_input(path: str | os.PathLike) -> None:
    """Raise the VideoError `run_video` would raise for this input on opening it, without decoding a frame
    (fast: lets the command line refuse a bad input before it loads any model)."""
    open_frames(path).close()


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
    found = sniff(name)
    if found.kind in ("unreadable",):
        return found.detail
    if found.kind == "text":
        return f"not a video file ({found.detail})"
    if found.kind == "heif":  # OpenCV's FFmpeg does not read HEIC/AVIF images as videos
        return (f"an {found.detail} image, which facemark cannot read as a video (it reads video "
                f"files and animated {', '.join(ANIMATED_FORMATS.values())})")
    if found.kind == "mp4":
        return "not a readable video (an MP4/MOV container without a playable video stream: truncated?)"
    return f"not a video file OpenCV can read (starts with {found.head[:8].hex(' ')})"


def video_fps(capture: cv2.VideoCapture) -> float | None:
    """The frame rate the file states, or None when it states none usable."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if math.isfinite(fps) and 0 < fps <= 1000 else None


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class Timeline:
    """The frames' times as they are read, and what the output's frame rate is decided from."""

    first: float = math.nan
    last: float = -math.inf
    count: int = 0  # frames from the first to the last read, those that could not be decoded included
    min_gap: float = math.inf  # seconds between neighbouring frames (a gap over lost frames shared out)
    max_gap: float = 0.0
    min_step: float = math.inf  # seconds between neighbouring frames read, as stored (nothing shared out)
    max_step: float = 0.0
    nominal: int = 0  # frames without a usable container timestamp (given the nominal time instead)

    def next(self, stamp: float, fps: float, lost: int = 0) -> float:
        """The next frame's time: its container timestamp when that moves forward, else 1 / fps after the one
        before (and the `lost` frames between them)."""
        t = stamp
        if not (math.isfinite(t) and t > self.last):
            t = self.last + (1 + lost) / fps if self.count else 0.0
            self.nominal += 1
        if self.count:
            gap = (t - self.last) / (1 + lost)
            self.min_gap, self.max_gap = min(self.min_gap, gap), max(self.max_gap, gap)
            self.min_step, self.max_step = min(self.min_step, t - self.last), max(self.max_step, t - self.last)
            self.count += lost
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


class FrameReader:
    """Frames one by one (`for frame in reader`), with what is known about the video.

    After the frames are read: `decoded` (frames given out), `undecodable` (the numbers of the frames that
    could not be decoded, in the gaps between those given out), `failed_reads` (reads that failed before a
    frame decoded again: a damaged file when above 0), `out_of_order` (pictures a damaged stream gave out
    under a time already passed, left out) and `timeline`."""

    name: str
    kind: str  # "video", or the animated image's format ("GIF", "WebP", "PNG (APNG)")
    fps: float | None  # the rate the file states
    stated_frames: int  # the frame count the file states; 0 when it states none
    rotation: int = 0  # degrees the stored frames are turned clockwise to show them upright
    has_audio: bool = True  # whether it may hold audio worth copying into the output

    def __init__(self):
        self.decoded = 0
        self.undecodable: list[int] = []
        self.failed_reads = 0
        self.out_of_order = 0
        self.timeline = Timeline()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def no_frames_error(self) -> VideoError:
        """The error for a video from which no frame could be decoded."""
        if self.stated_frames > 0:
            return VideoError(f"{self.name}: none of its {self.stated_frames} frames could be decoded "
                              "(a damaged file, or a codec this OpenCV build lacks)")
        return VideoError(f"{self.name}: the video has no frames")


class ReadAhead:
    """The frames of a FrameReader, decoded by a thread of their own up to `depth` frames ahead of the caller, so a
    video's decoding overlaps the work on the frames before it (OpenCV decodes without holding Python's lock).
    Iterated as the reader is; an error raised by the reader comes out of `next` in the caller's thread. `close()`
    stops the thread and waits for it: call it before closing the reader (the thread may be inside a read), and
    before reading the reader's counts (`decoded`, `undecodable`, ...), which the thread updates."""

    def __init__(self, reader: FrameReader, depth: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(iter(reader),), name="facemark-read-ahead",
                                        daemon=True)
        self._thread.start()

    def _read(self, frames: Iterator[Frame]) -> None:
        try:
            for frame in frames:
                if not self._put(("frame", frame)):
                    return
            self._put(("end", None))
        except BaseException as e:  # handed to the caller, whatever it is
            self._put(("error", e))

    def _put(self, item) -> bool:
        """Queue `item`, waiting while the queue is full; False once the caller has closed this."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> "ReadAhead":
        return self

    def __next__(self) -> Frame:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "frame":
            return value
        self._done = True
        self._thread.join()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _VideoFileReader(FrameReader):
    """A video file through OpenCV's FFmpeg: reads past frames that fail to decode (module docstring)."""

    kind = "video"

    def __init__(self, name: str, capture: cv2.VideoCapture):
        super().__init__()
        self.name, self.capture = name, capture
        self.rotation = display_rotation(capture, name)
        self.fps = video_fps(capture)
        self.stated_frames = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))

    def __iter__(self) -> Iterator[Frame]:
        rate = self.fps or DEFAULT_FPS
        failed = 0  # failed reads since the last frame that decoded
        last = -1  # the last number given out
        first_time = math.nan
        on_grid = self.fps is not None  # numbering by timestamps, until one is off the stated rate's grid
        while True:
            with _quiet_opencv():
                ok, bgr = self.capture.read()
            if not ok or bgr is None:
                failed += 1
                if failed >= MAX_FAILED_READS_IN_A_ROW or (self.stated_frames and
                                                          last + 1 + failed > self.stated_frames):
                    return  # the end; the failed reads were the end of the file, not lost frames
                continue
            stamp = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if (0 < stamp <= self.timeline.last and not self.timeline.nominal and (self.failed_reads or failed)):
                # after damage a decoder may give out a picture under a time already passed (ffmpeg too):
                # no place in the video is free for it, and its pixels are a stale reference's. (A stamp of 0
                # is OpenCV's "none": a file without timestamps numbers its frames one after another.)
                self.out_of_order += 1
                continue
            number = last + 1 + failed  # each failed read: one frame lost
            if on_grid and math.isfinite(stamp):
                if last < 0:  # the first frame is 0, unless reads failed before it: then the container's time
                    # (from its stream's start) says how many were lost, or, if it says fewer, the failures do
                    first_time = min(0.0, stamp - failed / rate) if failed else stamp
                position = (stamp - first_time) * rate
                if abs(position - round(position)) <= GRID_TOLERANCE and round(position) > last:
                    number = round(position)  # a B-frame lost before it may have failed after it
                else:
                    on_grid = False
            lost = number - last - 1
            self.undecodable.extend(range(last + 1, number))
            self.failed_reads += failed
            failed = 0
            time = self.timeline.next(stamp, rate, lost if last >= 0 else 0)
            last = number
            self.decoded += 1
            yield Frame(number, time, bgr)

    def close(self) -> None:
        self.capture.release()


class _AnimatedImageReader(FrameReader):
    """An animated GIF, WebP or PNG through Pillow, frame by frame, timed by the frames' durations."""

    has_audio = False

    def __init__(self, name: str, fmt: str, frames: int):
        from PIL import Image

        super().__init__()
        self.name, self.format, self.kind = name, fmt, ANIMATED_FORMATS[fmt]
        self.stated_frames = frames
        try:
            self.image = Image.open(name, formats=[fmt])
            self.image.load()
        except Exception as e:
            raise VideoError(f"{name}: an animated {self.kind} image that cannot be decoded "
                             f"({' '.join(str(e).split()) or type(e).__name__})") from None
        # the first frame's rate, as a container states one; the timeline's average decides the output's
        self.fps = 1000.0 / self._duration_ms()

    def _duration_ms(self) -> float:
        duration = self.image.info.get("duration")
        if not isinstance(duration, int | float) or duration < MIN_FRAME_DURATION_MS:
            return BROWSER_FRAME_DURATION_MS
        return float(duration)

    def __iter__(self) -> Iterator[Frame]:
        time = 0.0
        for number in range(self.stated_frames):
            try:
                self.image.seek(number)
                rgb = np.asarray(to_rgb(self.image))
            except Exception:  # a damaged frame: Pillow cannot go past it, the rest are lost too
                self.undecodable.extend(range(number, self.stated_frames))
                self.failed_reads += 1
                return
            self.timeline.next(time, self.fps)
            self.decoded += 1
            yield Frame(number, time, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            time += self._duration_ms() / 1000.0

    def close(self) -> None:
        self.image.close()

    def no_frames_error(self) -> VideoError:
        return VideoError(f"{self.name}: none of the {self.stated_frames} frames of this animated {self.kind} "
                          "image could be decoded")
