"""Size/accuracy table: several MobileNet configurations trained on the same schedule, side by side.

    python benchmarks/model_table.py --data work/cache160 --epochs 3 --max-train 4000 --threads 2

For each configuration: parameters, weights file size (fp16 and int8), validation NME and MAE (crop pixels of
the 160-px crop), and landmark-network milliseconds per face at batch 1. Runs go to runs/table/<name>/ (kept,
so a rerun resumes finished ones); the table is printed and written to benchmarks/results/model_table.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from facemark.labels.cache import open_cache
from facemark.train.export import onnx_network_from_torch
from facemark.train.model import TorchLandmarkNetwork
from facemark.evaluation.metrics import landmark_metrics
from facemark.train.training import TrainConfig, predict_cache, train
from facemark.train.weights import load_weights, save_weights

from report import write_report

# name -> model keyword arguments (plus an optional "loss"; wing unless said)
CONFIGS = {
    "a025-shallow": {"alpha": 0.25, "shallow": True},
    "a025-deep": {"alpha": 0.25, "shallow": False},
    "a050-shallow": {"alpha": 0.5, "shallow": True},
    "a050-deep": {"alpha": 0.5, "shallow": False},
    "a050-deep-l1": {"alpha": 0.5, "shallow": False, "loss": "l1"},
    "a050-deep-mse": {"alpha": 0.5, "shallow": False, "loss": "mse"},
}


def ms_per_face(model, repeats: int = 50) -> float:
    """Median ms of one batch-1 call of a network with the runtime's numpy interface (a torch module is wrapped)."""
    if isinstance(model, torch.nn.Module):
        model = TorchLandmarkNetwork(model)
    s = model.config.input_size
    x = np.zeros((1, 3, s, s), np.float32)
    for _ in range(5):
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def file_size(model, precision: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.pt"
        save_weights(model, path, precision=precision)
        return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=4000)
    parser.add_argument("--rho", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="runs/table")
    parser.add_argument("--only", nargs="*", default=list(CONFIGS))
    parser.add_argument("--out", default="benchmarks/results/model_table.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = open_cache(args.data)
    val = cache.indices("val")
    rows = []
    for name in args.only:
        model_kwargs = {"arch": "mobilenet", "rho": args.rho, "head_channels": 48} | CONFIGS[name]
        loss = model_kwargs.pop("loss", "wing")
        run = Path(args.runs) / name
        config = TrainConfig(epochs=args.epochs, max_train=args.max_train, model=model_kwargs, loss=loss)
        if not (run / "best.pt").exists() or not _finished(run, args.epochs):
            train(args.data, run, config, resume=(run / "last.pt").exists(), progress=False)
        model = load_weights(run / "best.pt")
        pred, true = predict_cache(model, cache, val)
        m = landmark_metrics(pred, true, cache.scheme)
        params = sum(p.numel() for p in model.parameters())
        rows.append((f"{name} ({loss} loss)", params, file_size(model, "fp16"), file_size(model, "int8"),
                     m["nme"], m["mae_px"], ms_per_face(model),
                     ms_per_face(onnx_network_from_torch(model, threads=args.threads))))
        print(f"{name}: NME {100 * m['nme']:.2f}%", flush=True)
    lines = [f"torch {torch.__version__}, {args.threads} threads; input {round(160 * args.rho)} px; validation: "
             f"{len(val)} faces of held-out identities.", "",
             "| config | params | fp16 file | int8 file | val NME | val MAE (px, 160 crop) | ms/face torch | "
             "ms/face onnxruntime |", "|---|---|---|---|---|---|---|---|"]
    for name, params, fp16, int8, nme, mae, ms, ms_onnx in rows:
        lines.append(f"| {name} | {params:,} | {fp16 / 1e6:.2f} MB | {int8 / 1e6:.2f} MB | {100 * nme:.2f}% | "
                     f"{mae:.2f} | {ms:.2f} | {ms_onnx:.2f} |")
    write_report(args.out, f"Size/accuracy table ({args.epochs} epochs on {args.max_train} training faces, same "
                 "schedule)", lines)


def _finished(run: Path, epochs: int) -> bool:
    log = run / "log.csv"
    return log.exists() and len(log.read_text().strip().splitlines()) - 1 >= epochs


if __name__ == "__main__":
    main()
