"""Landmark jitter on real clips: tracking with and without One-Euro smoothing, against per-frame detection.

    OMP_NUM_THREADS=1 python benchmarks/jitter.py --threads 1

For every clip in ../shared/data/videos/*.mp4 and every mode, the whole `facemark video` path runs (decode,
landmarks, drawing, mp4 and JSON Lines writing) and we measure

- jitter: the mean over frames and points of |p(t+1) - 2 p(t) + p(t-1)| (frame-to-frame acceleration) divided
  by the inter-ocular distance at t, over frames where one track has points at t-1, t and t+1. Real motion
  has some acceleration too: the MediaPipe teacher's row shows what a stable landmarker reaches on the clip;
- NME against the teacher (MediaPipe Face Mesh run on every frame, static-image mode): how far the points are
  from a reference, which also shows the lag smoothing adds (lower jitter bought with lag raises NME);
- detector calls, faces per frame and end-to-end frames per second.

Modes: per-frame detection (Landmarker.detect on every frame, its landmark passes as for a photo, no tracking),
tracking (one landmark pass per face and frame, the detector only now and then), tracking + One-Euro (the
default of `run_video`, TrackerConfig's parameters), the same with the former parameters (min_cutoff 1, beta 2,
d_cutoff 1: less jitter, but lag on fast motion), tracking + One-Euro with the crops framed on the smoothed
points. A second table sweeps the One-Euro parameters. Results: printed and written to
benchmarks/results/jitter.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from facemark.landmarker import Landmarker
from facemark.detection.nms import box_overlap
from facemark.pipeline.crops import box_from_points
from facemark.video.tracking import TrackedFace, TrackerConfig
from facemark.cli.video import draw_faces, open_video, run_video, video_fps
from facemark.train.weights import load_weights, resolve_weights_path

from report import write_report

REPO = Path(__file__).resolve().parents[1]

VIDEOS = REPO.parent / "shared" / "data" / "videos"
RESULTS = REPO / "benchmarks" / "results" / "jitter.md"


@dataclass
class Run:
    records: list[dict]  # JSON Lines records, one per frame
    seconds: float
    detector_calls: int | None


# ------------------------------------------------------------------------------------------------- modes


def run_tracking(landmarker, clip: Path, out_dir: Path, config: TrackerConfig) -> Run:
    jsonl = out_dir / "points.jsonl"
    summary = run_video(landmarker, clip, out_dir / "drawn.mp4", json_path=jsonl, progress=False, config=config)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return Run(records, summary.seconds, summary.detector_calls)


def run_per_frame(landmarker, clip: Path, out_dir: Path) -> Run:
    """Landmarker.detect on every frame, with the same reading, drawing and writing as run_video."""
    start = time.perf_counter()
    capture = open_video(clip)
    fps = video_fps(capture) or 30.0
    writer, records, previous = None, [], []
    next_id = 1
    with open(out_dir / "points.jsonl", "w") as out:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(str(out_dir / "drawn.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (frame.shape[1], frame.shape[0]))
            faces = landmarker.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            # ids by overlap with the previous frame's faces, so that jitter compares a face with itself
            tracked = []
            for face in faces:
                box = np.array(box_from_points(face.points))
                overlaps = [box_overlap(box, np.array([p.box]))[0] for p in previous]
                best = int(np.argmax(overlaps)) if overlaps else -1
                if best >= 0 and overlaps[best] > 0.3 and previous[best].track not in [t.track for t in tracked]:
                    track = previous[best].track
                else:
                    track, next_id = next_id, next_id + 1
                tracked.append(TrackedFace(track, tuple(box), face.points, face.points, face.score, face.scheme))
            previous = tracked
            writer.write(draw_faces(frame, tracked, landmarker.scheme))
            record = {"frame": len(records), "faces": [t.to_dict() for t in tracked]}
            out.write(json.dumps(record) + "\n")
            records.append(record)
    capture.release()
    if writer is not None:
        writer.release()
    return Run(records, time.perf_counter() - start, len(records))


def teacher_points(clip: Path) -> list[np.ndarray | None]:
    """MediaPipe Face Mesh's face88 points on every frame (None where it finds no face)."""
    from facemark.labels.teachers import MediaPipeTeacher

    teacher = MediaPipeTeacher()
    capture = open_video(clip)
    points = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            points.append(teacher.label(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).points)
    finally:
        capture.release()
        teacher.close()
    return points


# ------------------------------------------------------------------------------------------------ metrics


def tracks_of(records: list[dict]) -> list[dict[int, np.ndarray]]:
    return [{f["track"]: np.array(f["points"], dtype=np.float64) for f in r["faces"]} for r in records]


