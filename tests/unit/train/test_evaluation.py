"""`facemark eval` on a tiny real cache and label file: the numbers match the metrics computed by hand."""

import json

import numpy as np
import pytest
import torch

from facemark import cli
from facemark.labels.cache import open_cache
from facemark.train.evaluation import evaluate_cache, evaluate_labels
from facemark.train.model import create_model
from facemark.train.weights import WeightsError, load_weights, save_weights

TINY = dict(alpha=0.25, rho=0.4, shallow=True, head="flatten", head_channels=16)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(**TINY).eval()
    with torch.no_grad():  # a model that predicts a fixed, face-like spread instead of a single dot
        model.head[-1].bias.copy_(torch.linspace(-0.6, 0.6, 176))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_weights(model, path, precision="fp32")
    return path


def test_eval_cache_matches_metrics_by_hand(tiny_cache, tiny_model, tmp_path, capsys):
    code = cli.main(["eval", "--model", str(tiny_model), "--data", str(tiny_cache), "--out", str(tmp_path),
                     "--json", "--quiet"])
    assert code == 0
    reported = json.loads(capsys.readouterr().out.split("\nCED")[0])
    # by hand: predict the centre crops of the validation faces, compare in 64-px crop pixels
    cache, model = open_cache(tiny_cache), load_weights(tiny_model)
    idx = cache.indices("val")
    crops, true = cache.network_view(idx)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1
    x = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        pred = model.to_pixels(model(x)).numpy()
    err = np.linalg.norm(pred - true, axis=-1).mean(1) / np.linalg.norm(true[:, 21] - true[:, 33], axis=1)
    assert reported["count"] == len(idx)
    assert reported["nme"] == pytest.approx(err.mean(), rel=1e-4)
    assert reported["mae_px"] == pytest.approx(np.abs(pred - true).mean(), rel=1e-4)
    assert reported["failure_rate@0.1"] == pytest.approx(np.mean(err > 0.1))
    for name in ("ced.png", "worst.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0


def test_eval_on_a_label_file_agrees_with_the_cache(tiny_cache, tiny_model):
    model = load_weights(tiny_model)
    from_cache = evaluate_cache(model, tiny_cache, split="all", progress=False)
    from_labels = evaluate_labels(model, tiny_cache.parent / "labels.jsonl", tiny_cache.parent / "images",
                                  size=64, progress=False)
    assert from_labels.metrics["count"] == from_cache.metrics["count"]
    # same faces, same framing; the crops are resampled separately, so allow a little
    assert from_labels.metrics["nme"] == pytest.approx(from_cache.metrics["nme"], rel=0.05)


def test_weights_files_fail_loudly(tmp_path, tiny_model):
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable"):
        load_weights(tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="no weights file"):
        load_weights(tmp_path / "none.pt")
    blob = torch.load(tiny_model, weights_only=True)
    blob["state_dict"]["head.2.bias"] = torch.full((176,), float("nan"))
    torch.save(blob, tmp_path / "nan.pt")
    with pytest.raises(WeightsError, match="NaN"):
        load_weights(tmp_path / "nan.pt")
    with pytest.raises(WeightsError, match="predicts the face88 layout"):
        load_weights(tiny_model, expect_scheme="ibug68")
    blob = torch.load(tiny_model, weights_only=True)
    blob["config"]["alpha"] = 0.5
    torch.save(blob, tmp_path / "mismatch.pt")
    with pytest.raises(WeightsError, match="do not fit"):
        load_weights(tmp_path / "mismatch.pt")


@pytest.mark.parametrize("precision,tolerance", [("fp16", 0.05), ("int8", 0.5)])
def test_stored_precision_costs_little(tmp_path, precision, tolerance):
    torch.manual_seed(1)
    model = create_model(**TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_weights(model, tmp_path / "w.pt", precision=precision)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        a = model.to_pixels(model(x))
        b = model.to_pixels(load_weights(tmp_path / "w.pt")(x))
    assert (a - b).abs().max() < tolerance  # crop pixels
    assert (tmp_path / "w.pt").stat().st_size < 2 * sum(p.numel() for p in model.parameters()) + 200_000
