"""Train the eye refiner (facemark.train.eye_model) on an eye cache and export it to ONNX.

    python scripts/train_eye_refiner.py work/cache_eyes runs/eye_refiner --epochs 30
    # -> runs/eye_refiner/{best.pt, last.pt, eyes.onnx, log.csv, metrics.json}; resumes from last.pt. Ship with
    cp runs/eye_refiner/eyes.onnx src/facemark/weights/eyes.onnx

Faces: `scripts/make_eye_cache.py`'s, those with lid labels (MediaPipe's lids on the shipped network's
corners), each drawn as often as the cache repeats it (shut eyes more often); both eyes of each, the image-right
one mirrored (facemark.pipeline.eyes). A share of the faces (`--holdout`, by image) is kept out and checks
the lids each epoch: their mean pixel error in face-crop pixels and the eye openness of the shut ones.

The refiner's prior is what it gets at run time: the shipped face88 network's eyes on each face (its centre
view averaged with the mirror image), computed once into the cache folder (`face88_eyes.npy`). Each patch is
framed on those corners moved by a random similarity (a shifted, zoomed or rolled framing), then changed in
light, blur and noise (webcam and video frames are softer than photos).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]

from facemark.geometry.openness import eye_aspect_ratio  # noqa: E402
from facemark.labels.cache import open_cache  # noqa: E402
from facemark.pipeline.crops import crop_image, normalise_crop  # noqa: E402
from facemark.pipeline.eyes import EYE_CORNER_GAP, EYE_PATCH_SIZE, crop_to_patch, eye_transform, to_patch  # noqa: E402
from facemark.train.eye_model import EyeRefiner, EyeRefinerConfig, export_onnx  # noqa: E402
from facemark.train.training import landmark_loss  # noqa: E402

SHUT = 0.15  # an eye is shut when its label's openness is under this


def has_lid_labels(cache) -> np.ndarray:
    """(N,) bool: the cache rows whose eyes are labelled (human faces have their 34 shared points only)."""
    s = slice(cache.scheme.region_slice("left_eye").start, cache.scheme.region_slice("right_eye").stop)
    return ~np.isnan(cache.points[:, s]).any(axis=(1, 2))


def split_rows(cache, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, with the cache's repeats; held-out rows, each face once): the training split's faces with
    lid labels, `holdout` of their images held out by a hash of the name (the same faces on every run)."""
    rows = np.flatnonzero(has_lid_labels(cache) & ~cache.val)
    held_by_image = np.array([zlib.crc32(n.encode()) % 1000 < holdout * 1000 for n in cache.names])
    train_rows, held_rows = rows[~held_by_image[rows]], rows[held_by_image[rows]]
    _, first = np.unique(np.array(cache.names)[held_rows], return_index=True)
    return train_rows, held_rows[np.sort(first)]


def jitter(rng: np.random.Generator, strength: float) -> dict:
    """A random framing error (eye_transform's keywords): the landmark network's corners are off by about a
    pixel, its roll by a few degrees."""
    return {"shift": tuple(rng.normal(0, [2.5 * strength, 2.0 * strength])),
            "zoom": math.exp(rng.normal(0, 0.08 * strength)), "turn": math.radians(rng.normal(0, 6.0 * strength))}