def jitter(frames: list[dict[int, np.ndarray]], scheme) -> float:
    values = []
    for t in range(1, len(frames) - 1):
        for track, p in frames[t].items():
            if track in frames[t - 1] and track in frames[t + 1]:
                acceleration = frames[t + 1][track] - 2 * p + frames[t - 1][track]
                values.append(np.linalg.norm(acceleration, axis=1).mean() / scheme.inter_ocular_distance(p))
    return float(np.mean(values)) if values else float("nan")


def nme_to_teacher(frames: list[dict[int, np.ndarray]], reference: list[np.ndarray | None], scheme) -> float:
    """Mean point error / the teacher's inter-ocular distance, on frames where both have the face."""
    errors = []
    for faces, ref in zip(frames, reference):
        if ref is None or not faces:
            continue
        ref_box = np.array(box_from_points(ref))
        overlaps = {k: box_overlap(ref_box, np.array([box_from_points(p)]))[0] for k, p in faces.items()}
        best = max(overlaps, key=overlaps.get)
        if overlaps[best] > 0.3:
            errors.append(np.linalg.norm(faces[best] - ref, axis=1).mean() / scheme.inter_ocular_distance(ref))
    return float(np.mean(errors)) if errors else float("nan")


def ramp_lag(config: TrackerConfig, speed: float, fps: float = 30.0) -> float:
    """How far the filter trails a face moving steadily at `speed` face sizes per second (in face sizes):
    the lag smoothing adds, independent of any model. Two seconds of ramp, then the trailing distance."""
    from facemark.video.smoothing import OneEuroFilter

    f = OneEuroFilter(config.min_cutoff, config.beta, config.d_cutoff, frequency=fps)
    for i in range(int(2 * fps) + 1):
        x = np.array([[speed * i / fps, 0.0]])
        out = f(x, i / fps, scale=1.0)
    return float(np.abs(out - x).max())


# ------------------------------------------------------------------------------------------------ report


def machine_lines(threads: int, model_note: str, load_before: str) -> list[str]:
    """What the report's header does not say: threads, library versions, the model, the load before and after."""
    return [f"- torch threads: {threads} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
            f"- torch {torch.__version__}, OpenCV {cv2.__version__}",
            f"- {model_note}",
            f"- load average (1/5/15 min) before: {load_before}, after: {_load()}"
            + (" — the machine was not idle when the run started (load over 0.5), so its speeds may be pessimistic"
               if _busy(load_before) else "")]


def _busy(load: str) -> bool:
    try:
        return float(load.split()[0]) > 0.5
    except (ValueError, IndexError):
        return False


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def model_note(landmarker) -> tuple[str, bool]:
    path = resolve_weights_path(None)
    metrics = getattr(landmarker.network, "metrics", None) or load_weights(path).metrics
    epoch, nme = metrics.get("epoch"), metrics.get("nme")
    placeholder = epoch is not None and epoch <= 1
    trained = "" if epoch is None else f", epoch {epoch}"
    note = (f"landmark model: {path.name}{trained}, validation NME {100 * nme:.1f}%" if nme is not None
            else f"landmark model: {path.name}{trained}")
    if placeholder:
        note += (" — a PLACEHOLDER (one epoch of training): its points are noisy and biased, so the absolute "
                 "jitter and NME below say little about the final model; the comparisons between modes still hold")
    return note, placeholder


