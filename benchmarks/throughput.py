"""Throughput of `facemark label` and `facemark predict` over a whole folder, with 1 and 2 workers.

    python benchmarks/throughput.py --images ../shared/data/celeba/images

label: `--workers 1` and `--workers 2`. predict: one process on one thread, `--workers 2` (a pool of two
single-threaded worker processes, one output), and two independent processes splitting the folder with
`--shard 0/2` and `--shard 1/2` (how it scales across machines). `--runs` picks some of them; their rows are
replaced in an existing table and the others kept. Outputs go to a temporary folder; the table goes to
benchmarks/results/throughput.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import write_report

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
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.runs:
            name, make = RUNS[key]
            commands, outs = make(args.images, Path(tmp))
            took = run_parallel(commands)
            rows[name] = (count_lines(outs), took)
            print(name, rows[name], flush=True)
    old = _old_rows(Path(args.out))
    lines = [f"Images: "
             f"{args.images} (CelebA, 178×218 JPEG). label = MediaPipe Face Mesh teacher; predict = MTCNN + "
             "face88 network (onnxruntime), JSON Lines output."
             + ("" if set(args.runs) == set(RUNS) else
                " Rows of runs not named in `--runs` are kept from the previous table (an earlier command)."), "",
             "| run | images | seconds | images/s |", "|---|---|---|---|"]
    for key, (name, _) in RUNS.items():
        if name in rows:
            n, took = rows[name]
            lines.append(f"| {name} | {n:,} | {took:.1f} | {n / took:.0f} |")
        elif name in old:
            lines.append(old[name])
    write_report(args.out, "Throughput over a folder", lines)


def _label(workers):
    def make(images, tmp):
        out = tmp / f"labels{workers}.jsonl"
        return [FACEMARK + ["label", images, "--out", str(out), "--workers", str(workers), "--quiet"]], [out]
    return make


def _predict(processes, workers=1):
    def make(images, tmp):
        outs = [tmp / f"pred{processes}_{workers}_{i}.jsonl" for i in range(processes)]
        commands = [FACEMARK + ["predict", images, "--json", str(o), "--quiet", "--threads", "1",
                                "--workers", str(workers)]
                    + (["--shard", f"{i}/{processes}"] if processes > 1 else []) for i, o in enumerate(outs)]
        return commands, outs
    return make


RUNS = {  # key -> (table row name, command maker)
    "label1": ("`facemark label --workers 1`", _label(1)),
    "label2": ("`facemark label --workers 2`", _label(2)),
    "predict1": ("`facemark predict --threads 1`", _predict(1)),
    "predict_workers2": ("`facemark predict --workers 2`", _predict(1, workers=2)),
    "predict_shards2": ("2 × `facemark predict --threads 1 --shard i/2`", _predict(2)),
}


def _old_rows(path: Path) -> dict[str, str]:
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            cells = line.split(" | ")
            if line.startswith("| `") or line.startswith("| 2 ×"):
                rows[cells[0][2:]] = line
    return rows


if __name__ == "__main__":
    main()
