"""ONNX export: the exported shipped model agrees with torch on real face crops, and carries its config."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from facemark.landmarker import Landmarker  # noqa: E402
from facemark.detection import create_detector  # noqa: E402
from facemark.network import (BUILTIN_DIR, BUILTIN_MODELS, LandmarkNetwork, OnnxModelError, WeightsError,  # noqa: E402
                              load_network)
from facemark.train.export import export_onnx, max_difference_px  # noqa: E402
from facemark.train.model import TorchLandmarkNetwork  # noqa: E402
from facemark.images import load_image  # noqa: E402
from facemark.train.model import create_model  # noqa: E402
from facemark.pipeline.crops import crop_image, normalise_crop, square_crop_transform  # noqa: E402
from facemark.layouts import IBUG68  # noqa: E402
from facemark.train.weights import load_weights  # noqa: E402

ASTRONAUT = Path(__file__).resolve().parents[3] / "examples" / "astronaut.png"
TOLERANCE_PX = 1e-4  # in pixels of the network's input crop


@pytest.fixture(scope="module")
def network():
    return load_weights()


@pytest.fixture(scope="module")
def onnx_path(network, tmp_path_factory):
    return export_onnx(network, tmp_path_factory.mktemp("export") / "face88.onnx")


@pytest.fixture(scope="module")
def onnx_network(onnx_path):
    return LandmarkNetwork(onnx_path, threads=1)


@pytest.fixture(scope="module")
def astronaut():
    return load_image(ASTRONAUT)


@pytest.fixture(scope="module")
def crops(network, astronaut) -> torch.Tensor:
    """The astronaut's face framed as in use (MTCNN box -> landmark box), then shifted, shrunk and grown."""
    with create_detector("mtcnn") as detector:
        detections = detector.detect(astronaut)
        assert detections, "MTCNN found no face in the sample image"
        x0, y0, x1, y1 = detector.landmark_box(detections[0].box)
    w, h = x1 - x0, y1 - y0
    size, margin = network.config.input_size, network.config.margin
    out = []
    for dx, dy, scale in [(0, 0, 1), (0.1, -0.05, 1), (-0.08, 0.12, 0.9), (0, 0, 1.3), (0.05, 0.05, 0.75),
                          (-0.6, 0, 1)]:  # the last one leaves the image: black padding on the left
        cx, cy = (x0 + x1) / 2 + dx * w, (y0 + y1) / 2 + dy * h
        box = (cx - scale * w / 2, cy - scale * h / 2, cx + scale * w / 2, cy + scale * h / 2)
        out.append(crop_image(astronaut, square_crop_transform(box, size, margin)))
    return torch.from_numpy(normalise_crop(np.stack(out)))


def test_onnx_matches_torch_on_real_crops_batched(network, onnx_network, crops):
    assert max_difference_px(network, onnx_network, crops) < TOLERANCE_PX
    # and the points are real ones, not a degenerate constant: they spread over the crop
    points = onnx_network.to_pixels(onnx_network(crops.numpy()))
    assert points.shape == (len(crops), network.scheme.num_points, 2) and points.dtype == np.float32
    assert (points.max(axis=1) - points.min(axis=1)).min() > network.config.input_size / 4


def test_onnx_matches_torch_one_crop_at_a_time(network, onnx_network, crops):
    batched = onnx_network(crops.numpy())
    for k in range(len(crops)):
        one = crops[k:k + 1]
        assert max_difference_px(network, onnx_network, one) < TOLERANCE_PX
        single = onnx_network.to_pixels(onnx_network(one.numpy()))
        assert np.abs(single[0] - onnx_network.to_pixels(batched)[k]).max() < TOLERANCE_PX


def test_numpy_in_numpy_out_and_shape_errors(onnx_network, crops):
    out = onnx_network(crops.numpy().astype(np.float64))  # any float array; run as float32
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert np.array_equal(out, onnx_network(crops.numpy()))
    with pytest.raises(ValueError, match="takes"):
        onnx_network(crops.numpy()[:, :, :-1])


def test_metadata_round_trip(network, onnx_network, onnx_path):
    import onnx

    assert asdict(onnx_network.config) == asdict(network.config)
    assert onnx_network.scheme == network.scheme
    assert onnx_network.config.margin == network.config.margin
    assert onnx_network.config.input_size == network.config.input_size
    assert onnx_network.metrics == network.metrics
    # readable without facemark, for other runtimes
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert props["scheme"] == network.scheme.name
    assert int(props["input_size"]) == network.config.input_size
    assert float(props["margin"]) == network.config.margin


def test_another_config_and_scheme_round_trip(tmp_path):
    """Nothing is tied to the shipped model: a gap head, another scheme, size and margin export too."""
    torch.manual_seed(0)
    net = create_model("mobilenet", alpha=0.25, rho=0.6, shallow=True, head="gap", scheme=IBUG68,
                       margin=1.4).eval()
    with torch.no_grad():  # non-trivial outputs: the default init puts every point at the centre
        net.head[-1].weight.normal_(std=0.05)
    loaded = LandmarkNetwork(export_onnx(net, tmp_path / "small.onnx"), threads=1)
    assert asdict(loaded.config) == asdict(net.config)
    assert loaded.scheme == IBUG68 and loaded.config.input_size == 96
    x = torch.rand(3, 3, 96, 96) * 2 - 1
    assert loaded(x.numpy()).shape == (3, 68, 2)
    assert max_difference_px(net, loaded, x) < TOLERANCE_PX


