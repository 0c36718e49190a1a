"""Ship the landmark network as ONNX, and run an ONNX file with onnxruntime in place of the torch network.

    export_onnx(load_weights("face88"), "face88.onnx")        # the network + its config in one file
    network = OnnxLandmarkNetwork("face88.onnx", threads=1)    # drop-in for the torch network:
    points = network.to_pixels(network(x))                     # same input, same output, torch tensors

The graph is the network alone: input "crops" (N, 3, S, S) float32 in [-1, 1], output "points" (N, P, 2) in
the network's [-1, 1] crop units, N dynamic. Cropping and the mapping back to the image stay in Python
(facemark.preprocessing), so both back ends share them exactly. The model config (scheme, margin, input
size, ...) travels as JSON in the file's metadata_props, as it does in a weights file, so an .onnx file alone
rebuilds everything `Landmarker` needs; other programs find `input_size`, `margin` and `scheme` there too.

Running needs only onnxruntime; exporting needs the `onnx` package as well (both in the `onnx` extra).
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

from facemark.model import ARCHITECTURES, ModelConfig
from facemark.scheme import Scheme
from facemark.weights import WeightsError, load_weights, resolve_weights_path

FORMAT = "facemark-landmarks-onnx"
VERSION = 1
INPUT_NAME, OUTPUT_NAME = "crops", "points"
DEFAULT_OPSET = 17
BACKENDS = ("auto", "torch", "onnx")
INSTALL_HINT = "pip install 'facemark[onnx]'"


class OnnxModelError(WeightsError):
    """An .onnx file that cannot be used as a facemark landmark network; the message says why in one line."""


def _require(module: str):
    """Import an optional dependency, or say in one line how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{module} is not installed; ONNX export and inference need it: {INSTALL_HINT}") from None


