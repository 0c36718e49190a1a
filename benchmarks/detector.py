"""Face detectors side by side: faces found on 300-W, in composed group photos, cut by the border; ms per image.

    python benchmarks/detector.py --data ../shared/data/300w
    python benchmarks/detector.py --detectors blazeface mtcnn --skip-groups     # a quicker subset

Four measurements, every detector on the same images:

1. **300-W** (`--data`, each subfolder a subset): every `.pts` file is one face. A face counts as found when
   some detection, mapped to the landmark box the detector is calibrated for (`detector.landmark_box`),
   overlaps the box of the annotated 68 points with IoU ≥ 0.5.
2. **Group photos**: faces cut from 300-W's HELEN images, scaled so the box of their 68 points is 40, 80 or
   160 px on its longer side, pasted on a 4000×3000 canvas of smooth random colour (no other faces in it),
   on a jittered grid. Found: IoU ≥ 0.5 as above; "extra" counts detections matching no pasted face. Each
   detector runs as `Landmarker` runs it (MTCNN shrinks to 640 px first) and, for BlazeFace, also with
   `min_face` (tiles; see BlazeFaceDetector.windows).
3. **Border**: HELEN faces cut so 25% or 50% of the points' box width lies left of the image's left edge.
   Found: IoU ≥ 0.3 with the whole points' box (half of which lies outside the image).
4. **Speed**: ms per call on the 640×480 benchmark canvas of benchmarks/speed.py; the detectors are called
   in turn (round robin), so a change in the machine's load touches them alike. Median of `--repeats`.

Writes benchmarks/results/detector.md (or `--out`). Load average and busy processes are recorded with it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facemark.labels.annotations import read_pts
from facemark.detection import create_detector
from facemark.detection.nms import box_overlap
from facemark.pipeline.crops import CropTransform, box_from_points, crop_image

from report import load_average, write_report
from speed import busy_processes, canvas_image

REPO = Path(__file__).resolve().parents[1]

GROUP_SIZE = (4000, 3000)
GROUP_FACE_SIZES = (40, 80, 160)
BORDER_CUTS = (0.25, 0.5)


def iou(a, b) -> float:
    return float(box_overlap(np.asarray(a, float), np.asarray([b], float))[0])


def faces_of(folder: Path) -> list[tuple[Path, np.ndarray]]:
    """(image, 68 points) for every .pts file; images are the .jpg/.png of the same name."""
    pairs = []
    for pts in sorted(folder.rglob("*.pts")):
        for suffix in (".jpg", ".png", ".ppm"):
            image = pts.with_suffix(suffix)
            if image.exists():
                pairs.append((image, read_pts(pts)))
                break
    return pairs


def load_rgb(path: Path) -> np.ndarray:
    from facemark.images import load_image
    return load_image(path)


def found_faces(detector, detections, targets, threshold: float = 0.5) -> tuple[int, int]:
    """(targets matched, detections matching no target): each target by the detection whose landmark box
    overlaps it most, IoU ≥ threshold."""
    boxes = np.array([detector.landmark_box(d.box) for d in detections]).reshape(-1, 4)
    used = np.zeros(len(boxes), bool)
    found = 0
    for t in targets:
        if not len(boxes):
            break
        overlaps = box_overlap(np.asarray(t, float), boxes)
        best = int(np.argmax(overlaps))
        if overlaps[best] >= threshold:
            found += 1
            used[best] = True
    for i, b in enumerate(boxes):  # a second detection on a matched face is not "extra"
        if not used[i] and any(iou(b, t) >= 0.3 for t in targets):
            used[i] = True
    return found, int((~used).sum())


# ------------------------------------------------------------------------------------------- the images


def group_photo(faces: list[tuple[Path, np.ndarray]], face_size: int, seed: int) -> tuple[np.ndarray, list]:
    """A GROUP_SIZE canvas of smooth random colour with faces pasted on a jittered grid; (rgb, point boxes)."""
    rng = np.random.default_rng(seed)
    width, height = GROUP_SIZE
    low = rng.integers(40, 220, (6, 8, 3), dtype=np.uint8)
    canvas = Image.fromarray(low).resize(GROUP_SIZE, Image.Resampling.BICUBIC)
    canvas = np.asarray(canvas).astype(np.int16) + rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    cell = int(face_size * 2.6)  # room for the face's own surroundings (2× its box) and some jitter
    cols, rows = min(width // cell, 12), min(height // cell, 8)
    cell_x, cell_y = width // cols, height // rows  # spread over the whole canvas
    targets = []
    k = 0
    for r in range(rows):
        for c in range(cols):
            image_path, points = faces[(seed * 97 + k) % len(faces)]
            k += 1
            x0, y0, x1, y1 = box_from_points(points)
            side = max(x1 - x0, y1 - y0)
            crop_side = round(2 * face_size)  # a square twice the face's box, with its real surroundings
            t = CropTransform(cx=(x0 + x1) / 2, cy=(y0 + y1) / 2, side=2 * side, size=crop_side)
            patch = crop_image(load_rgb(image_path), t)
            jx, jy = rng.integers(0, cell_x - crop_side + 1), rng.integers(0, cell_y - crop_side + 1)
            left, top = c * cell_x + int(jx), r * cell_y + int(jy)
            canvas[top:top + crop_side, left:left + crop_side] = patch
            p = t.to_crop(points) + [left, top]
            targets.append(box_from_points(p))
    return canvas, targets


def border_face(image_path: Path, points: np.ndarray, cut: float) -> tuple[np.ndarray, tuple]:
    """The image cut so `cut` of the points' box width lies left of the new left edge; (rgb, points box)."""
    rgb = load_rgb(image_path)
    x0, y0, x1, y1 = box_from_points(points)
    edge = int(round(x0 + cut * (x1 - x0)))
    return np.ascontiguousarray(rgb[:, edge:]), (x0 - edge, y0, x1 - edge, y1)


