"""Teach a trained face88 network's lid points to close, leaving every other point exactly where it was.

    python scripts/finetune_eye_readout.py work/cache_eyes runs/face88_lids --init face88

Only the heatmap readout of the 12 lid points is trained (their rows of the last 1×1 convolution,
`PyramidHeatmapHead.heatmaps`: 12 × 65 numbers); the backbone, the pyramid and the readout of the other 76 points
(the eye corners among them) are frozen, so on any face the other points come out as before, bit for bit, and
the human-labelled accuracy of the 34 shared points cannot change. The lids learn from the eye labels of
`scripts/make_eye_cache.py` (MediaPipe's lids on the network's own eye corners), each face counted as often as
the cache repeats it (closed eyes more often).

The backbone being frozen, its features are computed once per view: each face's centre view and one view moved
by a random similarity (shift, zoom, rotation, mirror image); the readout then trains on them for `--epochs`.
A share of the teacher faces (`--holdout`, by image) checks the lids: their mean pixel error and the eye
openness (`facemark.geometry.openness.eye_openness`) of the shut ones, before and after.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]

from facemark.geometry.openness import eye_openness  # noqa: E402
from facemark.labels.cache import open_cache  # noqa: E402
from facemark.train.augment import AugmentConfig, centre_view, random_geometry, warp_batch  # noqa: E402
from facemark.train.model import soft_argmax  # noqa: E402
from facemark.train.training import landmark_loss  # noqa: E402
from facemark.train.weights import load_weights, save_weights  # noqa: E402

# the views the features are computed on: a detector's box jitter and head roll, no photometric change
VIEW_JITTER = AugmentConfig(shift=0.05, scale=0.1, rotate_deg=15.0, rotate_wide=0.0, flip=0.5)
SHUT = 0.15  # a held-out face's eyes are shut when its label's mean eye openness is under this


def lid_points(scheme) -> np.ndarray:
    """The 12 lid points: each eye's 8 points but its two corners (offsets 0 and 4 of the eye region)."""
    out = []
    for eye in ("left_eye", "right_eye"):
        s = scheme.region_slice(eye)
        out += [s.start + k for k in range(8) if k not in (0, 4)]
    return np.array(out)


def unique_faces(cache) -> tuple[np.ndarray, np.ndarray]:
    """(first cache index, repeat count) of each training face: the cache writes a face's copies one after another."""
    train = cache.indices("train")
    first, count = [], []
    for i in train:
        if first and cache.names[i] == cache.names[first[-1]] and i == first[-1] + count[-1]:
            count[-1] += 1
        else:
            first.append(i), count.append(1)
    return np.array(first), np.array(count)


@torch.no_grad()
def features(model, cache, rows: np.ndarray, jitter: bool, seed: int, batch: int = 128):
    """Per face: the 64-channel map the heatmap readout reads (fp16), the view's label and the network's points."""
    head = model.head
    grabbed = {}
    hook = head.heatmaps.register_forward_hook(lambda m, i, o: grabbed.__setitem__("x", i[0]))
    out_size, g = model.config.input_size, torch.Generator().manual_seed(seed)
    feats, labels, preds = [], [], []
    for k in tqdm(range(0, len(rows), batch), desc="features" + (" (moved views)" if jitter else ""), unit="batch",
                  mininterval=10):
        idx = rows[k:k + batch]
        crops = torch.from_numpy(np.ascontiguousarray(cache.crops[idx]))
        pts = torch.from_numpy(cache.points[idx].astype(np.float32))
        if jitter:
            x = crops.permute(0, 3, 1, 2).float() / 255
            m, shift, flip = random_geometry(len(idx), VIEW_JITTER, cache.size, g)
            x, view = warp_batch(x, pts, m, shift, flip, cache.size, out_size, cache.scheme)
            x = x * 2 - 1
        else:
            x, view = centre_view(crops, pts, cache.size, out_size, cache.scheme)
        preds.append(model.to_pixels(model(x)))
        feats.append(grabbed["x"].half())
        labels.append(view)
    hook.remove()
    return torch.cat(feats), torch.cat(labels), torch.cat(preds)


