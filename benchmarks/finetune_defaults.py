"""Fine-tuning a shipped network on a few hundred faces: which learning rate and frozen-backbone epochs make it
better, and never worse, on faces it did not see.

    python benchmarks/finetune_defaults.py --pts work/issue29/afw_helen --work work/finetune --init ibug68 \
        --faces 300 --epochs 8

The cache of `--pts` (68-point .pts files; made in --work on the first run) is split by identity as every
facemark cache is. Training uses the first `--faces` training faces. The validation faces are halved: the first
half picks best.pt (the training loop's validation), the second half is only scored here ("held-out"). With the
built-in ibug68 and AFW + HELEN, those validation identities are the ones ibug68 was held out from (the same
split rule and fraction), so "start" is the shipped model on faces it never saw.

Per setting: held-out NME at the start, of the last epoch's weights, and of best.pt (what `facemark train`
hands over); writes benchmarks/results/finetune_defaults.md (--out to change).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from report import write_report

SETTINGS = [  # (learning rate, frozen-backbone epochs); 3e-3 / 0 was the default for every run before
    (3e-3, 0), (1e-3, 0), (3e-4, 0), (1e-3, 2), (3e-4, 2),
]


def held_out_nme(weights, cache, indices) -> float:
    from facemark.evaluation.metrics import landmark_metrics
    from facemark.train.training import predict_cache
    from facemark.train.weights import load_weights

    model = load_weights(weights) if isinstance(weights, (str, Path)) else weights
    pred, true = predict_cache(model, cache, indices)
    return landmark_metrics(pred, true, cache.scheme)["nme"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pts", required=True, help="folder of images with 68-point .pts files")
    ap.add_argument("--work", required=True, help="folder for the cache and the runs")
    ap.add_argument("--init", default="ibug68")
    ap.add_argument("--faces", type=int, default=300, help="training faces")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "finetune_defaults.md"))
    args = ap.parse_args()

    import torch

    from facemark.labels.cache import build_cache, open_cache
    from facemark.train.training import TrainConfig, train
    from facemark.train.weights import load_weights

    torch.set_num_threads(2)
    work = Path(args.work)
    cache_dir = work / "cache"
    if not (cache_dir / "meta.json").exists():
        build_cache(args.pts, args.pts, cache_dir, progress=False)
    cache = open_cache(cache_dir)
    val = cache.indices("val")
    select, held_out = len(val) // 2, val[len(val) // 2:]
    init = load_weights(args.init)
    start = held_out_nme(init, cache, held_out)
    rows = []
    for lr, freeze in SETTINGS:
        run = work / f"lr{lr:g}_freeze{freeze}"
        if not (run / "last.pt").exists():
            t = time.perf_counter()
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr, freeze_epochs=freeze,
                                 max_train=args.faces, max_val=select, init=args.init,
                                 model={k: getattr(init.config, k) for k in ("arch", "alpha", "rho", "shallow",
                                                                             "head", "head_channels")})
            result = train(cache_dir, run, config, progress=False)
            (run / "seconds.txt").write_text(f"{time.perf_counter() - t:.0f} {result['best_epoch']}")
        seconds, best_epoch = (run / "seconds.txt").read_text().split()
        model = load_weights(run / "best.pt")  # the architecture; then the last epoch's weights
        model.load_state_dict(torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"])
        last_nme = held_out_nme(model, cache, held_out)
        best_nme = held_out_nme(run / "best.pt", cache, held_out)
        rows.append((lr, freeze, last_nme, best_nme, int(best_epoch), int(seconds)))
        print(f"lr {lr:g}, frozen {freeze}: start {100 * start:.2f}%, last {100 * last_nme:.2f}%, "
              f"best.pt {100 * best_nme:.2f}% (epoch {best_epoch}), {seconds} s", flush=True)

    lines = [f"`{args.init}` fine-tuned on {min(args.faces, len(cache.indices('train')))} faces of `{args.pts}` for "
             f"{args.epochs} epochs (batch {args.batch_size}, every face each epoch); best.pt picked on "
             f"{select} validation faces; NME (outer eye corners) on the other {len(held_out)} validation faces, "
             f"which neither training nor the pick saw. Start: **{100 * start:.2f}%**.", "",
             "| learning rate | backbone frozen (epochs) | last epoch | best.pt | best.pt's epoch | best.pt vs start "
             "| time |", "|---|---|---|---|---|---|---|"]
    for lr, freeze, last_nme, best_nme, best_epoch, seconds in rows:
        lines.append(f"| {lr:g} | {freeze} | {100 * last_nme:.2f}% | {100 * best_nme:.2f}% | {best_epoch} | "
                     f"{100 * (best_nme - start) / start:+.1f}% | {seconds} s |")
    lines += ["", "Epoch 0 is the --init network itself: `facemark train --init` scores it before training and "
              "keeps it as best.pt until an epoch beats it clearly (over the same validation faces, a mean "
              "per-face gain of more than two standard errors: facemark.train.training.clearly_better)."]
    write_report(args.out, f"Fine-tuning defaults: {args.init} on {args.faces} faces", lines)


if __name__ == "__main__":
    main()
