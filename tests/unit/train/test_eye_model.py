"""The eye refiner's network and its training script: it starts from the landmark network's eye, trains on a
real cache, and its ONNX file gives the torch network's points."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from facemark.pipeline.eyes import EYE_PATCH_SIZE, EyeRefinerNetwork
from facemark.train.eye_model import EyeRefiner, EyeRefinerConfig, mean_eye

REPO = Path(__file__).resolve().parents[3]


def test_an_untrained_refiner_answers_its_prior():
    w, h = EYE_PATCH_SIZE
    x = torch.rand(3, 3, h, w) * 2 - 1
    prior = torch.from_numpy(mean_eye())[None].repeat(3, 1, 1) + torch.randn(3, 8, 2)
    with torch.no_grad():
        assert torch.equal(EyeRefiner().eval()(x, prior), prior)
        alone = EyeRefiner(EyeRefinerConfig(prior=False)).eval()(x)
    assert torch.allclose(alone, torch.from_numpy(mean_eye()).expand(3, 8, 2))


def test_training_script_writes_weights_and_an_onnx_file_that_agree(tiny_cache, tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train_eye_refiner
    finally:
        sys.path.remove(str(REPO / "scripts"))
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["train_eye_refiner.py", str(tiny_cache), str(out), "--epochs", "2",
                                      "--batch-size", "16", "--holdout", "0.3", "--threads", "1"])
    train_eye_refiner.main()
    assert (Path(tiny_cache) / "face88_eyes.npy").is_file()  # the prior, computed once
    log = (out / "log.csv").read_text().splitlines()
    assert len(log) == 3 and "lid_error_crop_px" in log[0]
    state = torch.load(out / "best.pt", weights_only=False)
    config = dict(state["config"], patch_size=tuple(state["config"]["patch_size"]))
    model = EyeRefiner(EyeRefinerConfig(**config)).eval()
    model.load_state_dict(state["model"])
    network = EyeRefinerNetwork(out / "eyes.onnx", threads=1)
    assert network.takes_prior
    w, h = EYE_PATCH_SIZE
    x = np.random.default_rng(0).uniform(-1, 1, (4, 3, h, w)).astype(np.float32)
    prior = (mean_eye() + np.random.default_rng(1).normal(0, 1, (4, 8, 2))).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x), torch.from_numpy(prior)).numpy()
    np.testing.assert_allclose(network(x, prior), expected, atol=1e-4)