def readout(feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, out_size: int) -> torch.Tensor:
    """Lid points in network pixels from the readout's features and the lid rows (weight (L, C), bias (L,))."""
    logits = torch.einsum("bchw,lc->blhw", feats.float(), weight) + bias[:, None, None]
    return (soft_argmax(logits) + 1) * (out_size / 2) - 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cache")
    p.add_argument("out")
    p.add_argument("--init", default="face88")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--holdout", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = open_cache(a.cache)
    model = load_weights(a.init).eval()
    lids = lid_points(cache.scheme)
    first, count = unique_faces(cache)
    has_lids = ~np.isnan(cache.points[first][:, lids]).any(axis=(1, 2))  # human faces have 34 points only
    first, count = first[has_lids], count[has_lids]
    rng = np.random.default_rng(a.seed)
    held = rng.random(len(first)) < a.holdout
    print(f"{len(first)} faces with lid labels ({count.sum()} with repeats); {held.sum()} held out", flush=True)

    feats_file = out / "features.pt"
    if feats_file.exists():  # resumable: the features are the slow part
        f0, l0, p0, f1, l1, p1 = torch.load(feats_file)
    else:
        f0, l0, p0 = features(model, cache, first, jitter=False, seed=a.seed)
        f1, l1, p1 = features(model, cache, first, jitter=True, seed=a.seed + 1)
        torch.save((f0, l0, p0, f1, l1, p1), feats_file)

    conv = model.head.heatmaps
    weight = conv.weight.detach()[lids, :, 0, 0].clone().requires_grad_(True)
    bias = conv.bias.detach()[lids].clone().requires_grad_(True)
    out_size = model.config.input_size
    train = torch.from_numpy(np.flatnonzero(~held))
    feats_train = torch.cat([f0[train], f1[train]])
    labels_train = torch.cat([l0[train], l1[train]])[:, lids]
    # each face drawn as often as the cache repeats it
    draw = torch.from_numpy(np.r_[count[~held], count[~held]].astype(np.float64))
    steps = int(a.epochs * len(feats_train) / a.batch_size)
    optimizer = torch.optim.Adam([weight, bias], lr=a.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, a.lr, total_steps=steps, pct_start=0.1)

    def check(w, b) -> dict:
        idx = torch.from_numpy(np.flatnonzero(held))
        with torch.no_grad():
            pred = p0[idx].clone()
            pred[:, lids] = readout(f0[idx], w, b, out_size)
        truth = l0[idx]
        err = (pred[:, lids] - truth[:, lids]).norm(dim=-1).mean().item()
        open_true = eye_openness(truth.numpy().astype(np.float64)).mean(-1)
        open_pred = eye_openness(pred.numpy().astype(np.float64)).mean(-1)
        shut = open_true < SHUT

        def mean(v: np.ndarray) -> float | None:
            return round(float(v.mean()), 4) if len(v) else None
        return {"lid_error_px": round(err, 3), "faces": int(len(idx)), "shut": int(shut.sum()),
                "openness_shut": mean(open_pred[shut]), "openness_shut_label": mean(open_true[shut]),
                "openness_all": mean(open_pred), "openness_all_label": mean(open_true)}

    before = check(weight.detach(), bias.detach())
    print("held out, before:", json.dumps(before), flush=True)
    for step in tqdm(range(steps), desc="readout", unit="step", mininterval=10):
        pick = torch.multinomial(draw, a.batch_size, replacement=True)
        pred = readout(feats_train[pick], weight, bias, out_size)
        loss = landmark_loss(pred, labels_train[pick], "wing")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    after = check(weight.detach(), bias.detach())
    print("held out, after: ", json.dumps(after), flush=True)

    with torch.no_grad():
        conv.weight[lids, :, 0, 0] = weight.detach()
        conv.bias[lids] = bias.detach()
    metrics = {"lids_held_out_before": before, "lids_held_out_after": after, "epochs": a.epochs, "lr": a.lr,
               "init": str(a.init), "cache": str(a.cache)}
    save_weights(model, out / "best.pt", metrics=metrics, precision="fp32")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"-> {out / 'best.pt'}")


if __name__ == "__main__":
    main()
