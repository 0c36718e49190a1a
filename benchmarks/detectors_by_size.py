"""Face detectors by frame size: faces found, false faces and ms per image, from 640×480 to a 12-MP photo.

    pids=$(pgrep -f "facemark train"); trap '[ -n "$pids" ] && kill -CONT $pids' EXIT
    [ -n "$pids" ] && kill -STOP $pids   # pause a training job for the timed run; the trap resumes it
    python benchmarks/detectors_by_size.py --paused "the training job (facemark train), SIGSTOP for the run"

Detectors are created with `create_detector(name, threads=1)` and called directly (`detector.detect(rgb)`, no
Landmarker, no `min_face`): BlazeFace "full+short" (the default), "full" and "short", and YuNet at its defaults.

Images, built from examples/astronaut.png (its face box is about 108 px tall, centred at (224, 115) of the
512×512 image), each face pasted with the rest of the sample photo around it on a mid-grey canvas:
- frames of 640×480, 1280×720, 1920×1080 and 4032×3024 with one face 0.6 of the frame's height, centred (a
  webcam frame or a portrait), and with one face of 1/5, 1/10 and 1/20 of the height at three places each;
- 50 face-free images: uniform noise of 16-128 px sides, smooth random textures of 160-1920 px, flat colours.

Found: a detection whose landmark box (`detector.landmark_box`) has IoU ≥ 0.3 with the face's face88 points box
(the sample's, scaled with it); false: a detection overlapping no pasted face (IoU < 0.3 with its points box; a
second detection on the face is neither). Time: median wall-clock ms per `detect` call (time.perf_counter) over
the images of a row and `--repeats` calls each, after two warm-up calls per image; the detectors are called in
turn on each image (round robin), so a change of the machine's load touches them alike; each detector runs
its onnxruntime session on 1 thread.

Writes benchmarks/results/detectors_by_size.md (or `--out`), with the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facemark.detection import create_detector
from facemark.detection.nms import box_overlap
from facemark.images import load_image

from report import load_average, write_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "astronaut.png"
SAMPLE_FACE_HEIGHT = 108.0  # the sample's face box (detectors' own boxes: MTCNN 113, YuNet 113, BlazeFace 96)
SAMPLE_FACE_CENTRE = (224.0, 115.0)
# the box of face88's points on the sample (Landmarker().detect(SAMPLE)), the face each detection is matched to
SAMPLE_POINTS_BOX = (178.7, 87.4, 271.4, 177.7)
FRAMES = ((640, 480), (1280, 720), (1920, 1080), (4032, 3024))
PORTRAIT = 0.6  # the one-face frame: the face's box is this share of the frame's height
SMALL_FACES = (1 / 5, 1 / 10, 1 / 20)
PLACES = ((0.5, 0.5), (0.25, 0.3), (0.72, 0.68))  # face centres, as shares of the frame's width and height
GREY = 128
DETECTORS = (  # (label, create_detector name)
    ("BlazeFace full+short", "blazeface"),
    ("BlazeFace full", "blazeface-full"),
    ("BlazeFace short", "blazeface-short"),
    ("YuNet", "yunet"),
)


# ------------------------------------------------------------------------------------------- the images


def face_frame(sample: np.ndarray, width: int, height: int, face_share: float, place=(0.5, 0.5)):
    """(rgb, points box): the sample scaled so its face box is `face_share` of the frame's height, its face
    centred at `place` (shares of width and height), pasted on a grey width×height canvas (what falls outside is
    cut)."""
    k = face_share * height / SAMPLE_FACE_HEIGHT
    side = max(1, round(sample.shape[1] * k))
    k = side / sample.shape[1]  # the exact scale of the resized sample
    scaled = np.asarray(Image.fromarray(sample).resize((side, side), Image.Resampling.LANCZOS))
    # the sample's pixel (x, y) lands on the frame's (x + 0.5) * k - 0.5 + left
    left = round(place[0] * width - ((SAMPLE_FACE_CENTRE[0] + 0.5) * k - 0.5))
    top = round(place[1] * height - ((SAMPLE_FACE_CENTRE[1] + 0.5) * k - 0.5))
    canvas = np.full((height, width, 3), GREY, np.uint8)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
    canvas[y0:y1, x0:x1] = scaled[y0 - top:y1 - top, x0 - left:x1 - left]
    box = tuple((v + 0.5) * k - 0.5 + offset
                for v, offset in zip(SAMPLE_POINTS_BOX, (left, top, left, top)))
    return canvas, box


def face_free_images(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """50 images without a face: (kind, rgb). 25 of uniform noise (each pixel and channel uniform in 0..255) with
    sides of 16-128 px, 15 smooth random textures (a few random colours bicubically enlarged, plus a little
    noise) of 160-1920 px, 10 flat colours of 64-1920 px."""
    rng = np.random.default_rng(seed)
    images = []
    for k in range(25):
        width, height = (16, 16) if k < 5 else (int(v) for v in rng.integers(16, 129, 2))
        images.append(("uniform noise", rng.integers(0, 256, (height, width, 3), dtype=np.uint8)))
    texture_sizes = [(160, 120), (320, 240), (640, 480), (800, 600), (1280, 720), (1920, 1080), (512, 512),
                     (480, 640), (1024, 768), (720, 1280), (300, 300), (640, 360), (1600, 1200), (256, 192),
                     (960, 540)]
    for width, height in texture_sizes:
        cells = int(rng.integers(3, 12))
        low = rng.integers(0, 256, (cells, max(2, cells * width // height), 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC), np.int16)
        smooth = smooth + rng.integers(-4, 5, smooth.shape, dtype=np.int16)
        images.append(("smooth texture", np.clip(smooth, 0, 255).astype(np.uint8)))
    flat_sizes = [(64, 64), (128, 96), (320, 240), (640, 480), (1280, 720), (1920, 1080), (200, 300), (512, 512),
                  (1000, 200), (96, 128)]
    for width, height in flat_sizes:
        colour = rng.integers(0, 256, 3).astype(np.uint8)
        images.append(("flat colour", np.broadcast_to(colour, (height, width, 3)).copy()))
    return images


def benchmark_images(sample: np.ndarray):
    """(row label, column, rgb, [points boxes of its faces]) for every image of the tables."""
    out = []
    for width, height in FRAMES:
        rgb, box = face_frame(sample, width, height, PORTRAIT)
        out.append((f"{width}×{height}", "0.6", rgb, [box]))
        for share in SMALL_FACES:
            for place in PLACES:
                rgb, box = face_frame(sample, width, height, share, place)
                out.append((f"{width}×{height}", f"1/{round(1 / share)}", rgb, [box]))
    for kind, rgb in face_free_images():
        out.append(("face-free", kind, rgb, []))
    return out


# ------------------------------------------------------------------------------------------- scoring


def iou(a, b) -> float:
    return float(box_overlap(np.asarray(a, float), np.asarray([b], float))[0])


def score(detector, detections, targets) -> tuple[int, int]:
    """(faces found, false faces): a target is found when some detection's landmark box has IoU ≥ 0.3 with
    it; a detection overlapping no target by IoU ≥ 0.3 is false."""
    boxes = [detector.landmark_box(d.box) for d in detections]
    found = sum(any(iou(b, t) >= 0.3 for b in boxes) for t in targets)
    false = sum(not any(iou(b, t) >= 0.3 for t in targets) for b in boxes)
    return found, false


def code_state() -> str:
    """The commit and the detection files that differ from it (the detectors measured are the working tree's)."""
    import subprocess

    def git(*argv):
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True).stdout

    import hashlib

    def described(path: str) -> str:  # a changed file with the start of its sha256, a new folder by its name
        file = REPO / path
        return f"{path} {hashlib.sha256(file.read_bytes()).hexdigest()[:12]}" if file.is_file() else path

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", "src/facemark/detection").splitlines()]
    return f"commit {commit}" + ("; uncommitted in src/facemark/detection (sha256 of the file as run): "
                                 + ", ".join(map(described, changed)) if changed else "")


