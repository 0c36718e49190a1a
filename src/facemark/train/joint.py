"""One network, one head per point layout: a joint scheme such as "face88+ibug68"
(`facemark.layouts.joint_scheme`) trains a single backbone and pyramid with one heatmap per point of every
layout, on labels that give any of them (missing points are NaN and left out of the loss). For shipping, the
network is split into one ordinary model per layout (`split_joint_model`): the heatmap head's last 1×1
convolution has one output channel per point, so keeping a layout's channels gives exactly that layout's
predictions, and the runtime sees nothing new.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from facemark.layouts import Scheme, split_joint


def _last_conv(model: nn.Module) -> nn.Conv2d:
    if model.config.head != "heatmap":
        raise ValueError("joint layouts need the heatmap head (one output channel per point)")
    return model.head.heatmaps


def split_joint_model(model: nn.Module) -> dict[str, nn.Module]:
    """Layout name -> a plain model of that layout with the joint model's weights (same outputs, exactly).
    Raises ValueError for a model whose scheme is not joint or whose head is not a heatmap head."""
    from facemark.train.model import create_model

    conv = _last_conv(model)
    config = {k: v for k, v in vars(model.config).items() if k not in ("scheme", "num_points")}
    state = model.state_dict()
    out = {}
    for part, where in split_joint(model.scheme):
        single = create_model(scheme=part, **config)
        sub = dict(state)
        sub["head.heatmaps.weight"] = conv.weight.detach()[where].clone()
        sub["head.heatmaps.bias"] = conv.bias.detach()[where].clone()
        single.load_state_dict(sub)
        out[part.name] = single.eval()
    return out


@torch.no_grad()
def init_joint_head(model: nn.Module, source: nn.Module, mean_shape: np.ndarray) -> int:
    """Start a joint model's heatmap channels from a trained single-layout model of one of its layouts.

    The source layout's channels are copied as they are; every other point starts from the channel of the
    source point nearest to it in `mean_shape` ((P, 2) joint points, any common frame; e.g. the mean of the
    training labels), so each channel begins as a detector of about the right place. Returns how many
    channels were copied. Raises ValueError when the source's layout is not part of the joint one."""
    conv, src = _last_conv(model), _last_conv(source)
    parts = dict((part.name, where) for part, where in split_joint(model.scheme))
    name = source.scheme.name
    if name not in parts:
        raise ValueError(f"{name} is not a part of the joint layout {model.scheme.name}")
    where = parts[name]
    mean_shape = np.asarray(mean_shape, np.float64)
    own = np.arange(model.scheme.num_points)[where]
    for i in range(model.scheme.num_points):
        if where.start <= i < where.stop:
            j = i - where.start
        else:
            d = np.linalg.norm(mean_shape[own] - mean_shape[i], axis=1)
            j = int(np.nanargmin(d))
        conv.weight[i] = src.weight[j]
        conv.bias[i] = src.bias[j]
    return model.scheme.num_points


def is_joint(scheme: Scheme) -> bool:
    try:
        split_joint(scheme)
        return True
    except ValueError:
        return False
