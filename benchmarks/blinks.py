"""Blink detection on the shared clips: facemark's eye openness (through `facemark video`'s tracker, as in its JSON
Lines) against the blinks one can see, with MediaPipe Face Mesh's lids through the same measure for comparison.

    python benchmarks/blinks.py       # writes benchmarks/results/blinks.md and blinks_<clip>.png

VISIBLE_BLINKS were found by looking at contact sheets of the eye region, frame by frame, around every dip of
either tool's eye openness (a blink: both lids down for a few frames, then open again). Long stretches of lowered
lids (d3.mp4 frames ~100-135, 140-160, 216-256: looking down) are not blinks and are not listed; a detection
there is not counted either way. The blinks: d3 47-51 and 56-62; d12 48-51, 93 and 136; s18 6-11 and 160-164.

A blink is detected when a run of frames under the threshold overlaps it; a run that overlaps no blink and no
lowered-lid stretch is a false detection. Thresholds: absolute (a sweep) and relative to each clip's median
openness (a person's open-eye EAR differs: 0.2 to 0.4 here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GLOG_minloglevel", "2")

from facemark.geometry.openness import BLINK_SHARE_OF_MEDIAN, eye_openness, find_blinks  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "videos"
# (first, last) frame, inclusive, of every blink seen on the shared clips
VISIBLE_BLINKS = {"d3.mp4": [(47, 51), (56, 62)], "d12.mp4": [(48, 51), (93, 93), (136, 136)],
                  "s18.mp4": [(6, 11), (160, 164)]}
LOWERED_LIDS = {"d3.mp4": [(100, 135), (140, 160), (216, 256)]}  # looking down: neither blink nor false alarm


def facemark_openness(video: Path, model, workdir: Path, refine_eyes: bool = True) -> np.ndarray:
    from facemark.landmarker import Landmarker
    from facemark.cli.video import run_video

    out = workdir / f"{video.stem}.jsonl"
    run_video(Landmarker(model, threads=1, trust=False, refine_eyes=refine_eyes), video, None, json_path=out,
              progress=False)
    values = []
    for line in out.read_text().splitlines():
        faces = json.loads(line)["faces"]
        eyes = faces[0]["eye_openness"] if faces else None
        values.append(np.nan if not eyes or None in eyes else float(np.mean(eyes)))
    return np.array(values)


def mediapipe_openness(video: Path) -> np.ndarray:
    from facemark.labels.teachers import mediapipe_video_points

    return np.array([np.nan if pts is None else float(eye_openness(pts).mean())
                     for _, pts in mediapipe_video_points(video)])


def score(runs, blinks, ignore) -> tuple[int, int]:
    """(blinks detected, false detections)."""
    def overlaps(a, b):
        return a[0] <= b[1] and b[0] <= a[1]
    hit = sum(any(overlaps(r, b) for r in runs) for b in blinks)
    false = sum(not any(overlaps(r, b) for b in blinks + ignore) for r in runs)
    return hit, false


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="facemark weights (default: the built-in face88)")
    parser.add_argument("--no-mediapipe", action="store_true", help="skip the MediaPipe comparison")
    parser.add_argument("--no-refine-eyes", action="store_true",
                        help="facemark without its eye refiner (the landmark network's own lids)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "blinks.md"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in VISIBLE_BLINKS:
            video = SHARED / name
            series[name] = {"facemark": facemark_openness(video, args.model, Path(tmp), not args.no_refine_eyes)}
            if not args.no_mediapipe:
                series[name]["MediaPipe"] = mediapipe_openness(video)
    total = sum(len(b) for b in VISIBLE_BLINKS.values())
    lines = ["# Blinks on the shared clips", "",
             f"`python benchmarks/blinks.py{' --no-refine-eyes' if args.no_refine_eyes else ''}` (model: "
             f"{args.model or 'face88'}{', without the eye refiner' if args.no_refine_eyes else ''}). {total} blinks seen by eye "
             "(the benchmark's docstring says how; red in the curves); eye openness = mean eye aspect ratio of both eyes "
             "(facemark.geometry.openness), facemark's from `facemark video`'s JSON Lines (smoothed points).", "",
             "| clip | tool | open (median) | lowest | lowest inside a blink | highest inside a blink |",
             "|---|---|---|---|---|---|"]
    for name, tools in series.items():
        for tool, x in tools.items():
            inside = np.concatenate([x[a:b + 1] for a, b in VISIBLE_BLINKS[name]])
            lines.append(f"| {name} | {tool} | {np.nanmedian(x):.3f} | {np.nanmin(x):.3f} | {np.nanmin(inside):.3f} | "
                         f"{np.nanmax(inside):.3f} |")
    lines += ["", "Detected blinks (of the visible ones) and false detections, all clips together:", "",
              "| tool | threshold | detected | missed | false |", "|---|---|---|---|---|"]
    best = {}
    for tool in series[next(iter(series))]:
        for label, rule in ([(f"{t:g}", lambda x, t=t: t) for t in (0.12, 0.15, 0.18, 0.22, 0.25)]
                            + [(f"{s:g} × clip median" + (" (default)" if s == BLINK_SHARE_OF_MEDIAN else ""),
                                lambda x, s=s: s * np.nanmedian(x)) for s in (0.5, 0.6, BLINK_SHARE_OF_MEDIAN, 0.7, 0.85)]):
            hit = false = 0
            for name, tools in series.items():
                x = tools[tool]
                h, f = score(find_blinks(x, rule(x)), VISIBLE_BLINKS[name], LOWERED_LIDS.get(name, []))
                hit, false = hit + h, false + f
            lines.append(f"| {tool} | {label} | {hit} | {total - hit} | {false} |")
            if (hit, -false) > best.get(tool, (None, (-1, 0)))[1]:
                best[tool] = (label, (hit, -false))
    lines += ["", "Best rule per tool: " + "; ".join(f"{tool}: {label} ({h} of {total} detected, {-f} false)"
                                                       for tool, (label, (h, f)) in best.items()) + ".", ""]
    for name, tools in series.items():
        fig, ax = plt.subplots(figsize=(9, 2.6))
        for tool, x in tools.items():
            ax.plot(x, lw=1, label=tool)
        for a, b in VISIBLE_BLINKS[name]:
            ax.axvspan(a - 0.5, b + 0.5, color="red", alpha=0.2, lw=0)
        for a, b in LOWERED_LIDS.get(name, []):
            ax.axvspan(a - 0.5, b + 0.5, color="gray", alpha=0.15, lw=0)
        for tool, x in tools.items():
            ax.axhline(BLINK_SHARE_OF_MEDIAN * np.nanmedian(x), ls="--", lw=0.6, color="k")
        ax.set_xlabel("frame"), ax.set_ylabel("eye openness"), ax.set_title(f"{name}: visible blinks in red")
        ax.legend(fontsize=7), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(Path(args.out).with_name(f"{Path(args.out).stem}_{Path(name).stem}.png"), dpi=80)
        plt.close(fig)
    lines += [f"Curves: `{Path(args.out).stem}_<clip>.png` beside this file. Machine: {platform.machine()}, {os.cpu_count()} cores."]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
