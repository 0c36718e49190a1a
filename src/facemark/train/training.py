"""Training loop: a plain epoch loop over a cache, with augmentation, validation NME, early stopping and
checkpoints that make `--resume` after a crash or kill land on the same result as an uninterrupted run.

Reproducibility: every epoch draws its shuffle and augmentation from a generator seeded by (seed, epoch), and
the learning rate is a pure function of the step, so restarting from the checkpoint written at the end of
epoch e replays epochs e+1... exactly as they would have run.

Run folder: config.json, log.csv (one row per epoch), curves.png, last.pt (full training state),
best.pt (weights file of the best validation epoch).
"""

from __future__ import annotations

import csv
import json
import math
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facemark.train import distributed
from facemark.train.augment import AugmentConfig, augment_batch, centre_view
from facemark.labels.cache import FaceCache, open_cache
from facemark.evaluation.metrics import landmark_metrics
from facemark.train.model import create_model
from facemark.train.weights import atomic_save, save_weights

LOG_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "val_nme", "val_mae_px", "seconds"]


class TrainingError(RuntimeError):
    pass


# Defaults for training from scratch, and for fine-tuning a trained network (--init): a trained backbone needs a
# smaller step, and a head that starts where the trained points are needs a few epochs before the backbone moves.
# Chosen by benchmarks/finetune_defaults.py (benchmarks/results/finetune_defaults.md).
SCRATCH_LR, SCRATCH_FREEZE_EPOCHS = 3e-3, 0
# an epoch replaces the --init network as best.pt only when it beats it by more than chance: over the same
# validation faces, the mean per-face gain must exceed this many standard errors of that mean
BEAT_START_SIGMAS = 2.0
FINETUNE_LR, FINETUNE_FREEZE_EPOCHS = 1e-3, 0


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-3  # peak learning rate (AdamW), reached after warmup, then cosine down to 0
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4
    loss: str = "wing"  # wing | l1 | mse | smooth_l1, on crop pixels
    patience: int = 15  # stop after this many epochs without a better validation NME
    seed: int = 0
    max_train: int | None = None  # use only the first N training faces (quick runs, tests)
    max_val: int | None = None
    model: dict = field(default_factory=lambda: {"arch": "mobilenet", "alpha": 0.5})
    init: str | None = None  # weights file or built-in name to start from (transfer learning; see init_from)
    # epochs at the start during which the backbone is frozen (weights and batch-norm statistics): the new or
    # disturbed head settles before its gradients reach the trained features
    freeze_epochs: int = 0
    # loss weight per region of the layout ({"left_eye": 3.0, ...}; others 1): a lid moves a few pixels
    # between open and shut, so its error counts for little in a loss over the whole face
    region_weights: dict = field(default_factory=dict)
    augment: dict = field(default_factory=lambda: asdict(AugmentConfig()))


def point_weights(scheme, region_weights: dict) -> torch.Tensor | None:
    """(P,) loss weight of each point from {region: weight} (others 1), or None when nothing is weighted."""
    if not region_weights:
        return None
    w = torch.ones(scheme.num_points)
    for region, value in region_weights.items():
        s = scheme.region_slice(region)
        w[s] = float(value)
    return w


