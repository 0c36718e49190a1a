"""Weights files: the network's config (scheme included), its parameters and its measured metrics, together.

A weights file is a torch pickle of a plain dict of tensors and JSON-able values (loaded with
`weights_only=True`, so a file cannot run code). Parameters are stored in float16 (half the size), or with
`precision="int8"` the conv/linear weights as int8 with one float scale per output channel (a quarter,
and the file xz-compressed); they are restored to float32 on loading. `facemark eval` on the stored file
measures what this costs.
"""

from __future__ import annotations

import io
import lzma
import os
from pathlib import Path

import torch
from torch import nn

from facemark.network import BUILTIN_DIR, BUILTIN_MODELS, WeightsError, resolve_model_path  # noqa: F401
from facemark.train.model import config_dict, model_from_config

FORMAT = "facemark-landmarks"
VERSION = 1
XZ_MAGIC = b"\xfd7zXZ\x00"


def atomic_save(obj, path: str | Path, *, compress: bool = False) -> None:
    """Write to a temporary name and rename, so a crash never leaves a half-written file under `path`.

    compress: xz-compress the file (int8 weights shrink by another ~10%); `load_weights` sees it by its magic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if compress:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        tmp.write_bytes(lzma.compress(buffer.getvalue(), preset=9))
    else:
        torch.save(obj, tmp)
    os.replace(tmp, path)


def quantize_int8(w: torch.Tensor) -> dict:
    """Symmetric per-output-channel int8: w ≈ q * scale[channel]."""
    flat = w.reshape(w.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp(min=1e-12) / 127
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(w.shape)
    return {"int8": q, "scale": scale.float()}


def _store(name: str, v: torch.Tensor, precision: str):
    if not v.is_floating_point() or precision == "fp32":
        return v
    if precision == "int8" and name.endswith("weight") and v.dim() >= 2 and v[0].numel() >= 8:
        return quantize_int8(v)
    return v.half()


def _restore(v) -> torch.Tensor:
    if isinstance(v, dict):
        q, scale = v["int8"], v["scale"]
        return (q.float().reshape(q.shape[0], -1) * scale[:, None]).reshape(q.shape)
    return v.float() if v.is_floating_point() else v


def save_weights(model: nn.Module, path: str | Path, *, metrics: dict | None = None,
                 precision: str = "fp16") -> None:
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"unknown precision {precision!r}: use fp32, fp16 or int8")
    state = {k: _store(k, v.detach().cpu(), precision) for k, v in model.state_dict().items()}
    atomic_save({"format": FORMAT, "version": VERSION, "config": config_dict(model), "state_dict": state,
                 "precision": precision, "metrics": metrics or {}}, path, compress=precision == "int8")


def resolve_weights_path(model: str | Path | None) -> Path:
    """A built-in model name ('face88', the default) -> its torch weights file; a path -> itself."""
    return resolve_model_path(model, ".pt")


def load_weights(model: str | Path | None = None, *, expect_scheme: str | None = None) -> nn.Module:
    """The network of a weights file (or a built-in model name), in eval mode on the CPU."""
    path = resolve_weights_path(model)
    if not path.is_file():
        known = ", ".join(BUILTIN_MODELS)
        raise WeightsError(f"no weights file {path} (built-in models: {known})")
    try:
        data = path.read_bytes()
        if data.startswith(XZ_MAGIC):
            data = lzma.decompress(data)
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file; all mean the same to a user
        raise WeightsError(f"{path} is not a readable facemark weights file ({type(e).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a facemark weights file (no '{FORMAT}' header)")
    if blob.get("version") != VERSION:
        raise WeightsError(f"{path}: weights format version {blob.get('version')} is not supported")
    try:
        net = model_from_config(blob["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise WeightsError(f"{path}: invalid model config ({e})") from None
    scheme = net.config.scheme["name"]
    if expect_scheme is not None and scheme != expect_scheme:
        raise WeightsError(f"{path} predicts the {scheme} layout, not {expect_scheme}")
    try:
        state = {k: _restore(v) for k, v in blob["state_dict"].items()}
    except (KeyError, TypeError, AttributeError, RuntimeError):
        raise WeightsError(f"{path}: damaged parameter table") from None
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise WeightsError(f"{path}: weights contain NaN or inf")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(f"{path}: weights do not fit the model config ({first})") from None
    net.metrics = blob.get("metrics", {})
    return net.eval()
