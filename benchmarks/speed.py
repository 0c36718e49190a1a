"""Speed table: the landmark network (torch and onnxruntime), cropping, MTCNN, the whole image, and others.

    python benchmarks/speed.py --threads 2 --repeats 30

Everything runs on the sample image (examples/astronaut.png scaled to 480 px high and centred on a 640×480
canvas). Each number is the median over `--repeats` timed calls (time.perf_counter) after warm-up calls.
MediaPipe Face Mesh and dlib's 68-point predictor run side by side on the same input when installed. The
machine (CPU, cores, library versions, threads, load and busy processes before starting) is described with
the table, which is printed and written to benchmarks/results/speed.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facemark.landmarker import Landmarker
from facemark.images import load_image
from facemark.network import load_network
from facemark.pipeline.crops import crop_image, normalise_crop, square_crop_transform
from report import load_average, write_report

REPO = Path(__file__).resolve().parents[1]

SAMPLE = REPO / "examples" / "astronaut.png"
CANVAS = (640, 480)  # width, height


def timed_ms(fn, repeats: int, warmup: int) -> float:
    """Median wall-clock milliseconds of fn() over `repeats` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def canvas_image() -> np.ndarray:
    """The sample portrait scaled to the canvas height and centred on a mid-grey 640×480 canvas."""
    width, height = CANVAS
    face = Image.fromarray(load_image(SAMPLE))
    side = min(width, height)
    face = face.resize((side, side), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", CANVAS, (128, 128, 128))
    canvas.paste(face, ((width - side) // 2, (height - side) // 2))
    return np.asarray(canvas)


FRAME_SIZES = [(640, 480), (1280, 720), (1920, 1080), (4032, 3024)]
FACE_BOX = (169.7, 61.0, 277.8, 169.1)  # the sample's face (BlazeFace box) in the 512-px image


def sample_frame(width: int, height: int, face_share: float = 0.6, centre=(0.5, 0.5), grey: int = 128) -> np.ndarray:
    """A width×height frame with the sample photo scaled so its face spans `face_share` of the height, the face
    centred at `centre` (shares of the frame), on grey where the photo does not reach (a webcam or portrait)."""
    x0, y0, x1, y1 = FACE_BOX
    k = face_share * height / (y1 - y0)
    photo = Image.fromarray(load_image(SAMPLE))
    photo = photo.resize((round(photo.width * k), round(photo.height * k)), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (width, height), (grey, grey, grey))
    canvas.paste(photo, (round(centre[0] * width - (x0 + x1) / 2 * k), round(centre[1] * height - (y0 + y1) / 2 * k)))
    return np.asarray(canvas)


def size_frames(width: int, height: int, count: int, fill: tuple[float, float] = (0.5, 0.7)) -> list[np.ndarray]:
    """`count` one-face frames of one size: the face at `fill` (50-70%) of the height, at varied places and greys."""
    rng = np.random.default_rng(width)
    return [sample_frame(width, height, float(rng.uniform(*fill)),
                         (float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.45, 0.55))), int(rng.integers(40, 220)))
            for _ in range(count)]


class NetworkRuns:
    """Counts onnxruntime session runs (the detector's networks and the landmark network) while active."""

    def __enter__(self):
        from onnxruntime.capi.onnxruntime_inference_collection import Session

        self.count, self._session, self._run = 0, Session, Session.run

        def counted(session, *args, **kwargs):
            self.count += 1
            return self._run(session, *args, **kwargs)

        Session.run = counted
        return self

    def __exit__(self, *exc):
        self._session.run = self._run


def runs_per_frame(landmarker: Landmarker, frames: list[np.ndarray]) -> float:
    """Mean onnxruntime network runs of one `detect` call."""
    with NetworkRuns() as runs:
        for f in frames:
            landmarker.detect(f)
    return runs.count / len(frames)


def small_face_rows(frames_per_size: int, repeats: int) -> list[dict]:
    """Per frame size, facemark (`Landmarker()` defaults) on frames whose face fills 60% of the height and on
    frames whose face fills 20%, calls interleaved: median ms, network runs per frame, exactly one face."""
    landmarker = Landmarker()
    rows = []
    for width, height in FRAME_SIZES:
        large = size_frames(width, height, frames_per_size, (0.6, 0.6))
        small = size_frames(width, height, frames_per_size, (0.2, 0.2))
        times = {"large": [], "small": []}
        for _ in range(repeats):
            for a, b in zip(large, small):
                for f, key in ((a, "large"), (b, "small")):
                    start = time.perf_counter()
                    landmarker.detect(f)
                    times[key].append(1000 * (time.perf_counter() - start))
        row = {"size": f"{width}×{height}",
               **{f"{k}_ms": statistics.median(v) for k, v in times.items()},
               "large_runs": runs_per_frame(landmarker, large), "small_runs": runs_per_frame(landmarker, small),
               "large_one": sum(len(landmarker.detect(f)) == 1 for f in large) / len(large),
               "small_one": sum(len(landmarker.detect(f)) == 1 for f in small) / len(small)}
        rows.append(row)
        print(row, flush=True)
    return rows


def sizes_table(frames_per_size: int, repeats: int, busy_processes: int) -> list[dict]:
    """Per frame size, facemark (`Landmarker()` defaults) and MediaPipe Face Mesh (static images, refined) in the
    same run, calls interleaved: median ms idle and beside `busy_processes` CPU-bound processes, and the share of
    frames where facemark returned exactly one face."""
    import subprocess

    import mediapipe as mp

    landmarker = Landmarker()
    one_thread = Landmarker(threads=1)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    rows = []
    for width, height in FRAME_SIZES:
        frames = size_frames(width, height, frames_per_size)
        exactly_one = sum(len(landmarker.detect(f)) == 1 for f in frames) / len(frames)
        mp_found = sum(bool(mesh.process(f).multi_face_landmarks) for f in frames) / len(frames)
        row = {"size": f"{width}×{height}", "one": exactly_one, "mp_found": mp_found}
        for load in ("idle", "busy"):
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        for _ in range(busy_processes if load == "busy" else 0)]
            try:
                time.sleep(0.3 if spinners else 0)
                ours, theirs, single = [], [], []
                for _ in range(repeats):
                    for f in frames:
                        for fn, out in ((landmarker.detect, ours), (mesh.process, theirs), (one_thread.detect, single)):
                            start = time.perf_counter()
                            fn(f)
                            out.append(1000 * (time.perf_counter() - start))
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
            row[load] = (statistics.median(ours), statistics.median(theirs), statistics.median(single))
        rows.append(row)
        print(row, flush=True)
    mesh.close()
    return rows