# ------------------------------------------------------------------------------------------------- main


def detector_variants(names: list[str]) -> list[tuple[str, str, dict]]:
    """(label, detector name, keyword arguments) for the whole-image rows."""
    return [(n, n, {}) for n in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "300w"))
    parser.add_argument("--detectors", nargs="*",
                        default=["blazeface", "blazeface-full", "blazeface-short", "mtcnn", "mediapipe", "yunet"])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    parser.add_argument("--repeats", type=int, default=40, help="timed calls per detector (median reported)")
    parser.add_argument("--skip-groups", action="store_true", help="no group photos (the slow part)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "detector.md"))
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"error: --data {data}: no such folder")
    load_before, busy = load_average(), busy_processes()

    detectors = {}
    unavailable = {}
    for name in args.detectors:
        try:
            kwargs = {"threads": args.threads} if name.startswith("blazeface") or name == "yunet" else {}
            detectors[name] = create_detector(name, **kwargs)
        except (RuntimeError, ImportError, ValueError) as e:
            unavailable[name] = str(e)
    print(f"detectors: {', '.join(detectors)}" + (f"; unavailable: {unavailable}" if unavailable else ""), flush=True)

    # 1. 300-W
    subsets = sorted(p for p in data.iterdir() if p.is_dir()) or [data]
    rows_300w = []
    for subset in subsets:
        faces = faces_of(subset)
        counts = {name: [0, []] for name in detectors}
        for image_path, points in faces:
            rgb = load_rgb(image_path)
            target = box_from_points(points)
            for name, detector in detectors.items():
                found, _ = found_faces(detector, detector.detect(rgb), [target])
                counts[name][0] += found
                if not found:
                    counts[name][1].append(image_path.name)
        for name, (found, misses) in counts.items():
            rows_300w.append((name, subset.name, f"{found}/{len(faces)}", f"{100 * found / max(len(faces), 1):.1f}%",
                              ", ".join(misses[:4]) + (" …" if len(misses) > 4 else "")))
            print(rows_300w[-1], flush=True)

    helen = faces_of(data / "helen_train") if (data / "helen_train").is_dir() else faces_of(subsets[0])

    # 2. group photos
    rows_group = []
    if not args.skip_groups:
        variants = [(name, name, detector) for name, detector in detectors.items()]
        for name in ("blazeface", "yunet"):
            if name in detectors:
                for min_face in GROUP_FACE_SIZES[:1]:
                    label = f"{name}, min_face={min_face}"
                    variants.append((label, name, create_detector(name, min_face=min_face, threads=args.threads)))
        photos = [(size, *group_photo(helen, size, seed=size)) for size in GROUP_FACE_SIZES]
        for label, _, detector in variants:
            cells = []
            for size, rgb, targets in photos:
                start = time.perf_counter()
                detections = detector.detect(rgb)
                seconds = time.perf_counter() - start
                found, extra = found_faces(detector, detections, targets)
                cells.append(f"{found}/{len(targets)} ({extra} extra, {seconds:.2f} s)")
            rows_group.append((label, *cells))
            print(rows_group[-1], flush=True)

    # 3. border faces
    rows_border = []
    border_faces = helen[::max(1, len(helen) // 30)][:30]
    for cut in BORDER_CUTS:
        cases = [border_face(p, pts, cut) for p, pts in border_faces]
        for name, detector in detectors.items():
            found = sum(found_faces(detector, detector.detect(rgb), [target], threshold=0.3)[0]
                        for rgb, target in cases)
            rows_border.append((name, f"{int(cut * 100)}%", f"{found}/{len(cases)}"))
    print(rows_border, flush=True)

    # 4. speed, round robin
    rgb = canvas_image()
    for detector in detectors.values():
        for _ in range(5):
            detector.detect(rgb)
    times = {name: [] for name in detectors}
    for _ in range(args.repeats):
        for name, detector in detectors.items():
            start = time.perf_counter()
            detector.detect(rgb)
            times[name].append(time.perf_counter() - start)
    speed = {name: 1000 * statistics.median(t) for name, t in times.items()}
    for detector in detectors.values():
        detector.close()
    load_after = load_average()

    import onnxruntime
    heavy = (f"yes: {len(busy)} other process(es) over 30% of a core before starting — timings are disturbed"
             if busy else "no other process over 30% of a core before starting")
    lines = [
        f"- {args.threads} thread(s) (onnxruntime {onnxruntime.__version__})",
        f"- load average (1/5/15 min) before: {load_before}, after: {load_after}; another heavy process: {heavy}",
        *[f"  - {100 * share:.0f}% of a core: `{cmd}`" for share, cmd in busy],
        *[f"- {name}: not available ({why})" for name, why in unavailable.items()],
        "",
        "Detectors: `blazeface` = MediaPipe's full-range BlazeFace on every window plus its short-range model on "
        "the whole image (facemark's ONNX conversion, onnxruntime); `blazeface-full` / `blazeface-short` = one "
        "network alone; `mtcnn` = facemark's MTCNN (ONNX, onnxruntime; images shrunk to 640 px); `mediapipe` = "
        "`mp.solutions.face_detection` full range (TFLite, MediaPipe's own threads); `yunet` = OpenCV's model zoo "
        "YuNet (ONNX, onnxruntime; images shrunk to 640 px).",
        "",
        "## 300-W (human-annotated faces; crops ≤ 320 px)", "",
        "Found: a detection's landmark box has IoU ≥ 0.5 with the box of the 68 annotated points.", "",
        "| detector | subset | found | share | missed (first few) |", "|---|---|---|---|---|",
        *[f"| {' | '.join(map(str, row))} |" for row in rows_300w], "",
    ]
    if rows_group:
        lines += [
            f"## Group photos ({GROUP_SIZE[0]}×{GROUP_SIZE[1]}, faces from HELEN pasted at a given size)", "",
            "Face size: the longer side of the box of its 68 points. Found as above; extra: detections on no "
            "pasted face; time: one call on the whole photo.", "",
            "| detector | " + " | ".join(f"{s}-px faces" for s in GROUP_FACE_SIZES) + " |",
            "|---|" + "---|" * len(GROUP_FACE_SIZES),
            *[f"| {' | '.join(map(str, row))} |" for row in rows_group], "",
        ]
    lines += [
        "## Faces cut by the image's left border (30 HELEN faces)", "",
        "Cut: share of the points' box width outside the image. Found: IoU ≥ 0.3 with the whole points' box.", "",
        "| detector | cut | found |", "|---|---|---|",
        *[f"| {' | '.join(map(str, row))} |" for row in rows_border], "",
        "## Speed: one 640×480 image (the speed benchmark's canvas, one face)", "",
        f"Median ms per call over {args.repeats} calls, detectors called in turn.", "",
        "| detector | ms per image |", "|---|---:|",
        *[f"| {name} | {ms:.1f} |" for name, ms in speed.items()], "",
    ]
    write_report(args.out, "Face detectors side by side", lines)


if __name__ == "__main__":
    main()
