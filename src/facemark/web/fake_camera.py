"""A clip for Chromium's fake camera (`--use-file-for-fake-video-capture=clip.y4m`): the browser tests and the speed
benchmark feed the page's webcam with it. Y4M, 4:2:0, with the `C420` header Chromium reads; every frame is the
source video's frame scaled to fit width×height, centred on a grey background (the whole frame kept, its shape too)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_y4m(video: str | Path, out: str | Path, width: int = 640, height: int = 480, frames: int = 150,
              fps: int = 30) -> Path:
    """Write `frames` frames of `video` (looped when shorter) as a width×height Y4M clip at `fps`; returns `out`.
    Raises OSError when the video cannot be read."""
    if width % 2 or height % 2:
        raise ValueError(f"4:2:0 needs an even size, got {width}×{height}")
    capture = cv2.VideoCapture(str(video))
    source = []
    while len(source) < frames:
        ok, bgr = capture.read()
        if not ok:
            break
        source.append(_fit(bgr, width, height))
    capture.release()
    if not source:
        raise OSError(f"cannot read frames from {video}")
    out = Path(out)
    with out.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode())
        for k in range(frames):
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(source[k % len(source)], cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


def _fit(bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    scale = min(width / w, height / h)
    size = (min(width, round(w * scale)), min(height, round(h * scale)))
    resized = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.full((height, width, 3), 96, np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    out[top:top + size[1], left:left + size[0]] = resized
    return out