def size_policy_rows(shares=(1 / 4, 1 / 10, 1 / 20, 1 / 30)) -> list[tuple[str, list[str]]]:
    """Per frame size: for a face of each share of the longer side (the sample's face box, centred at 40%/45%),
    whether `Landmarker()` finds it (the faces returned in brackets when not exactly one)."""
    landmarker = Landmarker()
    rows = []
    for width, height in FRAME_SIZES:
        cells = []
        for share in shares:
            frame = sample_frame(width, height, share * max(width, height) / height, (0.4, 0.45))
            x0, y0, x1, y1 = FACE_BOX
            faces = landmarker.detect(frame)
            near = [f for f in faces if abs(f.points[:, 0].mean() - 0.4 * width) < share * max(width, height) / 3]
            cells.append(("found" if near else "missed") + ("" if len(faces) == 1 else f" ({len(faces)} faces)"))
        rows.append((f"{width}×{height}", cells))
    return rows


def false_face_rows() -> list[tuple[str, int]]:
    """Faces `Landmarker()` returns on each face-free set of benchmarks/false_faces.py."""
    from false_faces import face_free_sets

    landmarker = Landmarker()
    return [(name, sum(len(landmarker.detect(im)) for im in images)) for name, images in face_free_sets().items()]


def busy_processes(seconds: float = 1.0, threshold: float = 0.3) -> list[tuple[float, str]]:
    """Other processes using more than `threshold` of a core over `seconds` (from /proc; [] elsewhere)."""
    def cpu_ticks() -> dict[int, tuple[int, str]]:
        ticks = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                ticks[int(entry.name)] = (int(fields[11]) + int(fields[12]), cmd or stat.split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return ticks

    if not Path("/proc/stat").exists():
        return []
    before = cpu_ticks()
    time.sleep(seconds)
    after = cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (t1, cmd) in after.items():
        if pid in before:
            share = (t1 - before[pid][0]) / hz / seconds
            if share > threshold:
                busy.append((share, cmd[:90]))
    return sorted(busy, reverse=True)


def mediapipe_ms(rgb: np.ndarray, repeats: int, warmup: int) -> tuple[str, str]:
    """(ms per image, note) for MediaPipe Face Mesh as the teacher runs it (static images, refined, 478 points)."""
    try:
        import mediapipe as mp
    except ImportError:
        return "not installed", ""
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)
    try:
        frame = np.ascontiguousarray(rgb)
        found = mesh.process(frame).multi_face_landmarks
        ms = timed_ms(lambda: mesh.process(frame), repeats, warmup)
    finally:
        mesh.close()
    points = len(found[0].landmark) if found else 0
    return f"{ms:.1f}", (f"mediapipe {mp.__version__}, own face detector + 468+10 points; threads chosen by "
                         f"MediaPipe (TFLite/XNNPACK), not --threads" + ("" if found else "; NO FACE FOUND")
                         + (f"; {points} points" if found and points != 478 else ""))