def landmark_loss(pred_px: torch.Tensor, true_px: torch.Tensor, kind: str,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss over the labelled coordinates; NaN targets (points a partial label lacks) are left out.
    `weights` (P,): each point's share of the mean (None: all alike)."""
    known = ~torch.isnan(true_px)
    err = torch.where(known, pred_px - true_px.nan_to_num(), 0.0)
    a = err.abs()
    if kind == "l1":
        per = a
    elif kind == "mse":
        per = err ** 2
    elif kind == "smooth_l1":
        per = torch.nn.functional.smooth_l1_loss(err, torch.zeros_like(err), reduction="none")
    elif kind == "wing":
        # Wing loss (Feng et al. 2018): log-shaped for small errors, so sub-pixel errors still pull; linear
        # for large ones, so a few bad labels do not dominate. w, eps in crop pixels.
        w, eps = 10.0, 2.0
        c = w - w * math.log(1 + w / eps)
        per = torch.where(a < w, w * torch.log1p(a / eps), a - c)
    else:
        raise ValueError(f"unknown loss {kind!r}: use wing, l1, mse or smooth_l1")
    if weights is None:
        return (per * known).sum() / known.sum().clamp(min=1)
    w = known * weights.to(per.dtype)[:, None]
    return (per * w).sum() / w.sum().clamp(min=1e-9)


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def epoch_order(train_idx: np.ndarray, batch_size: int, g: torch.Generator) -> np.ndarray:
    """One epoch's faces in batch order: every training face once, shuffled, and the last batch filled up with
    faces from the start of the shuffle, so every batch is full and no face waits for the next epoch."""
    order = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
    steps = -(-len(order) // batch_size)
    return np.resize(order, steps * batch_size)  # wraps around


def clearly_better(per_face: np.ndarray, start: np.ndarray, sigmas: float = BEAT_START_SIGMAS) -> bool:
    """Whether per-face errors `per_face` beat `start`'s on the same faces by more than chance (a paired
    comparison: the mean difference is below minus `sigmas` standard errors)."""
    d = np.asarray(per_face, np.float64) - np.asarray(start, np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return bool(len(d) and d.mean() < 0)
    return bool(d.mean() < -sigmas * d.std(ddof=1) / np.sqrt(len(d)))


def _batch(cache: FaceCache, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    idx = np.sort(idx)  # sorted reads are much faster from a memory-mapped file
    return torch.from_numpy(np.ascontiguousarray(cache.crops[idx])), torch.from_numpy(cache.points[idx])


def augmented_batches(cache: FaceCache, order: np.ndarray, steps: int, batch_size: int, out_size: int,
                      augment_cfg: AugmentConfig, g: torch.Generator):
    """Yield `steps` augmented (x, target) batches of `order`, prepared one batch ahead in a background thread.

    Reading crops and augmenting them is partly single-threaded; preparing the next batch while the network
    trains on this one keeps both cores busy. Only that thread draws from `g`, in batch order, so an epoch is
    as reproducible as without it. Close the generator (or exhaust it) to stop the thread."""
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for b in range(steps):
                crops, pts = _batch(cache, order[b * batch_size:(b + 1) * batch_size])
                if not offer(augment_batch(crops, pts, cache.size, out_size, cache.scheme, augment_cfg, g)):
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            offer(e)

    worker = threading.Thread(target=produce, name="augment", daemon=True)
    worker.start()
    try:
        for _ in range(steps):
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


@torch.no_grad()
def predict_cache(model, cache: FaceCache, indices: np.ndarray, batch_size: int = 256,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) points in pixels of the cache's S×S network view, for the given faces."""
    model.eval()
    device = next(model.parameters()).device
    out_size = model.config.input_size
    k = out_size / cache.size
    preds, trues = [], []
    for start in tqdm(range(0, len(indices), batch_size), disable=not progress, desc="predict", unit="batch"):
        idx = np.sort(indices[start:start + batch_size])
        crops, pts = _batch(cache, idx)
        x, true = centre_view(crops, pts, cache.size, out_size, cache.scheme)
        pred = model.to_pixels(model(x.to(device))).cpu()
        # back to the S×S crop's pixels (pixel-centre convention) for metrics comparable across rho
        preds.append(((pred + 0.5) / k - 0.5).numpy())
        trues.append(((true + 0.5) / k - 0.5).numpy())
    return np.concatenate(preds), np.concatenate(trues)


def _write_curves(log_path: Path, png_path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        """The ticks matplotlib labels on a log axis, written plainly: 33, not 3.3×10¹."""

        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    rows = list(csv.DictReader(log_path.open()))
    if not rows:
        return
    epoch = [int(r["epoch"]) for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epoch, [float(r["train_loss"]) for r in rows], label="train")
    ax1.plot(epoch, [float(r["val_loss"]) for r in rows], label="validation")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("loss"), ax1.legend(), ax1.set_yscale("log")
    ax2.plot(epoch, [100 * float(r["val_nme"]) for r in rows])
    ax2.set_xlabel("epoch"), ax2.set_ylabel("validation NME (%)"), ax2.set_yscale("log")
    ax2.grid(True, which="both", alpha=0.3)
    for ax in (ax1, ax2):
        ax.yaxis.set_major_formatter(PlainLogFormatter())
        ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def train(cache_dir: str | Path, run_dir: str | Path, config: TrainConfig, *, resume: bool = False,
          progress: bool = True, stop_after_epochs: int | None = None) -> dict:
    """Train; returns the best validation metrics. `stop_after_epochs` ends this call early (tests).

    Started by torchrun, every process runs this function on its slice of each global batch
    (facemark.train.distributed); only rank 0 writes the run folder and prints.
    """
    ctx = distributed.setup()
    try:
        return _train(cache_dir, Path(run_dir), config, ctx, resume=resume, progress=progress and ctx.is_main,
                      stop_after_epochs=stop_after_epochs)
    finally:
        distributed.teardown(ctx)


def _train(cache_dir, run_dir: Path, config: TrainConfig, ctx: distributed.DistributedContext, *, resume: bool,
           progress: bool, stop_after_epochs: int | None) -> dict:
    cache = open_cache(cache_dir)
    last_path = run_dir / "last.pt"
    if resume:
        if not last_path.exists():
            raise TrainingError(f"nothing to resume: {last_path} does not exist")
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        config = TrainConfig(**state["train_config"])
    elif last_path.exists():
        raise TrainingError(f"{run_dir} already holds a run; use --resume or another --out")
    if config.batch_size % ctx.world_size:
        raise TrainingError(f"batch size {config.batch_size} does not divide into {ctx.world_size} processes; "
                            "--batch-size is the global batch")
    distributed.barrier(ctx)  # every process has checked the run folder before rank 0 writes into it
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))

    torch.manual_seed(config.seed)
    model = create_model(scheme=cache.scheme, margin=cache.margin, **config.model)
    if config.init and not resume:
        copied = init_from(model, config.init, cache)
        if progress:
            placed = getattr(model, "transfer", None)
            print(f"transfer: {copied} parameter tensors from {config.init}"
                  + (f"; each new point starts as a mix of its points (measured on {placed['faces']} faces, "
                     f"{placed['start_error_px']:.2f} crop px from the labels)" if placed else ""), flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    augment_cfg = AugmentConfig(**config.augment)
    train_idx = cache.indices("train")[:config.max_train]
    val_idx = cache.indices("val")[:config.max_val]
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise TrainingError(f"{cache_dir}: needs both training and validation faces "
                            f"(has {len(train_idx)} / {len(val_idx)})")
    # every face in every epoch: the last batch is filled up with faces from the start of the shuffle
    steps_per_epoch = -(-len(train_idx) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(config.warmup_epochs * steps_per_epoch)
    out_size = model.config.input_size
    weights = point_weights(cache.scheme, config.region_weights)

    epoch, best_nme, best_epoch = 0, float("inf"), -1
    start_per_face = None  # with --init: the start's per-face validation NME, which an epoch must clearly beat
    log_path = run_dir / "log.csv"
    if resume:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, best_nme, best_epoch = state["epoch"], state["best_nme"], state["best_epoch"]
        start_per_face = state.get("start_per_face")
        if ctx.is_main:
            _truncate_log(log_path, epoch)
    elif ctx.is_main:
        with log_path.open("w", newline="") as fh:
            csv.writer(fh).writerow(LOG_FIELDS)
    if config.init and not resume:
        # epoch 0: the network as it starts; best.pt is never worse on validation than what training began from
        pred, true = predict_cache(model, cache, val_idx)
        metrics = landmark_metrics(pred, true, cache.scheme)
        best_nme, best_epoch = metrics["nme"], 0
        start_per_face = metrics["per_image_nme"]
        if ctx.is_main:
            save_weights(model, run_dir / "best.pt", metrics=_card_metrics(metrics, 0))
            val_loss = landmark_loss(torch.from_numpy(pred), torch.from_numpy(true), config.loss).item()
            with log_path.open("a", newline="") as fh:
                csv.writer(fh).writerow([0, "0", "nan", f"{val_loss:.5f}", f"{best_nme:.6f}",
                                         f"{metrics['mae_px']:.5f}", "0"])
        if progress:
            print(f"epoch 0 (the --init network as it starts): val NME {100 * best_nme:.3f}%", flush=True)
    model.to(ctx.device)
    _move_optimizer_state(optimizer, ctx.device)
    net = model
    if ctx.enabled:
        distributed.use_global_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    mine = distributed.local_slice(config.batch_size, ctx)

    epochs_run = 0
    while epoch < config.epochs and epoch - best_epoch <= config.patience:
        start = time.perf_counter()
        g = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        order = epoch_order(train_idx, config.batch_size, g)
        net.train()
        frozen = epoch < config.freeze_epochs
        for p in model.backbone.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            model.backbone.eval()  # its batch-norm statistics stay those of the trained network
        losses = []
        bar = tqdm(range(steps_per_epoch), disable=not progress, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="batch", leave=False)
        # the whole global batch is augmented (same draws in every process), then each takes its slice
        batches = augmented_batches(cache, order, steps_per_epoch, config.batch_size, out_size, augment_cfg, g)
        for b in bar:
            step = epoch * steps_per_epoch + b
            lr = learning_rate(step, total_steps, warmup, config.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, target = next(batches)
            x, target = x[mine].to(ctx.device), target[mine].to(ctx.device)
            pred = model.to_pixels(net(x))
            loss = landmark_loss(pred, target, config.loss, weights)
            if not torch.isfinite(loss):
                raise TrainingError(f"loss is {loss.item()} at epoch {epoch + 1}, batch {b + 1}: "
                                    "lower --lr or check the labels of that batch")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if b % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{lr:.2e}")
        bar.close()
        batches.close()
        train_loss = distributed.mean_over_processes(float(np.mean(losses)), ctx)

        pred, true = predict_cache(model, cache, val_idx)  # every process: same weights, same decision
        metrics = landmark_metrics(pred, true, cache.scheme)
        val_loss = landmark_loss(torch.from_numpy(pred), torch.from_numpy(true), config.loss).item()
        epoch += 1
        improved = metrics["nme"] < best_nme
        if improved and best_epoch == 0 and start_per_face is not None:  # the start is kept unless clearly beaten
            improved = clearly_better(metrics["per_image_nme"], start_per_face)
        if improved:
            best_nme, best_epoch = metrics["nme"], epoch
        if ctx.enabled:
            _check_in_step(model, ctx, run_dir, epoch)
        if ctx.is_main:
            if improved:
                save_weights(model, run_dir / "best.pt", metrics=_card_metrics(metrics, epoch))
            row = [epoch, f"{lr:.6g}", f"{train_loss:.5f}", f"{val_loss:.5f}", f"{metrics['nme']:.6f}",
                   f"{metrics['mae_px']:.5f}", f"{time.perf_counter() - start:.1f}"]
            with log_path.open("a", newline="") as fh:
                csv.writer(fh).writerow(row)
            atomic_save({"train_config": asdict(config), "model": _cpu_state(model),
                         "optimizer": optimizer.state_dict(), "epoch": epoch, "best_nme": best_nme,
                         "best_epoch": best_epoch, "start_per_face": start_per_face}, last_path)
            _write_curves(log_path, run_dir / "curves.png")
        distributed.barrier(ctx)
        if progress:
            print(f"epoch {epoch}/{config.epochs}: train loss {train_loss:.4f}, val NME "
                  f"{100 * metrics['nme']:.3f}% (best {100 * best_nme:.3f}% @ {best_epoch}), "
                  f"MAE {metrics['mae_px']:.3f} px, {time.perf_counter() - start:.0f} s", flush=True)
        epochs_run += 1
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            break
    return {"best_nme": best_nme, "best_epoch": best_epoch, "epochs": epoch}


def _check_in_step(model, ctx: distributed.DistributedContext, run_dir: Path, epoch: int) -> None:
    """All processes must hold identical weights after every epoch; rank 0 records the digests (ranks.json)."""
    digests = distributed.gather_strings(distributed.parameter_digest(model), ctx)
    if ctx.is_main:
        (run_dir / "ranks.json").write_text(json.dumps({"epoch": epoch, "world_size": ctx.world_size,
                                                        "digests": digests}))
    if len(set(digests)) != 1:
        raise TrainingError(f"the {ctx.world_size} processes hold different weights after epoch {epoch}")


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _move_optimizer_state(optimizer, device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if torch.is_tensor(v) and k != "step":
                state[k] = v.to(device)


def init_from(model: torch.nn.Module, weights: str | Path, cache: FaceCache | None = None) -> int:
    """Copy every parameter/buffer of a trained network whose name and shape fit `model` (transfer learning:
    the backbone, and the head too when the point count matches); returns how many tensors were copied.
    A joint model (`facemark.train.joint`) started from one of its layouts also gets its heatmap channels
    from that model (`init_joint_head`, placed by the mean shape of `cache`'s labels).
    Raises TrainingError when nothing fits (a different architecture)."""
    from facemark.train.joint import init_joint_head, is_joint
    from facemark.train.weights import load_weights

    trained = load_weights(weights)
    source = trained.state_dict()
    target = model.state_dict()
    fitting = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    backbone = [k for k in target if k.startswith("backbone.")]
    if not backbone or not all(k in fitting for k in backbone):
        raise TrainingError(f"{weights}: its backbone does not fit this model; train with its "
                            f"alpha/rho/shallow settings ({trained.config})")
    model.load_state_dict(fitting, strict=False)
    if trained.scheme.name == model.scheme.name:
        model.config.face_framing = trained.config.face_framing  # the same layout, framed as before
    if is_joint(model.scheme) and trained.scheme.name != model.scheme.name and cache is not None:
        with np.errstate(invalid="ignore"):
            mean_shape = np.nanmean(cache.points[cache.indices("train")[:5000]], axis=0)
        init_joint_head(model, trained, mean_shape)
        return len(fitting) + 2  # and the heatmap convolution's weight and bias, seeded per point
    if (trained.scheme.name != model.scheme.name and cache is not None and not is_joint(model.scheme)
            and trained.config.head == model.config.head):
        from facemark.train.transfer import init_new_layout_head

        # a layout of your own: each new point's output starts as the mix of trained points that lies there
        placed = init_new_layout_head(model, trained, cache, predict_cache)
        model.transfer = {k: v for k, v in placed.items() if k != "weights"}
        return len(fitting) + 2
    return len(fitting)


def _card_metrics(metrics: dict, epoch: int) -> dict:
    return {k: v for k, v in metrics.items() if k != "per_image_nme"} | {"epoch": epoch}


def _truncate_log(log_path: Path, epoch: int) -> None:
    """Drop log rows of epochs after the checkpoint (a kill between log write and checkpoint write)."""
    if not log_path.exists():
        with log_path.open("w", newline="") as fh:
            csv.writer(fh).writerow(LOG_FIELDS)
        return
    rows = list(csv.reader(log_path.open()))
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= epoch]
    with log_path.open("w", newline="") as fh:
        csv.writer(fh).writerows(kept)
