"""Install sizes and the time from `import facemark` to the first face, for the user install and the developer one.

    make light && python benchmarks/install.py --light .venv-light --full .venv

Sizes are of each virtual environment's site-packages (pip itself left out), and of the packages the `train`
extra adds (torch and what it pulls). The first-face time runs in a fresh process of each environment, several
times (the first run also fills the operating system's file cache; the median of the rest is reported):
`import facemark; facemark.Landmarker().detect(sample)`, wall-clock from before the import to the returned
faces. Writes benchmarks/results/install.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from report import write_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "astronaut.png"
FIRST_FACE = """
import time, json, sys
start = time.perf_counter()
import facemark
faces = facemark.Landmarker().detect(sys.argv[1])
elapsed = time.perf_counter() - start
import numpy
print(json.dumps({"s": elapsed, "faces": len(faces), "torch": "torch" in sys.modules, "numpy": numpy.__version__}))
"""
# what the train extra brings, beside the runtime's packages (names of top-level folders in site-packages)
TRAIN_PACKAGES = ("torch", "torchgen", "functorch", "onnx", "matplotlib", "sympy", "networkx", "mpmath", "jinja2",
                  "fsspec", "filelock", "fontTools", "kiwisolver", "contourpy", "cycler", "pyparsing", "ml_dtypes")


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"{venv}: no lib/python3*/site-packages; make it with `make light` or `make setup`")
    return found[0]


def install_mb(venv: Path, only: tuple[str, ...] | None = None) -> float:
    site = site_packages(venv)
    total = 0
    for entry in site.iterdir():
        name = entry.name
        if name.startswith(("pip", "_distutils_hack", "setuptools")):
            continue
        if only is not None and not any(name == p or name.startswith(p + "-") or name.startswith(p + ".")
                                        or name.lower().startswith(p.lower() + "-") for p in only):
            continue
        total += folder_bytes(entry) if entry.is_dir() else entry.stat().st_size
    return total / 1e6


def first_face_s(venv: Path, runs: int) -> tuple[float, dict]:
    times, last = [], {}
    for _ in range(runs):
        done = subprocess.run([str(venv / "bin" / "python"), "-c", FIRST_FACE, str(SAMPLE)], capture_output=True,
                              text=True, cwd=REPO, timeout=300)
        if done.returncode:
            raise SystemExit(f"{venv}: the first-face run failed: {done.stderr.strip().splitlines()[-1]}")
        last = json.loads(done.stdout)
        times.append(last["s"])
    rest = sorted(times[1:] or times)
    return rest[len(rest) // 2], last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--light", default=str(REPO / ".venv-light"), help="the user install (make light)")
    parser.add_argument("--full", default=str(REPO / ".venv"), help="the developer install (make setup)")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "install.md"))
    args = parser.parse_args()
    rows = []
    for label, venv, extras in [("user: `pip install facemark`", Path(args.light), "none"),
                                ("developer: `make setup`", Path(args.full), "train, label, teacher, plot, test")]:
        seconds, info = first_face_s(venv, args.runs)
        rows.append((label, extras, f"{install_mb(venv):.0f}", f"{seconds:.2f}", info["numpy"],
                     "yes" if info["torch"] else "no", info["faces"]))
    train_mb = install_mb(Path(args.full), TRAIN_PACKAGES)
    lines = [
        f"Median of {args.runs - 1} fresh processes after a first one.",
        "",
        "| install | extras | site-packages MB (pip left out) | `import facemark` → first face, s | numpy "
        "| torch imported | faces |",
        "|---|---|---:|---:|---|---|---:|",
        *[f"| {' | '.join(map(str, r))} |" for r in rows],
        "",
        f"Of the developer install, the `train` extra's packages (torch, onnx, matplotlib and what they pull) take "
        f"{train_mb:.0f} MB; MediaPipe, jax and dlib (label, teacher) most of the rest.",
        "",
    ]
    write_report(args.out, "Install size and time to the first face", lines)


if __name__ == "__main__":
    sys.exit(main())