def dlib_ms(rgb: np.ndarray, repeats: int, warmup: int, model: str | None) -> tuple[str, str]:
    """(ms per image, note) for dlib's HOG detector + 68-point shape predictor, when dlib and its model exist."""
    try:
        import dlib
    except ImportError:
        return "not installed", "`import dlib` failed"
    if not model or not Path(model).is_file():
        return "no model file", "dlib imports, but --dlib-model shape_predictor_68_face_landmarks.dat is missing"
    detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(model)

    def run():
        return [predictor(rgb, box) for box in detector(rgb, 0)]

    found = run()
    ms = timed_ms(run, repeats, warmup)
    return f"{ms:.1f}", f"dlib {dlib.__version__}, HOG detector + 68 points" + ("" if found else "; NO FACE FOUND")


# (label, Landmarker keyword arguments, extra environment) of the rows measured beside busy processes;
# "cores" stands for os.cpu_count()
LOAD_CONFIGS = [
    ("default: `Landmarker()` / `facemark predict`", {}, {}),
    ("`threads=1` (`--threads 1`)", {"threads": 1}, {}),
    ("`threads=cores`", {"threads": "cores"}, {}),
    ("MTCNN, `threads=1`", {"detector": "mtcnn", "threads": 1}, {}),
    ("torch back end, `threads=cores`", {"backend": "torch", "threads": "cores"}, {}),
    ("torch back end, `threads=cores`, OMP_WAIT_POLICY=ACTIVE (spinning)",
     {"backend": "torch", "threads": "cores"}, {"OMP_WAIT_POLICY": "ACTIVE"}),
]
LOAD_RUN = """
import json, resource, sys, time
sys.path.insert(0, {benchmarks!r})  # benchmarks/speed.py, for its canvas
import facemark  # first, as `facemark predict` does: its thread settings precede torch's import
from speed import canvas_image
from facemark.landmarker import Landmarker
kwargs = json.loads(sys.argv[1])
landmarker = Landmarker(**kwargs)
rgb = canvas_image()
for _ in range(3):
    landmarker.detect(rgb)
cpu0, start = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
for _ in range({count}):
    landmarker.detect(rgb)
print(json.dumps([time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0]))
"""