def photometric(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = patch.astype(np.float32)
    if rng.random() < 0.3:  # softer: shrink and enlarge again
        w, h = EYE_PATCH_SIZE
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(x, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.15:
        x = np.repeat(x.mean(-1, keepdims=True), 3, -1)
    gain = math.exp(rng.normal(0, 0.25))
    x = (x - x.mean()) * gain * math.exp(rng.normal(0, 0.15)) + x.mean() * gain
    if rng.random() < 0.3:
        x = x + rng.normal(0, rng.uniform(2, 8), x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def make_batch(crops, eyes, priors, rows, sides, rng, strength):
    """Patches (B, 3, H, W), the landmark network's eyes on them (B, 8, 2) and their labels (B, 8, 2), for faces
    `rows`, eye `sides` (0 the image-left eye, 1 the image-right one, mirrored)."""
    w, h = EYE_PATCH_SIZE
    x = np.empty((len(rows), h, w, 3), np.uint8)
    p = np.empty((len(rows), 8, 2), np.float32)
    y = np.empty((len(rows), 8, 2), np.float32)
    for k, (r, side) in enumerate(zip(rows, sides)):
        # framed on the landmark network's corners, as at run time (the label's are the same points)
        t = eye_transform(priors[r, side], **(jitter(rng, strength) if strength > 0 else {}))
        patch = crop_to_patch(crop_image(crops[r], t), side == 1)
        x[k] = photometric(patch, rng) if strength > 0 else patch
        p[k] = to_patch(t, priors[r, side], side == 1)
        y[k] = to_patch(t, eyes[r, side], side == 1)
    return torch.from_numpy(normalise_crop(x)), torch.from_numpy(p), torch.from_numpy(y)


def landmark_network_eyes(cache, rows: np.ndarray, path: Path) -> np.ndarray:
    """(N, 2, 8, 2) the shipped face88 network's eyes on each cache face (its centre view, averaged with the
    mirror image, as the photo pipeline's last pass), in context-crop pixels; NaN for rows not asked for.
    Computed once and kept in `path`."""
    if path.exists():
        return np.load(path)
    from facemark.network import load_network, predict_crops

    network = load_network("face88")
    out = np.full((len(cache.points), 2, 8, 2), np.nan)
    left, right = cache.scheme.region_slice("left_eye"), cache.scheme.region_slice("right_eye")
    offset = (cache.context_size - cache.size) / 2
    for k in tqdm(range(0, len(rows), 64), desc="landmark network", unit="batch", mininterval=30):
        idx = rows[k:k + 64]
        crops, _ = cache.network_view(idx)
        pred = predict_crops(network, crops, flip=True) + offset
        out[idx, 0], out[idx, 1] = pred[:, left], pred[:, right]
    np.save(path, out)
    return out


@torch.no_grad()
def evaluate(model, crops, eyes, priors, scale, rows) -> dict:
    model.eval()
    preds, labels, scales = [], [], []
    rng = np.random.default_rng(0)
    for k in range(0, len(rows), 512):
        r = np.repeat(rows[k:k + 512], 2)
        s = np.tile([0, 1], len(r) // 2)
        x, p, y = make_batch(crops, eyes, priors, r, s, rng, 0.0)
        preds.append(model(x, p).numpy())
        labels.append(y.numpy())
        scales.append(scale[r])
    p, t, sc = np.concatenate(preds), np.concatenate(labels), np.concatenate(scales)
    lids = [1, 2, 3, 5, 6, 7]
    err = (np.linalg.norm(p[:, lids] - t[:, lids], axis=-1).mean(1) / sc).mean()  # face-crop pixels
    # openness with the label's corners (the refiner's corners are not used)
    p_used = p.copy()
    p_used[:, [0, 4]] = t[:, [0, 4]]
    o_pred, o_true = eye_aspect_ratio(p_used), eye_aspect_ratio(t)
    shut = o_true < SHUT
    model.train()
    return {"lid_error_crop_px": round(float(err), 3), "eyes": int(len(t)), "shut": int(shut.sum()),
            "openness_shut": round(float(o_pred[shut].mean()), 4),
            "openness_shut_label": round(float(o_true[shut].mean()), 4),
            "openness_mae": round(float(np.abs(o_pred - o_true).mean()), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cache")
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--holdout", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-prior", dest="prior", action="store_false",
                   help="the refiner without the landmark network's eye as an input")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = open_cache(a.cache)
    scheme = cache.scheme
    left, right = scheme.region_slice("left_eye"), scheme.region_slice("right_eye")
    keep = has_lid_labels(cache)
    train_rows, held_rows = split_rows(cache, a.holdout)
    if not len(held_rows) or not len(train_rows):
        raise SystemExit(f"{len(train_rows)} training rows and {len(held_rows)} held-out faces with lid labels: "
                         "both are needed (change --holdout, or use a cache from scripts/make_eye_cache.py)")
    print(f"{len(train_rows)} training rows (with repeats), {len(held_rows)} held-out faces", flush=True)
    crops = cache.crops  # memory-mapped; the page cache keeps what the random draws touch
    pts = cache.points.astype(np.float64)
    eyes = np.stack([pts[:, left], pts[:, right]], axis=1)  # (N, 2, 8, 2)
    gap = np.linalg.norm(eyes[:, 0, 0] - eyes[:, 0, 4], axis=-1)
    scale = np.where(keep, EYE_CORNER_GAP / np.where(keep, gap, 1.0), 1.0)  # patch px per crop px

    priors = landmark_network_eyes(cache, np.flatnonzero(keep), Path(a.cache) / "face88_eyes.npy")
    model = EyeRefiner(EyeRefinerConfig(width=a.width, prior=a.prior))
    print(f"{sum(q.numel() for q in model.parameters())} parameters", flush=True)
    steps_per_epoch = 2 * len(train_rows) // a.batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, a.lr, total_steps=a.epochs * steps_per_epoch,
                                                   pct_start=0.1)
    rng = np.random.default_rng(a.seed)
    best, log = None, []
    start_epoch = 0
    if (out / "last.pt").exists():  # resume
        state = torch.load(out / "last.pt", weights_only=False)
        model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start_epoch, best, log = state["epoch"], state["best"], state["log"]
        rng = np.random.default_rng(a.seed + start_epoch)
        print(f"resumed after epoch {start_epoch}", flush=True)
    print("held out, mean eye:", json.dumps(evaluate(model, crops, eyes, priors, scale, held_rows)), flush=True)

    def next_batch():
        return make_batch(crops, eyes, priors, rng.choice(train_rows, a.batch_size),
                          rng.integers(0, 2, a.batch_size), rng, 1.0)

    with ThreadPoolExecutor(1) as prefetch:  # the next batch is cut while the network trains on this one
        for epoch in range(start_epoch, a.epochs):
            model.train()
            total, t0 = 0.0, time.time()
            pending = prefetch.submit(next_batch)
            for _ in tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{a.epochs}", unit="step",
                          mininterval=30):
                x, p, y = pending.result()
                pending = prefetch.submit(next_batch)
                loss = landmark_loss(model(x, p), y, "wing")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item()
            pending.result()  # the batch cut ahead past the epoch's last step: nothing left running
            m = evaluate(model, crops, eyes, priors, scale, held_rows)
            m.update(epoch=epoch + 1, loss=round(total / steps_per_epoch, 4), seconds=round(time.time() - t0))
            log.append(m)
            print(json.dumps(m), flush=True)
            if best is None or m["lid_error_crop_px"] < best["lid_error_crop_px"]:
                best = m
                torch.save({"config": model.config_dict(), "model": model.state_dict(), "metrics": m}, out / "best.pt")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "epoch": epoch + 1, "best": best, "log": log},
                       out / "last.pt")
            with open(out / "log.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(log[0]))
                writer.writeheader()
                writer.writerows(log)
    (out / "metrics.json").write_text(json.dumps({"best": best, "args": vars(a)}, indent=1))
    state = torch.load(out / "best.pt", weights_only=False)
    model.load_state_dict(state["model"])
    export_onnx(model, out / "eyes.onnx", metrics=best)
    print(f"best: {json.dumps(best)} -> {out / 'best.pt'}")


if __name__ == "__main__":
    main()
