"""Turn a training run's best weights into a shipped model file, measured as stored.

    python scripts/ship_model.py runs/face88/best.pt --data work/cache160 --precision int8 \
        --out src/facemark/weights/face88.pt  # and face88.onnx beside it

The weights are stored at the given precision, loaded back, evaluated on the cache's validation identities,
and the measured metrics are written into the file (they are what `facemark eval` reproduces).

A joint run (scheme "face88+ibug68", `facemark.train.joint`) ships one layout at a time: `--layout ibug68`
keeps that layout's heatmap channels (`split_joint_model`); `--data` is then a cache of that layout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facemark.train.evaluation import evaluate_cache, format_metrics
from facemark.train.export import export_onnx
from facemark.train.joint import is_joint, split_joint_model
from facemark.train.weights import load_weights, save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a run's best.pt")
    parser.add_argument("--data", required=True, help="the cache it was trained on")
    parser.add_argument("--precision", default="int8", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--layout", help="the layout to ship from a joint run (e.g. face88 or ibug68)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    trained = load_weights(args.weights)
    epoch = trained.metrics.get("epoch")
    if is_joint(trained.scheme):
        parts = split_joint_model(trained)
        if args.layout not in parts:
            parser.error(f"{args.weights} is a joint run: choose --layout from {', '.join(parts)}")
        trained = parts[args.layout]
    elif args.layout and args.layout != trained.scheme.name:
        parser.error(f"{args.weights} predicts {trained.scheme.name}, not {args.layout}")
    save_weights(trained, args.out, precision=args.precision)
    shipped = load_weights(args.out)
    evaluation = evaluate_cache(shipped, args.data, split="val")
    metrics = {k: v for k, v in evaluation.metrics.items() if k != "per_image_nme"}
    metrics |= {"epoch": epoch, "split": "val", "cache": str(args.data)}
    save_weights(shipped, args.out, metrics=metrics, precision=args.precision)
    print(format_metrics(evaluation.metrics, evaluation.scheme))
    print(f"-> {args.out} ({Path(args.out).stat().st_size:,} bytes, {args.precision})")
    # the runtime's copy (facemark.network): the same weights as ONNX beside it, metrics included
    onnx_path = export_onnx(load_weights(args.out), Path(args.out).with_suffix(".onnx"))
    print(f"-> {onnx_path} ({onnx_path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
