"""Phone-like variable-frame-rate clips through `facemark video`: is a valid file called damaged, does the notice
give the real frame spacing, and does the drawn video last as long as its audio?

    python benchmarks/variable_frame_rate.py

Each clip is the astronaut standing still (128×128), 7 s of video with a 7 s tone, its frames at the times an
ffmpeg expression gives (made with the ffmpeg `facemark video` itself uses):

- mkv, drops: 30 fps, two places of the grid without a frame (a phone dropping frames); MKV states 30 fps;
- mkv, 5 % slower: frames every 35 ms, MKV stating a nominal 30 fps (a phone slowing down in dim light);
- mkv, 4.7 % faster: frames every 31.8 ms, MKV stating 30 fps;
- mp4, drops and jitter: 30 fps ± 2 ms, three frames dropped; MP4 states the average.

Per clip: the summary line's count of frames "that could not be decoded", the failures (exit 1), the
spacing the notices give, the drawn video's length against the input's, and the drawn video's end against its
audio's (ffmpeg's decode of each stream). Results: benchmarks/results/variable_frame_rate.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

from facemark.cli.video import find_ffmpeg, run_video
from facemark.landmarker import Landmarker

from report import write_report

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.png"
SECONDS = 7.0
CLIPS = {  # name: (container, frames, time of frame N in seconds)
    "mkv, drops": ("mkv", 208, "(N+gte(N\\,60)+gte(N\\,150))/30"),
    "mkv, 5 % slower": ("mkv", 200, "N*0.035"),
    "mkv, 4.7 % faster": ("mkv", 220, "N*0.0318"),
    "mp4, drops and jitter": ("mp4", 206, "(N+0.06*sin(N*2.3)+gte(N\\,40)+gte(N\\,41)+gte(N\\,120))/30"),
}


def make_clip(ffmpeg: str, path: Path, frames: int, times: str) -> None:
    command = [ffmpeg, "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i", str(ASTRONAUT),
               "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}", "-vf",
               f"crop=256:256:100:40,scale=128:128,settb=1/90000,setpts=({times})/TB", "-frames:v", str(frames),
               "-enc_time_base", "1/90000", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
               "-fps_mode", "vfr", str(path)]
    subprocess.run(command, check=True)


def stream_seconds(ffmpeg: str, path: Path, stream: str) -> float:
    """How long one stream of a file plays: ffmpeg's decode of it to the end ("v" or "a")."""
    done = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path), "-map", f"0:{stream}", "-f", "null",
                           "-"], capture_output=True, text=True)
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", done.stderr)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--title", default="Variable frame rate")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "variable_frame_rate.md"))
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        raise SystemExit("needs ffmpeg (on PATH, or pip install 'facemark[video]')")
    landmarker = Landmarker(threads=1)
    rows = ["| clip | frames | 'could not be decoded' | failures (exit 1) | spacing in the notices | drawn video "
            "against the input | its video against its audio |", "|---" * 7 + "|"]
    with tempfile.TemporaryDirectory() as folder:
        for name, (container, frames, times) in CLIPS.items():
            clip = Path(folder) / f"clip.{container}"
            make_clip(ffmpeg, clip, frames, times)
            out = Path(folder) / "drawn.mp4"
            summary = run_video(landmarker, clip, out, json_path=Path(folder) / "points.jsonl", progress=False)
            line = summary.summary_line()
            lost = re.search(r"\((\d+) more could not be decoded\)", line)
            spacing = "; ".join(re.findall(r"frames \d+ to \d+ ms apart", " ".join(summary.notices))) or "-"
            seconds_in, seconds_out = stream_seconds(ffmpeg, clip, "v"), stream_seconds(ffmpeg, out, "v")
            audio = stream_seconds(ffmpeg, out, "a")
            rows.append(f"| {name} | {summary.frames} | {lost.group(1) if lost else 0} | {len(summary.failed)} | "
                        f"{spacing} | {seconds_out:.2f} s for {seconds_in:.2f} s "
                        f"({100 * (seconds_out / seconds_in - 1):+.1f} %) | {seconds_out - audio:+.2f} s |")
            print(rows[-1], flush=True)
    write_report(args.out, args.title, [f"Clips of {SECONDS:g} s with a tone as long (see the script's docstring); "
                                        "the drawn video's and its audio's lengths as ffmpeg decodes them.", "",
                                        *rows])


if __name__ == "__main__":
    main()
