"""Peak memory and time of landmarks on 12000×12000 images: `Landmarker.detect` and `facemark predict`.

    python benchmarks/huge_image.py                       # this checkout
    python benchmarks/huge_image.py --before /tmp/before  # and, side by side, another copy of the package

`--before DIR`: a folder holding another `facemark/` package
(e.g. `git archive HEAD src/facemark | tar -x -C DIR --strip-components 1`),
measured the same way for a before/after table.

Test images, generated into a temporary folder from examples/astronaut.png:
- `full.jpg`: the portrait upscaled (bicubic) to 12000×12000, JPEG quality 90: a ~2100-px face;
- `third.jpg`: the portrait at 4000×4000 pasted in the middle of a grey 12000×12000 canvas: a ~700-px face;
- `full.png`: `full.jpg`'s pixels as a PNG (no reduced decoding for PNG: one full decode).

Every measurement runs in a fresh process (one torch thread): it builds a Landmarker, warms it up on the
sample image, then times one call. Peak memory is the process's peak resident set (VmHWM from
/proc/self/status: unlike ru_maxrss it is not inherited from the parent across exec), over the whole process;
"setup" is the peak before the timed call (Python, torch, the model, the warm-up). Points are compared with
the reference (this checkout's `detect(load_image(path))`, the full-resolution path) as the largest point
distance in percent of the face's size (the side of its points' box).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from report import write_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "astronaut.png"
SIDE = 12000

# Run in the measured process: argv = mode, image path, scratch folder. Prints one JSON line.
CHILD = r"""
import json, resource, sys, time

def peak_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

mode, path, scratch, sample = sys.argv[1:5]
from facemark.landmarker import Landmarker
from facemark.cli import main
from facemark.images import load_image

landmarker = Landmarker(threads=1)
landmarker.detect(sample)  # warm-up: lazily built buffers exist before we measure
setup = peak_mb()
start = time.perf_counter()
if mode == "path":
    faces = [f.points.tolist() for f in landmarker.detect(path)]
elif mode == "array":
    faces = [f.points.tolist() for f in landmarker.detect(load_image(path))]
else:  # the command line, as a user runs it
    out = scratch + "/out.jsonl"
    code = main(["predict", path, "--json", out, "--quiet", "--threads", "1"])
    assert code == 0, code
    faces = [f["points"] for f in json.loads(open(out).readline())["faces"]]
seconds = time.perf_counter() - start
print(json.dumps({"setup_mb": setup, "peak_mb": peak_mb(), "seconds": seconds, "faces": faces}))
"""

# Writes the test images; run in its own process so the benchmark's own memory stays small.
MAKE = r"""
import sys
from PIL import Image
sample, folder, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
portrait = Image.open(sample).convert("RGB")
full = portrait.resize((side, side), Image.Resampling.BICUBIC)
full.save(folder + "/full.jpg", quality=90)
full.save(folder + "/full.png", compress_level=1)
del full
canvas = Image.new("RGB", (side, side), (128, 128, 128))
third = side // 3
canvas.paste(portrait.resize((third, third), Image.Resampling.BICUBIC), (third, third))
canvas.save(folder + "/third.jpg", quality=90)
"""

IMAGES = {"full.jpg": "12000² JPEG, ~2100-px face", "third.jpg": "12000² JPEG, ~700-px face",
          "full.png": "12000² PNG, ~2100-px face"}
MODES = {"path": "`Landmarker().detect(path)`", "array": "`Landmarker().detect(load_image(path))`",
         "cli": "`facemark predict path --json F`"}


def measure(code_root: Path, mode: str, image: Path, scratch: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(code_root))
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(image), str(scratch), str(SAMPLE)],
                          env=env, capture_output=True, text=True, cwd=scratch)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed ({code_root}, {mode}, {image.name}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worst_error_percent(faces: list, reference: list) -> str:
    """Largest point distance to the reference face, in percent of the reference face's size."""
    import numpy as np

    if len(faces) != len(reference) or not faces:
        return f"{len(faces)} faces vs {len(reference)}"
    worst = 0.0
    for points, ref in zip(faces, reference):
        points, ref = np.asarray(points), np.asarray(ref)
        size = (ref.max(axis=0) - ref.min(axis=0)).max()
        worst = max(worst, float(np.linalg.norm(points - ref, axis=1).max() / size * 100))
    return f"{worst:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a folder with another facemark/ package to compare with")
    parser.add_argument("--images", nargs="+", default=list(IMAGES), choices=list(IMAGES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "huge_image.md"))
    args = parser.parse_args()
    versions = [("after", REPO)] + ([("before", args.before.resolve())] if args.before else [])
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, "-c", MAKE, str(SAMPLE), tmp, str(SIDE)], check=True)
        for name in args.images:
            image = folder / name
            reference = measure(REPO, "array", image, folder)["faces"]
            for mode in args.modes:
                for version, root in versions:
                    r = measure(root, mode, image, folder)
                    rows.append((IMAGES[name], MODES[mode], version, r["setup_mb"], r["peak_mb"],
                                 r["peak_mb"] - r["setup_mb"], r["seconds"], len(r["faces"]),
                                 worst_error_percent(r["faces"], reference)))
                    print(rows[-1], flush=True)
    load_after = os.getloadavg()
    command = "python benchmarks/huge_image.py" + (f" --before {args.before}" if args.before else "")
    lines = ["One torch thread, OMP_NUM_THREADS=1; load average (1/5/15 min) before: "
             f"{' '.join(f'{v:.2f}' for v in load_before)}, after: {' '.join(f'{v:.2f}' for v in load_after)} "
             "(other jobs were running: the seconds are noisy, the memory is not). "
             "code: after = this checkout; before = the package in `--before`. "
             "One fresh process per row; MB = MiB of resident memory. "
             "setup: peak before the timed call (imports, model, warm-up on the 512² sample); peak: the process's "
             "peak including the call; extra = peak − setup. error: largest point distance to the "
             "full-resolution reference (this checkout's `detect(load_image(path))`), % of the face size.", "",
             "| image | call | code | setup MB | peak MB | extra MB | seconds | faces | error % |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {img} | {call} | {version} | {setup:.0f} | {peak:.0f} | {extra:.0f} | {sec:.2f} | {n} | {err} |"
              for img, call, version, setup, peak, extra, sec, n, err in rows]
    write_report(args.out, "Huge images: peak memory and time", lines, command=command)


if __name__ == "__main__":
    main()
