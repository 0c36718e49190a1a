"""Trained landmark networks side by side: imitation of the teacher on held-out identities, human-label NME on
AFW (held out from every facemark model), size and speed.

    python benchmarks/trained_models.py --celeba work/cache160 --afw88 work/cache_afw88 --afw68 work/cache_afw \
        --model "heatmap, 2 epochs=runs/cmp/heatmap/best.pt" "shipped face88=face88" --out benchmarks/results/x.md

Each `--model` is `LABEL=WEIGHTS` (a file or a built-in name). face88 networks are scored on the CelebA
validation identities against the MediaPipe teacher (NME, MAE in the 160-px crop) and on AFW's 34 points face88
shares with the human iBUG labels (`--afw88`, a cache made by `scripts/make_calibration_labels.py --max-teacher 0
--human ../shared/data/300w/afw`); ibug68 networks on all 68 AFW points (`--afw68`, `facemark cache
../shared/data/300w/afw`). Crops are framed on the labelled points (the network's training framing), so these
figures measure the network alone; `benchmarks/human_labels.py` measures the whole pipeline with its detector.
"""

from __future__ import annotations

import argparse

import torch

from facemark.train.evaluation import evaluate_cache
from facemark.train.export import onnx_network_from_torch
from facemark.train.weights import load_weights, resolve_weights_path

from model_table import file_size, ms_per_face
from report import write_report


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", required=True, help="LABEL=WEIGHTS (file or built-in name)")
    parser.add_argument("--celeba", help="cache of teacher-labelled CelebA faces (its val split is scored)")
    parser.add_argument("--afw88", help="cache of AFW with the 34 face88 points people labelled")
    parser.add_argument("--afw68", help="cache of AFW with all 68 iBUG points")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--title", default="Trained landmark networks")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for spec in args.model:
        label, _, weights = spec.partition("=")
        if not weights:
            parser.error(f"--model {spec!r}: expected LABEL=WEIGHTS")
        model = load_weights(weights)
        c = model.config
        face88 = model.scheme.name == "face88"
        celeba = evaluate_cache(model, args.celeba, "val", progress=False).metrics if face88 and args.celeba else None
        afw_cache = args.afw88 if face88 else args.afw68
        afw = evaluate_cache(model, afw_cache, "all", progress=False).metrics if afw_cache else None
        onnx = onnx_network_from_torch(model, threads=args.threads)
        network = f"{c.head}, α {c.alpha}" if c.arch == "mobilenet" else f"{c.arch}, {c.head} head"
        rows.append([label, f"{network}, {c.input_size} px", model.scheme.name,
                     f"{sum(p.numel() for p in model.parameters()):,}",
                     f"{resolve_weights_path(weights).stat().st_size / 1e6:.2f} MB",
                     f"{file_size(model, 'int8') / 1e6:.2f} MB",
                     _pct(celeba and celeba["nme"]), "–" if celeba is None else f"{celeba['mae_px']:.3f}",
                     "–" if celeba is None else f"{celeba['mse_px']:.3f}",
                     _pct(celeba and celeba["failure_rate@0.1"]),
                     _pct(afw and afw["nme"]), _pct(afw and afw["failure_rate@0.1"]),
                     f"{ms_per_face(onnx):.2f}"])
        print(" | ".join(rows[-1]), flush=True)
    header = ["model", "network", "layout", "params", "file", "int8 file", "CelebA val NME (vs teacher)",
              "MAE px @160", "MSE px² @160", "FR@0.1", "AFW NME (human)", "AFW FR@0.1", "ms/face onnxruntime"]
    lines = [f"torch {torch.__version__}, {args.threads} thread(s); onnxruntime at batch 1.", "",
             "CelebA val: the teacher-labelled validation identities (never trained on). AFW: 337 human-labelled "
             "faces no facemark model trained on; face88 on the 34 points it shares with iBUG-68, ibug68 on all 68; "
             "crops framed on the labelled points (the network alone, no detector). NME: outer-eye-corner "
             "normalised.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    write_report(args.out, args.title, lines)


if __name__ == "__main__":
    main()
