"""The eye refiner on held-out faces of its own cache, and what it costs.

    python benchmarks/eye_refiner.py            # -> benchmarks/results/eye_refiner.md

Faces: the eye cache's teacher faces (`scripts/make_eye_cache.py`, work/cache_eyes) that
`scripts/train_eye_refiner.py` holds out (5% of the images, by a hash of the name), each once. Labels: MediaPipe's
lids on the landmark network's corners. Per face, the built-in face88 network's points on the cache's centre
view (averaged with its mirror image), then the same with the lids from the eye refiner; lid error: the mean
distance of the 12 lid points to their labels in face-crop pixels (the 160-px crop); openness: the eye aspect
ratio of each eye (facemark.geometry.openness), "shut" where the label's is under 0.15.

Jitter: each clip through `facemark video` with and without the refiner, raw and smoothed (the table's note).

Time: `Landmarker.refine_eyes` on the sample face (two patches cut and one network run), median of 200 calls,
one thread, beside the whole `Landmarker.detect` of the same image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from report import write_report
from speed import timed_ms

REPO = Path(__file__).resolve().parents[1]
SHUT = 0.15
HOLDOUT = 0.05  # scripts/train_eye_refiner.py's default
sys.path.insert(0, str(REPO / "scripts"))
from train_eye_refiner import split_rows  # noqa: E402  (the very faces the training held out)


def accuracy(cache_path: Path) -> list[str]:
    from facemark.geometry.openness import eye_openness
    from facemark.labels.cache import open_cache
    from facemark.layouts import FACE88
    from facemark.network import load_network, predict_crops
    from facemark.pipeline.crops import crop_image
    from facemark.pipeline.eyes import EYE_LIDS, EyeRefinerNetwork, refine_lids

    cache = open_cache(cache_path)
    _, rows = split_rows(cache, HOLDOUT)
    network, eyes = load_network("face88", threads=1), EyeRefinerNetwork(threads=1)
    crops, labels = cache.network_view(rows)
    plain = np.concatenate([predict_crops(network, crops[k:k + 64], flip=True) for k in range(0, len(rows), 64)])
    refined = np.stack([refine_lids(lambda ts, c=c: [crop_image(c, t) for t in ts], [p], FACE88, eyes)[0]
                        for c, p in zip(crops, plain)])
    lids = np.r_[[FACE88.region_slice(e).start + k for e in ("left_eye", "right_eye") for k in EYE_LIDS]]
    truth = eye_openness(labels)
    shut = truth < SHUT
    lines = [f"{len(rows)} held-out faces ({shut.sum()} shut eyes of {shut.size}; labels' mean openness of the shut "
             f"ones {truth[shut].mean():.3f}).", "",
             "| lids from | lid error (crop px) | shut eyes: mean openness | all eyes: mean absolute openness error |",
             "|---|---|---|---|"]
    for name, points in (("the landmark network", plain), ("the eye refiner", refined)):
        error = np.linalg.norm(points[:, lids] - labels[:, lids], axis=-1).mean()
        openness = eye_openness(points)
        lines.append(f"| {name} | {error:.2f} | {openness[shut].mean():.3f} | {np.abs(openness - truth).mean():.3f} |")
    return lines


def timing(repeats: int) -> list[str]:
    from facemark import Landmarker
    from facemark.images import load_image

    rgb = load_image(REPO / "examples" / "astronaut.png")
    landmarker = Landmarker(threads=1)
    points = [landmarker.detect(rgb)[0].points]

    refine = timed_ms(lambda: landmarker.refine_eyes(rgb, points), repeats, warmup=5)
    whole = timed_ms(lambda: landmarker.detect(rgb), repeats, warmup=5)
    return [f"Time, one thread, the sample face (512×512): the eye refiner {refine:.2f} ms per face (two patches "
            f"cut, one network run), within a whole `detect` of {whole:.1f} ms (median of {repeats} calls)."]


def jitter(clips: list[Path]) -> list[str]:
    """Lid jitter on real clips: how much the refiner adds to the frame-to-frame shake of the lids."""
    import json
    import tempfile

    from facemark import Landmarker
    from facemark.cli.video import run_video
    from facemark.layouts import FACE88
    from facemark.pipeline.eyes import EYE_LIDS

    lids = np.r_[[FACE88.region_slice(e).start + k for e in ("left_eye", "right_eye") for k in EYE_LIDS]]
    others = np.setdiff1d(np.arange(FACE88.num_points), lids)
    a, b = FACE88.normaliser

    def shake(points: np.ndarray, idx: np.ndarray) -> float:
        iod = np.linalg.norm(points[:, a] - points[:, b], axis=1)
        acc = np.linalg.norm(points[2:] - 2 * points[1:-1] + points[:-2], axis=-1)[:, idx].mean(1) / iod[1:-1]
        return float(np.nanmean(acc))

    lines = ["Jitter on the shared clips (`facemark video`, smoothed and raw): the mean over frames of "
             "|p(t+1) − 2p(t) + p(t−1)| / inter-ocular distance, over the 12 lid points and over the other 76. "
             "A blink is lid motion too: lids that close move more.", "",
             "| clip | points | raw, without the refiner | raw, with it | smoothed, without | smoothed, with |",
             "|---|---|---|---|---|---|"]
    for clip in clips:
        values = {}
        for smooth in (False, True):
            for refine in (False, True):
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "points.jsonl"
                    run_video(Landmarker(threads=1, refine_eyes=refine), clip, None, json_path=out, progress=False,
                              smooth=smooth)
                    frames = [json.loads(line)["faces"] for line in out.read_text().splitlines()]
                points = np.array([f[0]["points"] if f else np.full((FACE88.num_points, 2), np.nan) for f in frames])
                values[smooth, refine] = (shake(points, lids), shake(points, others))
        for k, name in enumerate(("lids", "the other 76")):
            lines.append(f"| {clip.name} | {name} | " + " | ".join(f"{values[s, r][k]:.4f}" for s in (False, True)
                                                                 for r in (False, True)) + " |")
    return lines


def size() -> list[str]:
    import onnx

    from facemark.pipeline.eyes import BUILTIN_EYES

    graph = onnx.load(str(BUILTIN_EYES))
    parameters = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)
    return [f"The built-in file `weights/eyes.onnx`: {BUILTIN_EYES.stat().st_size / 1e6:.2f} MB, {parameters:,} "
            "numbers (weights and batch-norm statistics, float32)."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(REPO / "work" / "cache_eyes"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--clips", nargs="*", default=[str(REPO.parent / "shared" / "data" / "videos" / n)
                                                          for n in ("d12.mp4", "d3.mp4", "s18.mp4")])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "eye_refiner.md"))
    args = parser.parse_args()
    clips = [Path(c) for c in args.clips]
    body = accuracy(Path(args.cache)) + [""] + jitter(clips) + [""] + timing(args.repeats) + [""] + size()
    write_report(args.out, "The eye refiner: held-out lids and its cost", body)


if __name__ == "__main__":
    main()
