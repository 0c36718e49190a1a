"""End-to-end video speed at 720p and 1080p: `facemark video` beside MediaPipe Face Mesh's video mode.

    python benchmarks/video_speed.py [--frames 300]

Clips: real talking-head footage, the clips of ../shared/data/videos (when present) scaled to the frame's height
on a grey HD canvas (H.264, encoded by the ffmpeg `facemark video` uses; s18 is 1280×720 already); and clips made
here from the sample photo (its face 40-60% of the height, panning and zooming slowly; mp4v, 25 fps, written with
OpenCV). For each clip:
- facemark, `run_video` as `facemark video IN --out OUT.mp4 --json OUT.jsonl` runs it (decode, detect every
  30 frames, track, smooth, draw, encode, JSON), and with `--json` only (no drawn video);
- MediaPipe Face Mesh in video mode (`static_image_mode=False`: it detects once and then tracks), on the same
  frames decoded by OpenCV (decode + landmarks; nothing drawn or written).
Frames per second over the whole clip (time.perf_counter), one run each after a short warm-up. Writes
benchmarks/results/video_speed.md.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facemark.landmarker import Landmarker
from facemark.images import load_image
from facemark.cli.video import find_ffmpeg, run_video
from report import write_report

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = REPO.parent / "shared" / "data" / "videos"

SAMPLE = REPO / "examples" / "astronaut.png"
FACE_BOX = (169.7, 61.0, 277.8, 169.1)  # the sample's face (BlazeFace box) in the 512-px image


def make_clip(path: Path, width: int, height: int, frames: int, fps: float = 25.0) -> None:
    """The sample photo on grey, its face 40-60% of the frame height and moving in a slow circle."""
    photo = Image.fromarray(load_image(SAMPLE))
    x0, y0, x1, y1 = FACE_BOX
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for k in range(frames):
        t = k / max(frames - 1, 1)
        scale = (0.5 + 0.1 * np.sin(2 * np.pi * t)) * height / (y1 - y0)
        cx, cy = width * (0.5 + 0.08 * np.cos(2 * np.pi * t)), height * (0.5 + 0.05 * np.sin(2 * np.pi * t))
        resized = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BILINEAR)
        canvas = Image.new("RGB", (width, height), (110, 110, 110))
        canvas.paste(resized, (round(cx - (x0 + x1) / 2 * scale), round(cy - (y0 + y1) / 2 * scale)))
        writer.write(cv2.cvtColor(np.asarray(canvas), cv2.COLOR_RGB2BGR))
    writer.release()


def make_real_clip(source: Path, path: Path, width: int, height: int, frames: int) -> None:
    """`source`'s first `frames` frames scaled to `height` (aspect kept) on a grey width×height canvas, H.264."""
    ffmpeg = find_ffmpeg()
    fit = (f"scale=-2:{height}:flags=bicubic,pad={width}:{height}:(ow-iw)/2:0:color=0x6e6e6e"
           f",crop={width}:{height}")
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source), "-frames:v", str(frames), "-an",
                    "-vf", fit, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                    str(path)], check=True)


def mediapipe_fps(path: Path) -> tuple[float, int]:
    """(frames per second, frames with a face) of MediaPipe Face Mesh in video mode over the clip."""
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True, max_num_faces=1)
    capture = cv2.VideoCapture(str(path))
    frames = found = 0
    start = time.perf_counter()
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames += 1
        found += bool(mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).multi_face_landmarks)
    seconds = time.perf_counter() - start
    capture.release()
    mesh.close()
    return frames / seconds, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per clip (at most: a real clip may be shorter)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "video_speed.md"))
    args = parser.parse_args()

    landmarker = Landmarker()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_clip(tmp / "warm.mp4", 640, 360, 10)
        run_video(landmarker, tmp / "warm.mp4", None, json_path=tmp / "warm.jsonl", progress=False)
        clips = []
        for source in sorted(REAL_CLIPS.glob("*.mp4")) if REAL_CLIPS.is_dir() else []:
            for width, height in [(1280, 720), (1920, 1080)]:
                clip = tmp / f"{source.stem}_{height}.mp4"
                make_real_clip(source, clip, width, height, args.frames)
                clips.append((f"{source.name} on {width}×{height}", clip))
        for width, height in [(1280, 720), (1920, 1080)]:
            clip = tmp / f"clip_{height}.mp4"
            make_clip(clip, width, height, args.frames)
            clips.append((f"the sample, moving, {width}×{height}", clip))
        for name, clip in clips:
            start = time.perf_counter()
            drawn = run_video(landmarker, clip, tmp / "drawn.mp4", json_path=tmp / "p.jsonl", progress=False)
            drawn_fps = drawn.frames / (time.perf_counter() - start)
            start = time.perf_counter()
            plain = run_video(landmarker, clip, None, json_path=tmp / "q.jsonl", progress=False)
            json_fps = plain.frames / (time.perf_counter() - start)
            mp_fps, mp_found = mediapipe_fps(clip)
            rows.append((name, plain.frames, drawn_fps, json_fps, mp_fps, mp_found))
            print(rows[-1], flush=True)
    lines = ["facemark with its defaults (1 thread, BlazeFace every 30 frames, tracking, smoothing).", "",
             "| clip | frames | `facemark video --out --json` fps | `facemark video --json` fps "
             "| MediaPipe Face Mesh, video mode, fps | MediaPipe frames with a face |",
             "|---|---:|---:|---:|---:|---:|",
             *[f"| {size} | {n} | {a:.1f} | {b:.1f} | {c:.1f} | {found} |" for size, n, a, b, c, found in rows], "",
             "facemark's figures include decoding and, with `--out`, drawing and encoding the output video; "
             "MediaPipe's include decoding only."]
    write_report(args.out, "Video speed, end to end", lines)


if __name__ == "__main__":
    main()
