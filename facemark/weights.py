"""Weights files: the network's config (scheme included), its parameters and its measured metrics, together.

A weights file is a torch pickle of a plain dict of tensors and JSON-able values (loaded with
`weights_only=True`, so a file cannot run code). Parameters are stored in float16 to halve the size; they
are restored to float32 on loading (the difference is far below a pixel).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from facemark.model import config_dict, model_from_config

FORMAT = "facemark-landmarks"
VERSION = 1
BUILTIN_DIR = Path(__file__).parent / "weights"
BUILTIN_MODELS = {"face88": "face88.pt"}


class WeightsError(ValueError):
    """A weights file that cannot be used; the message says why in one line."""


def atomic_save(obj, path: str | Path) -> None:
    """Write to a temporary name and rename, so a crash never leaves a half-written file under `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_weights(model: nn.Module, path: str | Path, *, metrics: dict | None = None, half: bool = True) -> None:
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    atomic_save({"format": FORMAT, "version": VERSION, "config": config_dict(model), "state_dict": state,
                 "metrics": metrics or {}}, path)


def resolve_weights_path(model: str | Path | None) -> Path:
    """A built-in model name ('face88') or a path to a weights file."""
    if model is None:
        model = "face88"
    if str(model) in BUILTIN_MODELS:
        return BUILTIN_DIR / BUILTIN_MODELS[str(model)]
    return Path(model)


def load_weights(model: str | Path | None = None, *, expect_scheme: str | None = None) -> nn.Module:
    """The network of a weights file (or a built-in model name), in eval mode on the CPU."""
    path = resolve_weights_path(model)
    if not path.is_file():
        known = ", ".join(BUILTIN_MODELS)
        raise WeightsError(f"no weights file {path} (built-in models: {known})")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
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
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise WeightsError(f"{path}: weights contain NaN or inf")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise WeightsError(f"{path}: weights do not fit the model config ({first})") from None
    net.metrics = blob.get("metrics", {})
    return net.eval()
