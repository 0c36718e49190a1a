"""Throughput of `facemark label` and `facemark predict` over a whole folder, with 1 and 2 workers.

    python benchmarks/throughput.py --images ../shared/data/celeba/images

label: `--workers 1` and `--workers 2`. predict has no worker pool; two processes split the folder with
`--shard 0/2` and `--shard 1/2` (each on one thread), which is how it scales across cores or machines.
Outputs go to a temporary folder; the table goes to benchmarks/results/throughput.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FACEMARK = [sys.executable, "-m", "facemark"]


def run_parallel(commands: list[list[str]]) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
    codes = [p.wait() for p in procs]
    took = time.perf_counter() - start
    if any(code not in (0, 1) for code in codes):  # 1: some images failed, still a finished run
        raise SystemExit(f"a run failed with exit codes {codes}: {commands}")
    return took


def count_lines(paths) -> int:
    return sum(len(Path(p).read_text().splitlines()) for p in paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="../shared/data/celeba/images")
    parser.add_argument("--out", default="benchmarks/results/throughput.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"labels{workers}.jsonl"
            took = run_parallel([FACEMARK + ["label", args.images, "--out", str(out), "--workers", str(workers),
                                             "--quiet"]])
            n = count_lines([out])
            rows.append((f"`facemark label --workers {workers}`", n, took))
            print(rows[-1], flush=True)
        for processes in (1, 2):
            outs = [Path(tmp) / f"pred{processes}_{i}.jsonl" for i in range(processes)]
            commands = [FACEMARK + ["predict", args.images, "--json", str(o), "--quiet", "--threads", "1"]
                        + (["--shard", f"{i}/{processes}"] if processes > 1 else []) for i, o in enumerate(outs)]
            took = run_parallel(commands)
            n = count_lines(outs)
            name = "`facemark predict --threads 1`" if processes == 1 else \
                "2 × `facemark predict --threads 1 --shard i/2`"
            rows.append((name, n, took))
            print(rows[-1], flush=True)
    lines = ["# Throughput over a folder", "", f"`python {' '.join(sys.argv)}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (`nproc`), nothing else running. Images: "
             f"{args.images} (CelebA, 178×218 JPEG). label = MediaPipe Face Mesh teacher; predict = MTCNN + "
             "face88 network (onnxruntime), JSON Lines output.", "",
             "| run | images | seconds | images/s |", "|---|---|---|---|"]
    lines += [f"| {name} | {n:,} | {took:.1f} | {n / took:.0f} |" for name, n, took in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
