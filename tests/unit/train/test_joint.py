"""Joint layouts (issue 20): one network with a face88 head and an ibug68 head, trained on labels that give
either, and split into two ordinary models for shipping."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from facemark.labels.cache import context_transform, open_cache
from facemark.labels.ensemble import EnsembleParams, ensemble_ibug68, EnsembleError
from facemark.pipeline.crops import DEFAULT_MARGIN, box_from_points, crop_image
from facemark.layouts import FACE88, FACE88_ANCHORS, IBUG68, IBUG68_ANCHORS, get_scheme, joint_scheme, split_joint
from facemark.train.joint import init_joint_head, split_joint_model
from facemark.train.model import create_model
from facemark.train.training import TrainConfig, init_from, train
from facemark.train.weights import load_weights, save_weights

TINY = {"arch": "mobilenet", "alpha": 0.25, "rho": 0.4, "shallow": True, "head_channels": 16}
JOINT = joint_scheme(FACE88, IBUG68)


def test_joint_scheme_keeps_each_layout_and_its_mirror_pairs():
    assert JOINT.name == "face88+ibug68" and JOINT.num_points == 156
    assert get_scheme("face88+ibug68") == JOINT
    parts = split_joint(JOINT)
    assert [(p.name, w) for p, w in parts] == [("face88", slice(0, 88)), ("ibug68", slice(88, 156))]
    # flipping the joint shape flips each layout on its own
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (156, 2))
    flipped = JOINT.flip_points(pts, 120)
    np.testing.assert_allclose(flipped[:88], FACE88.flip_points(pts[:88], 120))
    np.testing.assert_allclose(flipped[88:], IBUG68.flip_points(pts[88:], 120))
    assert JOINT.normaliser == FACE88.normaliser
    with pytest.raises(ValueError, match="not a joint scheme"):
        split_joint(FACE88)
    with pytest.raises(ValueError, match="unknown scheme"):
        get_scheme("face88+nope")


def test_split_models_give_exactly_the_joint_outputs():
    torch.manual_seed(0)
    joint = create_model(scheme=JOINT, **TINY).eval()
    with torch.no_grad():
        joint.head.heatmaps.weight.normal_(0, 0.5)  # not the near-flat start: distinct heatmaps per point
    x = torch.randn(2, 3, joint.config.input_size, joint.config.input_size)
    with torch.no_grad():
        both = joint(x)
        parts = split_joint_model(joint)
        assert set(parts) == {"face88", "ibug68"}
        torch.testing.assert_close(parts["face88"](x), both[:, :88])
        torch.testing.assert_close(parts["ibug68"](x), both[:, 88:])
    assert parts["ibug68"].scheme == IBUG68 and parts["ibug68"].config.num_points == 68


def test_init_joint_head_copies_the_layout_and_starts_others_at_the_nearest_point():
    torch.manual_seed(1)
    source = create_model(scheme=FACE88, **TINY)
    with torch.no_grad():
        source.head.heatmaps.weight.normal_()
        source.head.heatmaps.bias.normal_()
    joint = create_model(scheme=JOINT, **TINY)
    mean = np.zeros((156, 2))
    mean[:88] = np.random.default_rng(0).uniform(0, 100, (88, 2))
    mean[88:] = mean[[40] * 68] + 0.1  # every iBUG point next to face88 point 40
    mean[88 + IBUG68_ANCHORS] = mean[FACE88_ANCHORS]  # ... but the shared ones on their partners
    init_joint_head(joint, source, mean)
    w, s = joint.head.heatmaps.weight, source.head.heatmaps.weight
    torch.testing.assert_close(w[:88], s)
    for i in range(68):
        expected = FACE88_ANCHORS[list(IBUG68_ANCHORS).index(i)] if i in IBUG68_ANCHORS else 40
        torch.testing.assert_close(w[88 + i], s[expected])
    with pytest.raises(ValueError, match="not a joint scheme"):
        init_joint_head(create_model(scheme=FACE88, **TINY), source, mean[:88])
    with pytest.raises(ValueError, match="not a part"):
        init_joint_head(create_model(scheme=joint_scheme(FACE88, FACE88), **TINY),
                        create_model(scheme=IBUG68, **TINY), np.zeros((176, 2)))


def test_ensemble_ibug68_is_dlib_with_identity_weights_and_refuses_without_dlib():
    rng = np.random.default_rng(0)
    from facemark.layouts import IBUG68_TO_FACE88  # noqa: F401 (the 34 shared points)
    dlib68 = rng.uniform(20, 120, (68, 2))
    dlib68[36], dlib68[45] = (40, 60), (100, 60)
    mp88 = rng.uniform(20, 120, (88, 2))
    mp88[FACE88_ANCHORS] = dlib68[IBUG68_ANCHORS] + rng.normal(0, 1, (34, 2))
    np.testing.assert_allclose(ensemble_ibug68(EnsembleParams.identity(1.0), dlib68, mp88), dlib68, atol=1e-9)
    blended = ensemble_ibug68(EnsembleParams.identity(0.5), dlib68, mp88)
    np.testing.assert_allclose(blended[IBUG68_ANCHORS], (dlib68[IBUG68_ANCHORS] + mp88[FACE88_ANCHORS]) / 2)
    assert not np.allclose(blended, dlib68)  # the other points follow the shared ones
    with pytest.raises(EnsembleError):
        ensemble_ibug68(EnsembleParams.identity(1.0), None, mp88)
    gated = EnsembleParams.identity(1.0)
    gated.max_disagreement = 0.0
    far = mp88.copy()
    far[FACE88_ANCHORS] += 30
    with pytest.raises(EnsembleError, match="disagrees"):
        ensemble_ibug68(gated, dlib68, far)


def _joint_cache(tmp_path, astronaut_labels):
    """A 6-face joint cache: 4 'teacher' faces with both layouts, 2 'human' faces with ibug68 only + the 34."""
    rgb, points88 = astronaut_labels
    from facemark.layouts import ibug68_as_face88
    # an ibug68 shape for the sample: the shared points from face88, the others from nearby face88 points
    points68 = np.zeros((68, 2))
    points68[IBUG68_ANCHORS] = points88[FACE88_ANCHORS]
    others = np.setdiff1d(np.arange(68), IBUG68_ANCHORS)
    points68[others] = points88[np.linspace(0, 87, len(others)).astype(int)]
    size = 48
    transform = context_transform(box_from_points(points88), size, DEFAULT_MARGIN)
    crop = crop_image(rgb, transform)
    full = np.concatenate([points88, points68])
    human = np.concatenate([ibug68_as_face88(points68), points68])
    rows = [full] * 4 + [human] * 2
    out = tmp_path / "joint"
    out.mkdir()
    np.save(out / "crops.npy", np.stack([crop] * len(rows)))
    np.save(out / "points.npy", np.stack([transform.to_crop(p) for p in rows]).astype(np.float32))
    np.save(out / "val.npy", np.array([False] * 5 + [True]))
    (out / "meta.json").write_text(json.dumps({"scheme": JOINT.to_dict(), "size": size, "margin": DEFAULT_MARGIN,
                                               "images": [f"{i}_a.png" for i in range(len(rows))]}))
    return out


def test_joint_training_runs_on_partial_labels_and_starts_from_a_single_layout(tmp_path, astronaut_labels):
    cache_dir = _joint_cache(tmp_path, astronaut_labels)
    torch.manual_seed(0)
    face88 = create_model(scheme=FACE88, **TINY)
    save_weights(face88, tmp_path / "face88.pt", precision="fp32")
    joint = create_model(scheme=JOINT, **TINY)
    copied = init_from(joint, tmp_path / "face88.pt", open_cache(cache_dir))
    assert copied > 0
    torch.testing.assert_close(joint.head.heatmaps.weight[:88], face88.head.heatmaps.weight)
    config = TrainConfig(epochs=2, batch_size=2, lr=1e-3, model=dict(TINY), init=str(tmp_path / "face88.pt"))
    result = train(cache_dir, tmp_path / "run", config, progress=False)
    assert np.isfinite(result["best_nme"]) and result["epochs"] == 2
    trained = load_weights(tmp_path / "run" / "best.pt")
    assert trained.scheme == JOINT
    parts = split_joint_model(trained)
    assert parts["face88"].config.num_points == 88 and parts["ibug68"].config.num_points == 68
