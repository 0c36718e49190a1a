"""Frames of real talking-head clips, labelled by MediaPipe Face Mesh in video mode (refined landmarks): the
blinks and speech the photo sets rarely show, for `scripts/make_eye_cache.py`.

    python scripts/label_video_frames.py work/lp/d0.mp4 work/lp/d9.mp4 ... --out work/lp_frames

Writes `OUT/<clip>/<frame>.jpg` (every `--every`-th frame, and every frame whose eye openness is under 0.8 of
the clip's median: each blink whole) and `OUT/<clip>.jsonl`, one line per written frame in `scripts/mine_eyes.py`'s
format (`image` relative to OUT, `mp88`, `eyes`, `mouth`). Refuses the clips kept for evaluation
(../shared/data/more/exclude_videos.txt) and the three of ../shared/data/videos/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from facemark.geometry.openness import eye_openness, mouth_openness
from facemark.labels.teachers import mediapipe_video_points

REPO = Path(__file__).resolve().parents[1]

SHARED = REPO.parent / "shared" / "data"
EVALUATION_ONLY = {Path(line.strip()).name for line in (SHARED / "more" / "exclude_videos.txt").read_text().splitlines()
                   if line.strip().endswith(".mp4")} if (SHARED / "more" / "exclude_videos.txt").is_file() else set()
EVALUATION_ONLY |= {"d12.mp4", "d3.mp4", "s18.mp4"}  # the shared clips: benchmarks/blinks.py, eyelids.py
# the LivePortrait clips that exclude_videos.txt names today, refused even where that file is not at hand
EVALUATION_ONLY |= {"d6.mp4", "d13.mp4", "s20.mp4"}


def mediapipe_video(path: Path) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Every frame (RGB) of a clip and MediaPipe's face88 points on it (video mode), None where it lost the face."""
    frames, points = [], []
    for rgb, pts in mediapipe_video_points(path):
        frames.append(rgb)
        points.append(pts)
    return frames, points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clips", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=int, default=2, help="keep every N-th frame (and every low-openness one)")
    a = p.parse_args()
    out = Path(a.out)
    for clip in map(Path, a.clips):
        if clip.name in EVALUATION_ONLY:
            sys.exit(f"error: {clip.name} is kept for evaluation: never train on it")
        frames, points = mediapipe_video(clip)
        eyes = np.array([eye_openness(q).mean() if q is not None else np.nan for q in points])
        low = eyes < 0.8 * np.nanmedian(eyes)
        (out / clip.stem).mkdir(parents=True, exist_ok=True)
        kept = 0
        with (out / f"{clip.stem}.jsonl").open("w") as fh:
            for i, (rgb, q) in enumerate(zip(frames, points)):
                if q is None or not (i % a.every == 0 or low[i]):
                    continue
                name = f"{clip.stem}/{i:05d}.jpg"
                cv2.imwrite(str(out / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
                fh.write(json.dumps({"image": name, "mp88": np.round(q, 2).tolist(),
                                     "eyes": np.round(eye_openness(q), 4).tolist(),
                                     "mouth": round(float(mouth_openness(q)), 4)}) + "\n")
                kept += 1
        print(f"{clip.name}: {len(frames)} frames, {int(low.sum())} with low eye openness, {kept} kept", flush=True)


if __name__ == "__main__":
    main()