def test_stands_in_for_the_torch_network_in_landmarker(onnx_network, astronaut):
    # One pass (refine=False): with the refining pass, a 1e-5 px change in the first pass's points moves the
    # second crop by as much, which can flip a few uint8 pixels of it by one level; the network's answer to
    # that (not the back end) then dominates the difference.
    landmarker = Landmarker(refine=False, threads=1, backend="torch")
    torch_faces = landmarker.detect(astronaut)
    landmarker.network = onnx_network
    onnx_faces = landmarker.detect(astronaut)
    assert len(torch_faces) == len(onnx_faces) >= 1
    for a, b in zip(torch_faces, onnx_faces):
        side = max(a.box[2] - a.box[0], a.box[3] - a.box[1])
        crop_scale = side / onnx_network.config.input_size  # image pixels per crop pixel, roughly
        assert np.abs(a.points - b.points).max() < 2 * TOLERANCE_PX * crop_scale


def test_load_network_backends(onnx_path):
    assert isinstance(load_network(onnx_path, threads=1), LandmarkNetwork)
    builtin = load_network(backend="onnx", threads=1)
    assert isinstance(builtin, LandmarkNetwork) and builtin.path == BUILTIN_DIR / "face88.onnx"
    assert isinstance(load_network(backend="auto", threads=1), LandmarkNetwork)
    assert isinstance(load_network(backend="torch"), TorchLandmarkNetwork)  # the built-in's .pt
    from_weights = load_network(BUILTIN_DIR / "face88.pt", threads=1)  # a weights file: exported in memory
    assert isinstance(from_weights, LandmarkNetwork) and from_weights.path is None
    assert from_weights.metrics == load_weights().metrics
    with pytest.raises(ValueError, match="backend"):
        load_network(onnx_path, backend="torch")
    with pytest.raises(ValueError, match="unknown backend"):
        load_network(backend="tensorrt")


def test_weights_file_without_the_train_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "facemark.train.export", None)  # as if torch were not installed
    with pytest.raises(WeightsError, match=r"torch weights file: running it needs pip install 'facemark\[train\]'"):
        load_network(BUILTIN_DIR / "face88.pt")
    assert isinstance(load_network("face88", threads=1), LandmarkNetwork)  # built-ins need no torch


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_builtin_onnx_files_are_the_shipped_weights(name, crops):
    """The shipped .onnx is the shipped .pt: same config and metrics, the same points to 1e-3 crop px, under
    1 MB (weights stored as int8 with a scale per channel, folded back to float32 when loaded)."""
    import onnx

    path = BUILTIN_DIR / f"{name}.onnx"
    assert path.stat().st_size <= 1_000_000
    onnx_network, network = LandmarkNetwork(path, threads=1), load_weights(name)
    assert asdict(onnx_network.config) == asdict(network.config) and onnx_network.metrics == network.metrics
    assert max_difference_px(network, onnx_network, crops) < 1e-3
    kinds = {init.data_type for init in onnx.load(str(path)).graph.initializer}
    assert onnx.TensorProto.INT8 in kinds


def test_compact_export_matches_float32_export(network, onnx_network, crops, tmp_path):
    full = LandmarkNetwork(export_onnx(network, tmp_path / "fp32.onnx", compact=False), threads=1)
    assert (tmp_path / "fp32.onnx").stat().st_size > 3 * onnx_network.path.stat().st_size
    x = crops.numpy()
    assert np.abs(full.to_pixels(full(x)) - onnx_network.to_pixels(onnx_network(x))).max() < TOLERANCE_PX


def test_export_replaces_atomically(network, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    export_onnx(network, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary file left behind
    assert LandmarkNetwork(path, threads=1).scheme == network.scheme


def _one_line_error(path) -> str:
    with pytest.raises(OnnxModelError) as info:
        LandmarkNetwork(path, threads=1)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_and_corrupt_files_raise_clear_errors(onnx_path, tmp_path):
    assert "no ONNX model file" in _one_line_error(tmp_path / "absent.onnx")
    truncated = tmp_path / "truncated.onnx"
    data = onnx_path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert "not a readable ONNX model" in _one_line_error(truncated)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file at all" * 10)
    assert "not a readable ONNX model" in _one_line_error(garbage)
    assert issubclass(OnnxModelError, ValueError)


def test_onnx_without_facemark_metadata_is_refused(tmp_path):
    import warnings

    plain = tmp_path / "plain.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Conv2d(3, 2, 3), (torch.zeros(1, 3, 8, 8),), str(plain), dynamo=False)
    assert "not a facemark landmark network" in _one_line_error(plain)
