"""Training on a tiny real cache: the loss goes down, and a run killed with SIGKILL resumes to the same end."""

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from facemark.dataset import identity_of, open_cache
from facemark.training import TrainConfig, TrainingError, landmark_loss, learning_rate, train

TINY_MODEL = {"arch": "mobilenet", "alpha": 0.25, "rho": 0.4, "shallow": True, "head_channels": 16}


def test_tiny_cache_is_split_by_identity(tiny_cache):
    cache = open_cache(tiny_cache)
    train_ids = {identity_of(cache.names[i]) for i in cache.indices("train")}
    val_ids = {identity_of(cache.names[i]) for i in cache.indices("val")}
    assert train_ids and val_ids and not train_ids & val_ids


def test_short_training_lowers_the_loss(tiny_cache, tmp_path):
    torch.set_num_threads(1)
    config = TrainConfig(epochs=6, batch_size=8, lr=3e-3, warmup_epochs=0.5, model=TINY_MODEL)
    result = train(tiny_cache, tmp_path / "run", config, progress=False)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert len(rows) == 6
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < 0.7 * losses[0]
    assert float(rows[-1]["val_nme"]) < float(rows[0]["val_nme"])
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "curves.png").stat().st_size > 0
    assert result["best_nme"] == pytest.approx(min(float(r["val_nme"]) for r in rows), rel=1e-4)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(tiny_cache, tmp_path / "run", config, progress=False)


def _train_cmd(cache, out, epochs, resume=False):
    cmd = [sys.executable, "-m", "facemark", "train", "--data", str(cache), "--out", str(out),
           "--alpha", "0.25", "--rho", "0.4", "--shallow", "--head-channels", "16", "--batch-size", "4",
           "--epochs", str(epochs), "--threads", "1", "--quiet"]
    return cmd + (["--resume"] if resume else [])


def test_kill_minus_9_then_resume_matches_an_uninterrupted_run(tiny_cache, tmp_path):
    epochs = 6
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(_train_cmd(tiny_cache, tmp_path / "full", epochs), check=True, env=env,
                   capture_output=True)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tiny_cache, run, epochs), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done_before_kill = len(list(csv.DictReader((run / "log.csv").open())))
    assert done_before_kill < epochs
    subprocess.run(_train_cmd(tiny_cache, run, epochs, resume=True), check=True, env=env, capture_output=True)

    full = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    resumed = torch.load(run / "last.pt", weights_only=False)
    assert resumed["epoch"] == full["epoch"] == epochs
    for name, tensor in full["model"].items():
        assert torch.allclose(resumed["model"][name].float(), tensor.float(), atol=1e-5), name
    full_log = list(csv.DictReader((tmp_path / "full" / "log.csv").open()))
    resumed_log = list(csv.DictReader((run / "log.csv").open()))
    assert [r["val_nme"] for r in resumed_log] == [r["val_nme"] for r in full_log]


def test_resume_without_a_checkpoint_and_nan_loss_are_clear_errors(tiny_cache, tmp_path):
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny_cache, tmp_path / "none", TrainConfig(model=TINY_MODEL), resume=True)
    config = TrainConfig(epochs=1, batch_size=8, lr=1e30, model=TINY_MODEL)
    with pytest.raises(TrainingError, match=r"epoch 1, batch \d+"):
        train(tiny_cache, tmp_path / "nan", config, progress=False)


def test_losses_and_schedule():
    err = torch.tensor([0.5, 20.0])
    zero = torch.zeros(2)
    assert landmark_loss(err, zero, "l1").item() == pytest.approx(10.25)
    assert landmark_loss(err, zero, "mse").item() == pytest.approx((0.25 + 400) / 2)
    wing = landmark_loss(err, zero, "wing").item()
    c = 10 - 10 * np.log(1 + 10 / 2)
    assert wing == pytest.approx((10 * np.log(1 + 0.5 / 2) + 20 - c) / 2, rel=1e-5)
    with pytest.raises(ValueError):
        landmark_loss(err, zero, "huber9")
    assert learning_rate(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert learning_rate(10, 100, 10, 1.0) == pytest.approx(1.0)
    assert learning_rate(100, 100, 10, 1.0) == pytest.approx(0.0, abs=1e-12)
