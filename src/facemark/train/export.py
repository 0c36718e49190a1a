"""Ship a torch landmark network as ONNX: the file the runtime (facemark.network, onnxruntime only) runs.

    export_onnx(load_weights("face88"), "face88.onnx")     # the network + its config in one file
    network = LandmarkNetwork("face88.onnx", threads=1)     # facemark.network: numpy in, numpy out
    points = network.to_pixels(network(x))

The graph is the network alone (facemark.network describes its input, output and metadata). Weight tensors are
stored compactly (int8 with a scale per output channel when the weights file holds int8 weights, as the
built-in ones do, else float16), behind Cast/Mul nodes that onnxruntime folds once when it loads the file: the
arithmetic stays float32 and as fast (face88: 0.96 MB against 3.6 MB, the same points to 3e-5 crop pixels).
`facemark export --fp32` keeps them float32. Exporting needs torch and the `onnx` package (the `train` extra).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facemark.network import FORMAT, INPUT_NAME, OUTPUT_NAME, VERSION, LandmarkNetwork
from facemark.layouts import Scheme
from facemark.train.model import TorchLandmarkNetwork
from facemark.train.weights import load_weights

DEFAULT_OPSET = 17
INSTALL_HINT = "pip install 'facemark[train]'"
# initializers smaller than this stay float32 (a node each would cost more than it saves)
HALF_MIN_SIZE = 64


def _require(module: str):
    """Import an optional dependency, or say in one line how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{module} is not installed; ONNX export needs it: {INSTALL_HINT}") from None


def _int8_per_channel(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(q int8, scale float32 per output channel) with values == q * scale up to float32 rounding, or None when
    the values are not on such a grid (a network trained or stored in float)."""
    if values.ndim < 2:
        return None
    flat = values.reshape(len(values), -1).astype(np.float64)
    scale = np.abs(flat).max(axis=1) / 127
    scale[scale == 0] = 1.0
    q = np.round(flat / scale[:, None])
    if np.abs(q * scale[:, None] - flat).max() > 1e-5 * np.abs(flat).max():
        return None
    return q.astype(np.int8).reshape(values.shape), scale.astype(np.float32)


def compact_initializers(model) -> None:
    """Store the model's float32 weight tensors (2-D or more, HALF_MIN_SIZE values or more) compactly, each turned
    back into float32 under its old name by nodes onnxruntime folds when it loads the file: int8 with a float32
    scale per output channel (Cast, Mul) where the values already lie on such a grid (an int8 weights file, whose
    BatchNorm folding scales whole output channels), float16 (Cast) otherwise."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, scales = [], []
    for init in list(model.graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        if values.size < HALF_MIN_SIZE or values.ndim < 2:  # biases (BatchNorm's, folded) stay exact: few values
            continue
        name, grid = init.name, _int8_per_channel(values)
        if grid is None:
            init.CopyFrom(numpy_helper.from_array(values.astype(np.float16), f"{name}__fp16"))
            nodes.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT,
                                          name=f"{name}__to_fp32"))
        else:
            q, scale = grid
            init.CopyFrom(numpy_helper.from_array(q, f"{name}__int8"))
            shape = (len(scale),) + (1,) * (values.ndim - 1)  # broadcast over each output channel
            scales.append(numpy_helper.from_array(scale.reshape(shape), f"{name}__scale"))
            # Cast and Mul, not DequantizeLinear: onnxruntime keeps DequantizeLinear in the graph (it would run on
            # every call, 2.8 ms against 1.2 ms per face), but folds these constants away when it loads the file
            nodes.append(helper.make_node("Cast", [f"{name}__int8"], [f"{name}__unscaled"], to=TensorProto.FLOAT,
                                          name=f"{name}__to_float"))
            nodes.append(helper.make_node("Mul", [f"{name}__unscaled", f"{name}__scale"], [name],
                                          name=f"{name}__scaled"))
    model.graph.initializer.extend(scales)
    nodes += list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def onnx_model_bytes(network: nn.Module, *, opset: int = DEFAULT_OPSET, compact: bool = True) -> bytes:
    """The serialized ONNX model of a torch landmark network, config and metrics in its metadata; `compact`:
    weight tensors stored as int8 or float16 (see the module docstring)."""
    onnx = _require("onnx")
    config = network.config
    size = config.input_size
    param = next(network.parameters())
    # batch 2, not 1, so nothing in the trace can specialise on a batch of one; the batch axis is dynamic anyway
    dummy = torch.zeros(2, 3, size, size, dtype=param.dtype, device=param.device)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The torch.export-based exporter (torch's default since 2.9) needs onnxscript, which the `train` extra
        # does not pull in; the TorchScript tracer handles this plain conv net exactly and folds BatchNorm.
        # Its deprecation notices are torch's business, not the user's.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(network, (dummy,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    scheme = Scheme.from_dict(config.scheme)
    props = {
        "facemark_format": FORMAT,
        "facemark_version": str(VERSION),
        "facemark_config": json.dumps(asdict(config)),  # the source of truth; the keys below are for readers
        "facemark_metrics": json.dumps(getattr(network, "metrics", {}) or {}, default=float),
        "input_size": str(size),
        "margin": repr(float(config.margin)),
        "scheme": scheme.name,
        "num_points": str(scheme.num_points),
        "output_units": "crop coordinates in [-1, 1]; pixels = (y + 1) * input_size / 2 - 0.5",
    }
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "facemark"
    model.doc_string = (f"facemark {config.arch} landmark network: (N, 3, {size}, {size}) crops in [-1, 1] "
                        f"-> (N, {scheme.num_points}, 2) {scheme.name} points in [-1, 1]")
    if compact:
        compact_initializers(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_onnx(network: nn.Module, path: str | Path, *, opset: int = DEFAULT_OPSET, compact: bool = True) -> Path:
    """Write the network as an ONNX file; atomically (temporary name + rename), so `path` is never half-written.
    A folder, or a place that cannot be written, is an error naming `path` (never the temporary name)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the .onnx file to write")
    data = onnx_model_bytes(network, opset=opset, compact=compact)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise type(e)(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def onnx_network_from_torch(network: nn.Module, *, threads: int | None = None,
                            opset: int = DEFAULT_OPSET) -> LandmarkNetwork:
    """Export in memory and load: onnxruntime for a weights file, no .onnx file written."""
    onnx_network = LandmarkNetwork(onnx_model_bytes(network, opset=opset), threads=threads)
    onnx_network.metrics = getattr(network, "metrics", {}) or {}
    return onnx_network


def network_from_weights(path: str | Path, *, backend: str = "auto", threads: int | None = None):
    """The network of a torch weights file for facemark.network.load_network: exported in memory to
    onnxruntime ("auto", "onnx"; about 3× faster than torch at batch 1 on a CPU, benchmarks/results/speed.md),
    or the torch module behind the same interface ("torch", on `threads` of torch's process-wide threads)."""
    network = load_weights(path)
    if backend == "torch":
        if threads:
            torch.set_num_threads(int(threads))
        return TorchLandmarkNetwork(network)
    return onnx_network_from_torch(network, threads=threads)


@torch.no_grad()
def max_difference_px(network: nn.Module, onnx_network: LandmarkNetwork, x: torch.Tensor) -> float:
    """Largest disagreement between the two back ends on crops `x`, in pixels of the network's input."""
    a = network.to_pixels(network.eval()(x)).numpy()
    b = onnx_network.to_pixels(onnx_network(x.numpy()))
    return float(np.abs(a - b).max())
