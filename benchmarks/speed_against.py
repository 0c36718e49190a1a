"""This tree's `Landmarker()` against an earlier commit's, on the same one-face frames, in the same run.

    python benchmarks/speed_against.py 83c3fe7        # -> benchmarks/results/speed_against_83c3fe7.md

The commit's `src/` is taken with `git archive` into a temporary folder; each side runs in its own process
(PYTHONPATH pointing at its `src/`), the two alternating round by round, so both see the same machine. Frames:
`speed.size_frames` (the sample's face filling 60 % of the height, varied places and greys) at 640×480 and
1280×720. Per side: median ms per `detect` call over the rounds, and network runs per call (`speed.NetworkRuns`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from report import write_report

REPO = Path(__file__).resolve().parents[1]
SIZES = [(640, 480), (1280, 720)]
MEASURE = r'''
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import speed
from facemark import Landmarker
landmarker = Landmarker()
out = {}
for w, h in json.loads(sys.argv[2]):
    frames = speed.size_frames(w, h, 5, (0.6, 0.6))
    for f in frames:
        landmarker.detect(f)
    times = []
    for _ in range(int(sys.argv[3])):
        for f in frames:
            start = time.perf_counter()
            landmarker.detect(f)
            times.append(1000 * (time.perf_counter() - start))
    out[f"{w}×{h}"] = [statistics.median(times), speed.runs_per_frame(landmarker, frames)]
print(json.dumps(out))
'''


def measure(src: Path, passes: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run([sys.executable, "-c", MEASURE, str(REPO / "benchmarks"), json.dumps(SIZES), str(passes)],
                            env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commit", help="the earlier commit (any git revision)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each side")
    parser.add_argument("--passes", type=int, default=8, help="passes over the frames per round")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "src.tar"
        subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), args.commit, "src"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        sides = {args.commit: Path(tmp) / "src", "this tree": REPO / "src"}
        runs = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, src in sides.items():
                runs[name].append(measure(src, args.passes))
    lines = [f"`Landmarker()` defaults, one face filling 60 % of the frame; {args.rounds} alternating rounds of "
             f"{args.passes} passes over 5 frames per side; median ms per `detect` over the rounds' medians, and "
             "network runs per call.", "",
             "| frame | " + " | ".join(f"{n}: ms" for n in sides) + " | ratio | "
             + " | ".join(f"{n}: network runs" for n in sides) + " |",
             "|---|" + "---:|" * (2 * len(sides) + 1)]
    for w, h in SIZES:
        key = f"{w}×{h}"
        ms = [sorted(r[key][0] for r in runs[n])[len(runs[n]) // 2] for n in sides]
        nets = [runs[n][0][key][1] for n in sides]
        lines.append(f"| {key} | " + " | ".join(f"{v:.1f}" for v in ms) + f" | {ms[1] / ms[0]:.2f}× | "
                     + " | ".join(f"{v:.1f}" for v in nets) + " |")
    out = args.out or REPO / "benchmarks" / "results" / f"speed_against_{args.commit}.md"
    write_report(out, f"Speed against {args.commit}", lines)


if __name__ == "__main__":
    main()