def table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", help=f"clips (default: {VIDEOS}/*.mp4)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-teacher", action="store_true", help="skip MediaPipe (no NME column)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the One-Euro parameter sweep")
    parser.add_argument("--out", default=str(RESULTS), help="Markdown file to write")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    load_before = _load()
    clips = [Path(v) for v in args.videos] or sorted(VIDEOS.glob("*.mp4"))
    if not clips:
        sys.exit(f"no clips found in {VIDEOS}")
    landmarker = Landmarker(threads=args.threads)
    scheme = landmarker.scheme
    note, _ = model_note(landmarker)

    def one_euro(config: TrackerConfig) -> str:
        return f"min_cutoff {config.min_cutoff:g}, beta {config.beta:g}, d_cutoff {config.d_cutoff:g}"

    former = TrackerConfig(min_cutoff=1.0, beta=2.0, d_cutoff=1.0)  # the defaults before the fast-motion tuning
    modes = {
        "per-frame detection (as photos, no tracking)": None,
        "tracking, raw points": TrackerConfig(smooth=False),
        f"tracking + One-Euro, default ({one_euro(TrackerConfig())})": TrackerConfig(),
        f"tracking + One-Euro, former default ({one_euro(former)})": former,
        "tracking + One-Euro (default), crops framed on smoothed points": TrackerConfig(frame_on_smoothed=True),
    }
    sweep = {} if args.no_sweep else {
        one_euro(config): config for config in (
            TrackerConfig(min_cutoff=mc, beta=b, d_cutoff=dc)
            for mc, b, dc in [(1, 2, 1), (1, 8, 1), (4, 8, 1), (1, 2, 10), (1, 10, 3), (1, 10, 10), (1, 20, 3),
                              (0.5, 20, 10), (1, 20, 10), (2, 20, 10), (1, 40, 10)])}

    rows, sweep_rows, clip_lines = [], [], []
    totals: dict[str, list] = {}
    for clip in clips:
        capture = open_video(clip)
        info = (f"{clip.name}: {int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}×"
                f"{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}, {video_fps(capture) or 0:g} fps")
        capture.release()
        reference = None
        if not args.no_teacher:
            reference = teacher_points(clip)
            ref_frames = [{0: p} if p is not None else {} for p in reference]
            rows.append([clip.name, "MediaPipe teacher (per frame, reference)", f"{jitter(ref_frames, scheme):.4f}",
                         "0", "–", f"{np.mean([p is not None for p in reference]):.2f}", "–"])
            print(" | ".join(rows[-1]), flush=True)
        for label, config in list(modes.items()) + [(f"sweep: {k}", c) for k, c in sweep.items()]:
            with tempfile.TemporaryDirectory() as tmp:
                run = (run_per_frame(landmarker, clip, Path(tmp)) if config is None
                       else run_tracking(landmarker, clip, Path(tmp), config))
            frames = tracks_of(run.records)
            j = jitter(frames, scheme)
            e = nme_to_teacher(frames, reference, scheme) if reference is not None else float("nan")
            n = len(run.records)
            row = [clip.name, label.removeprefix("sweep: "), f"{j:.4f}", f"{100 * e:.1f}%",
                   f"{run.detector_calls}", f"{np.mean([len(f) for f in frames]):.2f}", f"{n / run.seconds:.1f}"]
            (sweep_rows if label.startswith("sweep: ") else rows).append(row)
            totals.setdefault(label, []).append((j, e, run.detector_calls, n, run.seconds))
            print(" | ".join(row), flush=True)
        clip_lines.append(f"- {info}, {n} frames")

    header = ["clip", "mode", "jitter (IOD/frame²)", "NME vs teacher", "detector calls", "faces/frame",
              "end-to-end fps"]
    configs = {**modes, **{f"sweep: {k}": c for k, c in sweep.items()}}
    mean_rows = []
    for label, values in totals.items():
        j, e, calls, n, seconds = zip(*values)
        config = configs[label]
        lags = (["–", "–"] if config is None or not config.smooth
                else [f"{100 * ramp_lag(config, v):.1f}%" for v in (0.5, 2.0)])
        mean_rows.append([label.removeprefix("sweep: "), f"{np.mean(j):.4f}", f"{100 * np.nanmean(e):.1f}%",
                          f"{sum(calls)} / {sum(n)}", f"{sum(n) / sum(seconds):.1f}", *lags])
    main_labels = set(modes)
    mean_header = ["mode (all clips)", "mean jitter", "mean NME vs teacher", "detector calls / frames",
                   "end-to-end fps", "filter lag at 0.5 face/s", "at 2 face/s"]
    lines = [
        *machine_lines(args.threads, note, load_before),
        "- clips:", *["  " + line for line in clip_lines], "",
        "jitter: mean over frames and points of |p(t+1) − 2p(t) + p(t−1)| / inter-ocular distance (one track, "
        "three consecutive frames); NME vs teacher: mean point distance to MediaPipe Face Mesh's face88 points "
        "/ the teacher's inter-ocular distance; end-to-end fps: decoding, landmarks, drawing, mp4 + JSON Lines "
        "writing; filter lag: how far the One-Euro output trails a face moving steadily at 0.5 or 2 face sizes "
        "per second (30 fps, % of the face size; simulated, no model involved).", "",
        "## Summary", "",
        table(mean_header, [r for r, label in zip(mean_rows, totals) if label in main_labels]), "",
        "## Per clip", "",
        table(header, rows), "",
    ] + ([
        "## One-Euro parameters (tracking, crops framed on raw points)", "",
        "min_cutoff in Hz; beta per (face size per second) of speed, face size = geometric mean of the points' "
        "box sides; d_cutoff in Hz (the cut-off of the speed estimate).", "",
        table(mean_header, [r for r, label in zip(mean_rows, totals) if label.startswith("sweep: ")]), "",
    ] if sweep else [])
    print()
    write_report(args.out, "Landmark jitter on video: tracking, One-Euro smoothing, per-frame detection", lines,
                 command=f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python benchmarks/jitter.py "
                         f"--threads {args.threads}")


if __name__ == "__main__":
    main()
