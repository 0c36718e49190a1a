"""Fine-tune face88 on the eye cache (`scripts/make_eye_cache.py`), keeping every epoch's weights.

    python scripts/finetune_eyes.py work/cache_eyes runs/face88_eyes --epochs 5 --lr 3e-4 --eye-weight 3

Starts from the shipped face88 (`--init`), the loss weighting each eye's 8 points `--eye-weight` times
(facemark.train.training.TrainConfig.region_weights). The validation split (the held-out human faces, 34
points) chooses nothing here: the fixed schedule's weights of every epoch are written as `epoch<N>.pt` and
benchmarks/eyelids.py and benchmarks/human_labels.py choose among them. Resumable: rerunning goes on from the
last finished epoch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from facemark.labels.cache import open_cache
from facemark.train.model import config_dict, create_model
from facemark.train.training import TrainConfig, train
from facemark.train.weights import load_weights, save_weights


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cache")
    p.add_argument("out")
    p.add_argument("--init", default="face88")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eye-weight", type=float, default=3.0)
    a = p.parse_args()
    out = Path(a.out)
    start = config_dict(load_weights(a.init))  # the same network: its architecture, resolution and head
    model_config = {k: start[k] for k in ("arch", "alpha", "rho", "shallow", "head", "head_channels")}
    config = TrainConfig(model=model_config, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, warmup_epochs=0.2, init=a.init,
                         patience=a.epochs, region_weights={"left_eye": a.eye_weight, "right_eye": a.eye_weight})
    cache = open_cache(a.cache)
    while True:
        last = out / "last.pt"
        done = torch.load(last, map_location="cpu", weights_only=False)["epoch"] if last.exists() else 0
        if done >= a.epochs:
            break
        train(a.cache, out, config, resume=last.exists(), stop_after_epochs=1)
        state = torch.load(last, map_location="cpu", weights_only=False)
        model = create_model(scheme=cache.scheme, margin=cache.margin, **config.model)
        model.load_state_dict(state["model"])
        save_weights(model, out / f"epoch{state['epoch']}.pt", metrics={"epoch": state["epoch"]})


if __name__ == "__main__":
    main()
