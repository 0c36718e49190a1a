"""Evaluate a landmark network against reference points: metrics, a CED plot, the worst cases.

Input is a training cache (a split of it, default the validation identities) or a label file with its
images folder. Faces are framed the way the network was trained (square around the reference points' box,
the model's margin), so the numbers measure the landmark network alone, not a face detector.
All pixel errors are in pixels of the S×S crop (S = the cache's size, 160 by default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facemark.labels.annotations import as_layout, read_labels
from facemark.layouts import register_layout
from facemark.labels.cache import open_cache
from facemark.images import ImageError, load_image
from facemark.evaluation.metrics import ced, landmark_metrics
from facemark.train.model import predict_crops
from facemark.pipeline.crops import DEFAULT_SIZE, box_from_points, crop_image, square_crop_transform
from facemark.layouts import Scheme
from facemark.train.training import predict_cache


@dataclass
class Evaluation:
    metrics: dict
    pred: np.ndarray  # (N, P, 2) crop pixels
    true: np.ndarray
    crops: np.ndarray | None  # (N, S, S, 3) uint8 for the worst-case sheet (loaded lazily for caches)
    names: list[str]
    scheme: Scheme
    skipped: list[str]

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.metrics.items() if k != "per_image_nme"}, indent=2)


def evaluate_cache(model, cache_dir: str | Path, split: str = "val", progress: bool = True) -> Evaluation:
    cache = open_cache(cache_dir)
    _check_scheme(model, cache.scheme)
    indices = cache.indices(split)
    if len(indices) == 0:
        raise ValueError(f"{cache_dir}: the {split} split is empty")
    pred, true = predict_cache(model, cache, indices, progress=progress)
    metrics = landmark_metrics(pred, true, cache.scheme)
    crops = _LazyCrops(cache, indices)
    return Evaluation(metrics, pred, true, crops, [cache.names[i] for i in indices], cache.scheme, [])


class _LazyCrops:
    """Network views of a cache, read only for the few faces a contact sheet shows."""

    def __init__(self, cache, indices):
        self.cache, self.indices = cache, indices

    def __getitem__(self, k):
        return self.cache.network_view(self.indices[k])[0]


@torch.no_grad()
def evaluate_labels(model, labels: str | Path, images_dir: str | Path, size: int = DEFAULT_SIZE,
                    batch_size: int = 64, progress: bool = True) -> Evaluation:
    register_layout(model.scheme)  # a layout of your own: its label files name it
    records = [r for r in read_labels(labels) if r.points is not None and np.isfinite(r.points).all()]
    if not records:
        raise ValueError(f"{labels}: no labelled faces to evaluate on")
    scheme = model.scheme
    skipped, crops, trues, names = [], [], [], []
    for record in tqdm(records, desc="crop", unit="img", disable=not progress):
        if record.scheme != scheme.name:
            if scheme.source(record.scheme) is None:
                raise ValueError(f"{labels}: record {record.image} is {record.scheme}, the model predicts "
                                 f"{scheme.name}")
            record = as_layout(record, scheme)  # e.g. iBUG-68 human labels for a layout made from them
            if not np.isfinite(record.points).all():
                raise ValueError(f"{labels}: {scheme.name} gives only some of its points from {record.scheme}")
        try:
            image = load_image(Path(images_dir) / record.image)
        except ImageError as e:
            skipped.append(str(e))
            continue
        t = square_crop_transform(box_from_points(record.points), size, model.config.margin)
        crops.append(crop_image(image, t))
        trues.append(t.to_crop(record.points))
        names.append(record.image)
    if not crops:
        raise ValueError(f"{labels}: none of the images could be read (first: {skipped[0]})")
    crops = np.stack(crops)
    preds = np.concatenate([predict_crops(model, crops[i:i + batch_size])
                            for i in range(0, len(crops), batch_size)])
    true = np.stack(trues)
    return Evaluation(landmark_metrics(preds, true, scheme), preds, true, crops, names, scheme, skipped)


def format_metrics(metrics: dict, scheme: Scheme) -> str:
    lines = [f"faces            {metrics['count']}",
             f"MSE              {metrics['mse_px']:.3f} px²  (crop pixels, per coordinate)",
             f"MAE              {metrics['mae_px']:.3f} px",
             f"NME              {100 * metrics['nme']:.3f} %  (outer eye corners)"]
    for key in metrics:
        if key.startswith("failure_rate@"):
            lines.append(f"failure rate@{key.split('@')[1]} {100 * metrics[key]:.2f} %")
        if key.startswith("auc@"):
            lines.append(f"AUC@{key.split('@')[1]}         {metrics[key]:.4f}")
    lines.append("NME per region:")
    lines += [f"  {name:<16} {100 * v:.3f} %" for name, v in metrics["region_nme"].items()]
    return "\n".join(lines)


def write_ced_plot(curves: dict[str, np.ndarray], path: str | Path, threshold: float = 0.10,
                   title: str = "Cumulative error distribution") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, nme in curves.items():
        x, y = ced(nme, threshold)
        ax.plot(100 * x, 100 * y, label=f"{label} (NME {100 * np.mean(nme):.2f}%)")
    ax.set_xlabel("NME (%, outer-eye-corner normalised)")
    ax.set_ylabel("images (%)")
    ax.set_xlim(0, 100 * threshold), ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3), ax.legend(loc="lower right"), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_worst_cases(evaluation: Evaluation, path: str | Path, count: int = 24) -> None:
    """Contact sheet of the worst faces: reference points (white) and predictions (colours per region)."""
    from PIL import Image, ImageDraw

    from facemark.drawing import contact_sheet, draw_points

    nme = evaluation.metrics["per_image_nme"]
    tiles, captions = [], []
    for k in np.argsort(-nme)[:count]:
        tile = Image.fromarray(np.asarray(evaluation.crops[k]))
        draw = ImageDraw.Draw(tile)
        for x, y in evaluation.true[k]:
            draw.ellipse([x - 1.3, y - 1.3, x + 1.3, y + 1.3], fill=(255, 255, 255))
        tiles.append(draw_points(tile, evaluation.pred[k], evaluation.scheme, radius=1.0))
        captions.append(f"{Path(evaluation.names[k]).name[:24]}\nNME {100 * nme[k]:.1f}%")
    contact_sheet(tiles, captions).save(path)


def _check_scheme(model, scheme: Scheme) -> None:
    if model.scheme.name != scheme.name or model.scheme.num_points != scheme.num_points:
        raise ValueError(f"the model predicts {model.scheme.name} ({model.scheme.num_points} points), "
                         f"the data is {scheme.name} ({scheme.num_points} points)")