def load_table(count: int, processes: int, rounds: int = 3) -> list[tuple[str, float, float, float]]:
    """(label, wall s as is, wall s beside `processes` CPU-bound processes, user CPU s then) per LOAD_CONFIGS,
    medians over `rounds`."""
    import json
    import subprocess

    def run(kwargs: dict, env: dict) -> tuple[float, float]:
        kwargs = {k: (os.cpu_count() if v == "cores" else v) for k, v in kwargs.items()}
        code = LOAD_RUN.format(benchmarks=str(REPO / "benchmarks"), count=count)
        environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        done = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True,
                              env={**environment, **env}, check=True)
        wall, cpu = json.loads(done.stdout.strip().splitlines()[-1])
        return wall, cpu

    # Rounds over all configurations, medians over rounds: a change in the machine's own load (another job)
    # then touches every configuration alike instead of whichever ran at the time.
    results = {label: ([], [], []) for label, _, _ in LOAD_CONFIGS}
    for _ in range(rounds):
        for label, kwargs, env in LOAD_CONFIGS:
            idle, _ = run(kwargs, env)
            spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
            try:
                time.sleep(0.5)
                busy, cpu = run(kwargs, env)
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
            for values, v in zip(results[label], (idle, busy, cpu)):
                values.append(v)
            print(label, f"{idle:.2f} s as is, {busy:.2f} s busy, {cpu:.2f} s CPU", flush=True)
    return [(label, *(statistics.median(v) for v in values)) for label, values in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="weights file or built-in name (default: face88)")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime CPU threads")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls before each measurement")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the per-face throughput rows")
    parser.add_argument("--dlib-model", default=os.environ.get("DLIB_SHAPE_PREDICTOR"),
                        help="dlib's shape_predictor_68_face_landmarks.dat (if dlib is installed)")
    parser.add_argument("--load-images", type=int, default=20, help="images per run of the load table")
    parser.add_argument("--load-processes", type=int, default=1, help="CPU-bound processes beside the load rows")
    parser.add_argument("--load-rounds", type=int, default=3, help="rounds of the load table (medians reported)")
    parser.add_argument("--no-load", action="store_true", help="skip the table measured beside busy processes")
    parser.add_argument("--size-frames", type=int, default=5, help="one-face frames per size in the size table")
    parser.add_argument("--size-repeats", type=int, default=5, help="timed passes over those frames")
    parser.add_argument("--no-sizes", action="store_true", help="skip the frame-size, size-policy and false-face tables")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "speed.md"))
    args = parser.parse_args()

    # the state of the machine before we add our own load
    load_before = load_average()
    busy = busy_processes()

    torch.set_num_threads(args.threads)
    repeats, warmup = args.repeats, args.warmup
    rgb = canvas_image()

    landmarker = Landmarker(args.model, detector="mtcnn", threads=args.threads, backend="torch")
    network = landmarker.network
    config = network.config
    size = config.input_size
    detections = landmarker.detector.detect(rgb)
    if not detections:
        raise SystemExit("MTCNN found no face on the benchmark canvas; nothing to time")
    box = landmarker.detector.landmark_box(detections[0].box)
    transform = square_crop_transform(box, size, config.margin)
    crop = crop_image(rgb, transform)
    x1 = normalise_crop(crop[None])
    xb = np.repeat(x1, args.batch, axis=0)

    import onnxruntime

    # the runtime's network: the shipped .onnx file for a built-in name, a weights file exported in memory
    onnx_network = load_network(args.model, threads=args.threads)
    ort_version = onnxruntime.__version__

    rows = []  # (measurement, torch ms, onnxruntime ms)

    def both(name: str, fn_of_network, per: int = 1) -> None:
        t = timed_ms(lambda: fn_of_network(network), repeats, warmup) / per
        o = timed_ms(lambda: fn_of_network(onnx_network), repeats, warmup) / per
        rows.append((name, f"{t:.2f}", f"{o:.2f}"))

    both("landmark network, batch 1 (ms per call)", lambda net: net(x1))
    both(f"landmark network, batch {args.batch} (ms per face)", lambda net: net(xb), per=args.batch)

    def crop_one():
        t = square_crop_transform(box, size, config.margin)
        return normalise_crop(crop_image(rgb, t)[None])

    crop_ms = timed_ms(crop_one, repeats, warmup)
    rows.append(("crop + normalise one face (ms; same for both)", f"{crop_ms:.2f}", f"{crop_ms:.2f}"))
    detect_ms = timed_ms(lambda: landmarker.detector.detect(rgb), repeats, warmup)
    rows.append(("MTCNN detector, 640×480 image (ms; onnxruntime for both)", f"{detect_ms:.1f}", f"{detect_ms:.1f}"))
    blazeface = Landmarker(args.model, detector="blazeface", threads=args.threads, backend="torch")
    blazeface_ms = timed_ms(lambda: blazeface.detector.detect(rgb), repeats, warmup)
    rows.append(("BlazeFace detector (default), 640×480 image (ms; onnxruntime for both)", f"{blazeface_ms:.1f}",
                 f"{blazeface_ms:.1f}"))

    def whole_image(net, lm=landmarker):
        lm.network = net
        return lm.detect(rgb)

    both("whole image 640×480: Landmarker.detect, MTCNN + landmark passes (ms)", whole_image)
    both("whole image 640×480: Landmarker.detect, BlazeFace (default) + landmark passes (ms)",
         lambda net: whole_image(net, blazeface))
    small_faces = Landmarker(args.model, min_face=40, threads=args.threads, backend="torch")
    both("whole image 640×480: `Landmarker(min_face=40)`, faces down to 40 px (ms)",
         lambda net: whole_image(net, small_faces))
    landmarker.network = network
    faces = landmarker.detect(rgb)

    load_rows = [] if args.no_load else load_table(args.load_images, args.load_processes, args.load_rounds)
    size_rows = [] if args.no_sizes else sizes_table(args.size_frames, args.size_repeats, args.load_processes)
    small_rows = [] if args.no_sizes else small_face_rows(args.size_frames, args.size_repeats)
    policy_rows = [] if args.no_sizes else size_policy_rows()
    false_rows = [] if args.no_sizes else false_face_rows()

    mp_ms, mp_note = mediapipe_ms(rgb, repeats, warmup)
    dl_ms, dl_note = dlib_ms(rgb, repeats, warmup, args.dlib_model)
    load_after = load_average()

    params = sum(p.numel() for p in network.module.parameters())
    heavy = (f"yes: {len(busy)} other process(es) over 30% of a core before starting — timings are pessimistic"
             if busy else "no other process over 30% of a core before starting")
    lines = [
        f"Medians of {repeats} calls after {warmup} warm-up calls, time.perf_counter.",
        "",
        f"- threads used: {args.threads} (torch.set_num_threads and onnxruntime intra_op_num_threads)",
        f"- torch {torch.__version__}, onnxruntime {ort_version}, numpy {np.__version__}",
        f"- model: {args.model or 'face88'} — {config.arch} alpha={config.alpha} rho={config.rho} "
        f"shallow={config.shallow} head={config.head}, {size}×{size} input, {params / 1e6:.2f} M parameters, "
        f"{network.scheme.num_points} {network.scheme.name} points",
        f"- input: {SAMPLE.name} scaled to 480×480 on a 640×480 canvas; MTCNN found {len(detections)} face(s), "
        f"Landmarker {len(faces)}",
        f"- load average (1/5/15 min) before: {load_before}, after: {load_after}; "
        f"another heavy process running: {heavy}",
    ]
    lines += [f"  - {100 * share:.0f}% of a core: `{cmd}`" for share, cmd in busy]
    lines += [
        "",
        "| measurement | torch | onnxruntime |",
        "|---|---:|---:|",
        *[f"| {name} | {t} | {o} |" for name, t, o in rows],
        "",
        "| other landmarker, same 640×480 image, detection included | ms per image | notes |",
        "|---|---:|---|",
        f"| MediaPipe Face Mesh (static_image_mode, refine_landmarks) | {mp_ms} | {mp_note} |",
        f"| dlib 68-point shape predictor | {dl_ms} | {dl_note} |",
        "",
    ]
    if load_rows:
        cores = os.cpu_count()
        lines += [
            f"## Beside CPU-bound processes ({args.load_images} images, seconds)", "",
            f"Each configuration runs in a fresh process (so OMP_WAIT_POLICY applies): Landmarker.detect on the "
            f"canvas {args.load_images} times after 3 warm-up calls; wall-clock and user CPU seconds of those calls, "
            f"medians of {args.load_rounds} rounds over all configurations. "
            f"\"busy\": {args.load_processes} `python -c \"while True: pass\"` process(es) running beside it, "
            f"on this {cores}-core machine (on top of whatever the load average above shows). Defaults: "
            "`Landmarker()` as `facemark predict` builds it (BlazeFace, onnxruntime, 1 thread, no spinning).", "",
            "| configuration | wall s, as is | wall s, busy | user CPU s, busy |", "|---|---:|---:|---:|",
            *[f"| {name} | {idle:.2f} | {busy_s:.2f} | {cpu:.2f} |" for name, idle, busy_s, cpu in load_rows], "",
        ]
    if size_rows:
        lines += [
            "## By frame size: one face, `Landmarker()` defaults against MediaPipe in the same run", "",
            f"{args.size_frames} frames per size (the sample photo, its face 50-70% of the height, varied places and "
            f"greys: `size_frames`), {args.size_repeats} passes, each call of facemark, MediaPipe Face Mesh "
            "(static_image_mode, refine_landmarks) and facemark with `threads=1` interleaved; median ms per frame. "
            f"Busy: {args.load_processes} CPU-bound process(es) beside it.", "",
            "| frame | facemark | MediaPipe | ratio | busy: facemark | busy: MediaPipe | busy: ratio "
            "| busy: `threads=1` | exactly one face (facemark) | face found (MediaPipe) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *[f"| {r['size']} | {r['idle'][0]:.1f} | {r['idle'][1]:.1f} | {r['idle'][0] / r['idle'][1]:.2f}× | "
              f"{r['busy'][0]:.1f} | {r['busy'][1]:.1f} | {r['busy'][0] / r['busy'][1]:.2f}× | {r['busy'][2]:.1f} | "
              f"{100 * r['one']:.0f}% | {100 * r['mp_found']:.0f}% |" for r in size_rows], ""]
    if small_rows:
        lines += [
            "## Small faces: a face filling 20% of the height against one filling 60%", "",
            f"{args.size_frames} frames per size and face size (`size_frames`), {args.size_repeats} passes, calls "
            "interleaved; median ms per frame. Network runs: onnxruntime session runs per `detect` call (the "
            "detector's networks, tiles included, and the landmark network's batches); MediaPipe Face Mesh makes "
            "two (its detector and the mesh).", "",
            "| frame | 60%: ms | 20%: ms | 20% / 60% | network runs, 60% | network runs, 20% "
            "| exactly one face, 60% | exactly one face, 20% |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *[f"| {r['size']} | {r['large_ms']:.1f} | {r['small_ms']:.1f} | {r['small_ms'] / r['large_ms']:.2f}× | "
              f"{r['large_runs']:.1f} | {r['small_runs']:.1f} | {100 * r['large_one']:.0f}% | "
              f"{100 * r['small_one']:.0f}% |" for r in small_rows], ""]
    if policy_rows:
        lines += [
            "## Size policy: faces found by default (`Landmarker()`, facemark.pipeline.size_policy)", "",
            "The sample's face at a share of the frame's longer side, alone on grey (a clean background: real "
            "photos are harder; the documented floor is a tenth of the look side, a twentieth above 1024 px).", "",
            "| frame | 1/4 | 1/10 | 1/20 | 1/30 |", "|---|---|---|---|---|",
            *[f"| {size} | " + " | ".join(cells) + " |" for size, cells in policy_rows], ""]
    if false_rows:
        lines += ["## False faces: face-free images (`Landmarker()` defaults; benchmarks/false_faces.py)", "",
                  "| set (50 images) | faces returned |", "|---|---:|",
                  *[f"| {name} | {count} |" for name, count in false_rows], ""]
    write_report(args.out, "Speed", lines)


if __name__ == "__main__":
    main()