def busy_processes() -> list[tuple[float, str]]:
    """Other processes over 30% of a core for a second (benchmarks/speed.py's; [] when it cannot be imported)."""
    try:
        from speed import busy_processes as busy  # benchmarks/speed.py (imports torch)
    except Exception:  # noqa: BLE001 - only a note in the results
        return []
    return busy()


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per image and detector (median)")
    parser.add_argument("--paused", default="", help="what was paused for the run (written with the results)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "detectors_by_size.md"))
    args = parser.parse_args()
    load_before, busy = load_average(), busy_processes()
    sample = load_image(SAMPLE)
    images = benchmark_images(sample)
    detectors = {label: create_detector(name, threads=1) for label, name in DETECTORS}
    # (detector, row, column) -> [found, faces, false, images, images with a false face]; (detector, row) -> [ms]
    counts, times = {}, {}
    for row, column, rgb, targets in images:
        for label, detector in detectors.items():
            for _ in range(2):
                detections = detector.detect(rgb)
            found, false = score(detector, detections, targets)
            c = counts.setdefault((label, row, column), [0, 0, 0, 0, 0])
            c[0] += found
            c[1] += len(targets)
            c[2] += false
            c[3] += 1
            c[4] += false > 0
        for _ in range(args.repeats):
            for label, detector in detectors.items():
                start = time.perf_counter()
                detector.detect(rgb)
                times.setdefault((label, row), []).append(1000 * (time.perf_counter() - start))
        print(row, column, {label: counts[(label, row, column)] for label in detectors}, flush=True)
    load_after = load_average()
    for detector in detectors.values():
        detector.close()

    import cv2
    import onnxruntime
    rows = [f"{w}×{h}" for w, h in FRAMES]
    columns = ["0.6", *[f"1/{round(1 / s)}" for s in SMALL_FACES]]
    lines = [
        "- every detector's onnxruntime session on 1 thread",
        f"- numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"OpenCV {cv2.__version__} (YuNet shrinks images with cv2.resize, on OpenCV's own {cv2.getNumThreads()} "
        "threads; BlazeFace resamples with Pillow, one thread)",
        f"- load average (1/5/15 min) before: {load_before}, after: {load_after}",
        f"- paused for the run: {args.paused or 'nothing'}",
        "- other processes over 30% of a core before starting: " + ("; ".join(
            f"{100 * share:.0f}%: `{cmd}`" for share, cmd in busy) if busy else "none"),
        f"- code: {code_state()}",
        "",
        "Detectors created with `create_detector(name, threads=1)` and called directly (no Landmarker, no "
        "`min_face`, no border): `blazeface` (full+short, the default), `blazeface-full`, `blazeface-short`, "
        "`yunet` at its defaults (the image shrunk to 640 px on its longer side, min_score 0.6).", "",
        "## Faces found and false faces",
        "",
        "Frames built from examples/astronaut.png: one face whose box is 0.6 of the frame's height (centred), "
        "or 1/5, 1/10, 1/20 of it (three frames each, the face at three places). Cells: faces found / faces, "
        "then false faces (detections on no face) in brackets. ms per image: the median over every call on the "
        "frames of that size.", "",
        "| detector | frame | " + " | ".join(f"face {c} of height" for c in columns) + " | ms per image |",
        "|---|---|" + "---|" * len(columns) + "---:|",
    ]
    for label in detectors:
        for row in rows:
            cells = []
            for column in columns:
                found, faces, false, _, _ = counts[(label, row, column)]
                cells.append(f"{found}/{faces} ({false})")
            ms = statistics.median(times[(label, row)])
            lines.append(f"| {label} | {row} | {' | '.join(cells)} | {ms:.1f} |")
    kinds = sorted({column for row, column, _, _ in images if row == "face-free"})
    lines += [
        "", "## Face-free images", "",
        "50 images: " + ", ".join(f"{counts[(next(iter(detectors)), 'face-free', k)][3]} {k}" for k in kinds)
        + " (sizes in the script). Cells: false faces (images with at least one).", "",
        "| detector | " + " | ".join(kinds) + " | all 50 | ms per image |",
        "|---|" + "---|" * (len(kinds) + 1) + "---:|",
    ]
    for label in detectors:
        cells = [f"{counts[(label, 'face-free', k)][2]} ({counts[(label, 'face-free', k)][4]})" for k in kinds]
        total = sum(counts[(label, "face-free", k)][2] for k in kinds)
        with_any = sum(counts[(label, "face-free", k)][4] for k in kinds)
        ms = statistics.median(times[(label, "face-free")])
        lines.append(f"| {label} | {' | '.join(cells)} | {total} ({with_any}) | {ms:.1f} |")
    write_report(args.out, "Face detectors by frame size", lines)


if __name__ == "__main__":
    main()
