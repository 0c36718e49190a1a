"""Partial labels (face88 records with only the 34 human anchor points) and transfer learning between layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facemark.labels.annotations import LabelRecord
from facemark.labels.cache import build_cache, context_transform, open_cache
from facemark.evaluation.metrics import landmark_metrics
from facemark.train.model import create_model
from facemark.pipeline.crops import DEFAULT_MARGIN, box_from_points
from facemark.layouts import FACE88, FACE88_ANCHORS, IBUG68
from facemark.train.training import TrainConfig, TrainingError, init_from, landmark_loss, train
from facemark.train.weights import load_weights, save_weights

TINY = {"arch": "mobilenet", "alpha": 0.25, "rho": 0.4, "shallow": True, "head_channels": 16}


def test_partial_records_are_cached_framed_on_their_box(tmp_path, astronaut_labels):
    rgb, points88 = astronaut_labels
    Image.fromarray(rgb).save(tmp_path / "1_a.png")
    partial = points88.copy()
    partial[np.setdiff1d(np.arange(88), FACE88_ANCHORS)] = np.nan
    box = box_from_points(points88)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join([
        LabelRecord(image="1_a.png", points=partial, box=box).to_json(),
        LabelRecord(image="1_a.png", points=partial).to_json(),  # partial and no box: cannot be framed, left out
        LabelRecord(image="1_a.png", points=points88).to_json(),
    ]) + "\n")
    meta = build_cache(labels, tmp_path, tmp_path / "cache", size=64, progress=False)
    assert meta["count"] == 2
    cache = open_cache(tmp_path / "cache")
    expected = context_transform(box, 64, DEFAULT_MARGIN).to_crop(points88)
    # same framing for the partial face (its box) and the complete one (its points' box)
    np.testing.assert_allclose(cache.points[1], expected, atol=1e-3)
    np.testing.assert_allclose(cache.points[0][FACE88_ANCHORS], expected[FACE88_ANCHORS], atol=1e-3)
    assert np.isnan(cache.points[0]).all(axis=1).sum() == 54
    np.testing.assert_array_equal(cache.crops[0], cache.crops[1])


@pytest.mark.parametrize("kind", ["wing", "l1", "mse", "smooth_l1"])
def test_loss_ignores_missing_targets(kind):
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 88, 2, generator=g) * 5
    true = torch.randn(3, 88, 2, generator=g) * 5
    masked = true.clone()
    missing = torch.ones(88, dtype=torch.bool)
    missing[torch.from_numpy(FACE88_ANCHORS)] = False
    masked[1, missing] = float("nan")
    loss = landmark_loss(pred, masked, kind)
    keep = ~torch.isnan(masked)
    # the same per-coordinate loss, averaged over the known coordinates only
    per_all = torch.stack([landmark_loss(pred[i:i + 1, j:j + 1, c:c + 1], true[i:i + 1, j:j + 1, c:c + 1], kind)
                           for i, j, c in keep.nonzero().tolist()])
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(per_all.mean().item(), rel=1e-5)
    # complete targets: the plain mean, as before partial labels existed
    full = landmark_loss(pred, true, kind)
    assert full.item() == pytest.approx(landmark_loss(pred.reshape(1, -1, 2), true.reshape(1, -1, 2), kind).item())


def test_metrics_leave_missing_points_out():
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 100, size=(4, 88, 2))
    pred = true + rng.normal(0, 2, size=true.shape)
    partial = true.copy()
    partial[0, 60:] = np.nan  # keeps the normaliser points 21 and 33
    m = landmark_metrics(pred, partial, FACE88)
    expected_first = np.linalg.norm(pred[0, :60] - true[0, :60], axis=1).mean() / FACE88.inter_ocular_distance(true[0])
    assert m["per_image_nme"][0] == pytest.approx(expected_first)
    assert np.isfinite(m["nme"]) and np.isfinite(m["mae_px"])
    assert all(np.isfinite(v) for v in m["region_nme"].values())


def test_init_from_copies_the_backbone_into_another_layout(tmp_path):
    torch.manual_seed(0)
    source = create_model(scheme=FACE88, **TINY)
    save_weights(source, tmp_path / "face88.pt", precision="fp32")
    target = create_model(scheme=IBUG68, **TINY)
    copied = init_from(target, tmp_path / "face88.pt")
    assert copied > 0
    src, dst = load_weights(tmp_path / "face88.pt").state_dict(), target.state_dict()
    backbone = [k for k in dst if k.startswith("backbone.")]
    assert backbone and all(torch.equal(src[k], dst[k]) for k in backbone)
    last = [k for k in dst if k.startswith("head.") and dst[k].shape != src[k].shape]
    assert last, "the 68-point output layer cannot come from the 88-point one"
    other = create_model(scheme=IBUG68, **(TINY | {"alpha": 0.5}))
    with pytest.raises(TrainingError, match="backbone does not fit"):
        init_from(other, tmp_path / "face88.pt")


def test_training_from_a_trained_network_starts_better(tiny_cache, tmp_path):
    """Transfer: a second run initialised from the first starts (epoch 1) with a lower validation NME."""
    config = TrainConfig(epochs=4, batch_size=8, lr=3e-3, warmup_epochs=0.5, model=TINY)
    train(tiny_cache, tmp_path / "first", config, progress=False)
    scratch = train(tiny_cache, tmp_path / "scratch", TrainConfig(**{**config.__dict__, "epochs": 1}),
                    progress=False)
    warm = train(tiny_cache, tmp_path / "warm",
                 TrainConfig(**{**config.__dict__, "epochs": 1, "init": str(tmp_path / "first" / "best.pt")}),
                 progress=False)
    assert warm["best_nme"] < scratch["best_nme"]