def onnx_model_bytes(network: nn.Module, *, opset: int = DEFAULT_OPSET) -> bytes:
    """The serialized ONNX model of a torch landmark network, config and metrics in its metadata."""
    onnx = _require("onnx")
    config = network.config
    size = config.input_size
    param = next(network.parameters())
    # batch 2, not 1, so nothing in the trace can specialise on a batch of one; the batch axis is dynamic anyway
    dummy = torch.zeros(2, 3, size, size, dtype=param.dtype, device=param.device)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The torch.export-based exporter (torch's default since 2.9) needs onnxscript, which the `onnx` extra
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
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_onnx(network: nn.Module, path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Write the network as an ONNX file; atomically (temporary name + rename), so `path` is never half-written.
    A folder, or a place that cannot be written, is an error naming `path` (never the temporary name)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the .onnx file to write")
    data = onnx_model_bytes(network, opset=opset)
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


class OnnxLandmarkNetwork:
    """An exported landmark network run by onnxruntime, usable wherever the torch network is.

    `model`: an .onnx file written by `export_onnx` (or its bytes). `threads`: onnxruntime intra-op threads
    (None: onnxruntime's default, one per physical core). Calls take a torch tensor or a numpy array
    (N, 3, S, S) and return a float32 torch tensor (N, P, 2), like the torch network in eval mode.
    """

    def __init__(self, model: str | Path | bytes, *, threads: int | None = None):
        ort = _require("onnxruntime")
        self.path = None if isinstance(model, bytes) else Path(model)
        name = "ONNX model" if self.path is None else str(self.path)
        if self.path is not None and not self.path.is_file():
            raise OnnxModelError(f"no ONNX model file {self.path}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1  # a single chain of ops: nothing to run side by side
        # no busy-waiting between calls: the face detector runs on the same cores right after the network,
        # and spinning onnxruntime threads would steal them (measured: whole-image time doubled)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # onnxruntime's own warnings would repeat our one-line errors
        source = model if self.path is None else str(self.path)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own kinds for a damaged file; all mean the same to a user
            raise OnnxModelError(f"{name} is not a readable ONNX model ({type(e).__name__})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("facemark_format") != FORMAT:
            raise OnnxModelError(f"{name} is an ONNX model but not a facemark landmark network "
                                 f"(no '{FORMAT}' metadata; write it with `facemark export`)")
        if meta.get("facemark_version") != str(VERSION):
            raise OnnxModelError(f"{name}: facemark ONNX version {meta.get('facemark_version')} is not supported")
        try:
            self.config = ModelConfig(**json.loads(meta["facemark_config"]))
            self.scheme = Scheme.from_dict(self.config.scheme)
        except (KeyError, TypeError, ValueError) as e:
            raise OnnxModelError(f"{name}: invalid model config in its metadata ({e})") from None
        try:
            self.metrics = json.loads(meta.get("facemark_metrics", "{}"))
        except ValueError:
            self.metrics = {}
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        size = self.config.input_size
        if ([i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]
                or list(inputs[0].shape[1:]) != [3, size, size]):
            raise OnnxModelError(f"{name}: graph does not take ({INPUT_NAME}: N×3×{size}×{size}) as its config says")

    @classmethod
    def from_torch(cls, network: nn.Module, *, threads: int | None = None,
                   opset: int = DEFAULT_OPSET) -> "OnnxLandmarkNetwork":
        """Export in memory and load: onnxruntime for a weights file, no .onnx file written."""
        return cls(onnx_model_bytes(network, opset=opset), threads=threads)

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(N, 3, S, S) normalised crops -> (N, P, 2) points in [-1, 1] crop coordinates."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        size = self.config.input_size
        if x.ndim != 4 or x.shape[1:] != (3, size, size):
            raise ValueError(f"the landmark network takes (N, 3, {size}, {size}) crops, got shape {x.shape}")
        (points,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return torch.from_numpy(points)

    def to_pixels(self, y: torch.Tensor) -> torch.Tensor:
        """[-1, 1] crop coordinates -> crop pixels: the torch network's own mapping, so the two cannot drift."""
        return ARCHITECTURES[self.config.arch].to_pixels(self, y)

    def eval(self) -> "OnnxLandmarkNetwork":
        """Always in inference mode; here so code that calls `network.eval()` takes either back end."""
        return self

    def __repr__(self) -> str:
        where = self.path if self.path is not None else "in memory"
        return (f"OnnxLandmarkNetwork({where}, {self.config.arch}, {self.config.input_size} px, "
                f"{self.scheme.name})")


def onnx_available() -> bool:
    """Whether the `onnx` extra is installed: exporting needs onnx, running needs onnxruntime."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load_network(model: str | Path | None = None, *, backend: str = "auto", threads: int | None = None):
    """The landmark network of a built-in name, a weights file or an .onnx file, on the chosen back end.

    backend: "torch" (weights files only), "onnx" (an .onnx file, or a weights file exported in memory, which
    takes a few tenths of a second) or "auto": onnxruntime when `onnx` and `onnxruntime` are installed (about
    3× faster than torch at batch 1 on a CPU, benchmarks/results/speed.md), torch otherwise. `threads` sets
    onnxruntime's threads; torch's are process-wide (torch.set_num_threads), so they are left to the caller.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    path = resolve_weights_path(model)
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise ValueError(f"{path} is an ONNX model: run it with backend 'onnx' or 'auto'")
        return OnnxLandmarkNetwork(path, threads=threads)
    network = load_weights(path)
    if backend == "torch" or (backend == "auto" and not onnx_available()):
        return network
    onnx_network = OnnxLandmarkNetwork.from_torch(network, threads=threads)
    onnx_network.metrics = getattr(network, "metrics", {})
    return onnx_network


@torch.no_grad()
def max_difference_px(network: nn.Module, onnx_network: OnnxLandmarkNetwork, x: torch.Tensor) -> float:
    """Largest disagreement between the two back ends on crops `x`, in pixels of the network's input."""
    a = network.to_pixels(network.eval()(x))
    b = onnx_network.to_pixels(onnx_network(x))
    return float((a - b).abs().max())
