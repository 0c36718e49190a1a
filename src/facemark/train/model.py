"""The landmark network: MobileNet v1 (Howard et al. 2017) regressing 2×P numbers from an S×S face crop.

The original's knobs are here: width multiplier `alpha`, resolution multiplier `rho` (input 160·rho), and
`shallow` (drops the five 512-channel blocks). The network predicts points in crop coordinates scaled to
[-1, 1] (`to_pixels` turns them into crop pixels); a config travels with the weights, including the scheme,
so a weights file alone rebuilds the network.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
from torch import nn

from facemark.network import ModelConfig, to_pixels
from facemark.network import predict_crops as network_predict_crops
from facemark.layouts import Scheme

# (output channels at alpha=1, stride) of the 13 depthwise-separable blocks of MobileNet v1.
MOBILENET_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),  # the five the "shallow" option drops
                    (1024, 2), (1024, 1)]
SHALLOW_DROPPED = range(6, 11)


def _channels(c: int, alpha: float) -> int:
    return max(8, int(round(c * alpha / 8)) * 8)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DepthwiseSeparable(nn.Sequential):
    """3×3 depthwise (one filter per channel) then 1×1 pointwise: MobileNet's cheap replacement for a 3×3 conv."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(ConvBNReLU(cin, cin, 3, stride, groups=cin), ConvBNReLU(cin, cout, 1))


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, P, G, G) logits -> (B, P, 2) expected (x, y) in [-1, 1] crop coordinates (integral regression,
    Sun et al. 2018, "Integral Human Pose Regression").

    Cell i of G covers [i, i + 1) × side / G, so its centre sits at (2i + 1) / G - 1 in [-1, 1] units, the
    convention of `MobileNetLandmarks.to_pixels`. The expectation is differentiable, so the network trains on
    the same point loss as a regression head and keeps sub-cell precision; it can only reach half a cell from
    the crop's border."""
    b, p, h, w = heatmaps.shape
    prob = torch.softmax(heatmaps.reshape(b, p, h * w), dim=-1).reshape(b, p, h, w)
    xs = (2 * torch.arange(w, dtype=prob.dtype, device=prob.device) + 1) / w - 1
    ys = (2 * torch.arange(h, dtype=prob.dtype, device=prob.device) + 1) / h - 1
    return torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], dim=-1)


def heatmaps_for_points(points: torch.Tensor, grid: int, background: float = 1e-4) -> torch.Tensor:
    """(B, P, 2) points in [-1, 1] -> (B, P, G, G) logits whose `soft_argmax` returns the points exactly.

    The probability is a share `background` spread evenly over all cells (its mean is the grid centre) plus
    bilinear weights on the 2×2 cells around a target q, chosen so that the mixture's mean is the point:
    (1 - background)·q + background·centre = point. A known-answer heatmap for tests of the decode.
    Raises ValueError for points beyond the centres of the border cells (soft-argmax cannot reach them)."""
    cell = (points.double() + 1) * grid / 2 - 0.5  # continuous cell index: the centre of cell i is i
    centre = (grid - 1) / 2
    q = (cell - background * centre) / (1 - background)
    if (q < 0).any() or (q > grid - 1).any():
        raise ValueError("points must lie between the centres of the border cells")
    lo = q.floor().clamp(max=grid - 2)
    fx, fy = (q - lo).unbind(-1)
    ix, iy = lo.long().unbind(-1)
    b, p, _ = points.shape
    prob = torch.full((b, p, grid, grid), background / grid ** 2, dtype=torch.float64)
    bi, pi = torch.meshgrid(torch.arange(b), torch.arange(p), indexing="ij")
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            prob[bi, pi, iy + dy, ix + dx] += (1 - background) * wy * wx
    return torch.log(prob).to(points.dtype)


class PyramidHeatmapHead(nn.Module):
    """Feature pyramid (Lin et al. 2017) over the stride-8, -16 and -32 maps, then one heatmap per point at
    stride 8 (16×16 for a 128-px crop), decoded by `soft_argmax`.

    Direct regression from the 4×4 stride-32 map must learn where each point is from a fully connected layer;
    here each heatmap cell sees a local, high-resolution feature, so the network only has to say *which* cell,
    which generalises across positions, scales and rotations."""

    def __init__(self, in_channels: list[int], width: int, num_points: int):
        super().__init__()
        self.lateral = nn.ModuleList(ConvBNReLU(c, width, 1) for c in in_channels)
        self.smooth = DepthwiseSeparable(width, width, 1)
        self.heatmaps = nn.Conv2d(width, num_points, 1)
        nn.init.normal_(self.heatmaps.weight, std=1e-3)  # flat heatmaps: every point starts at the crop centre
        nn.init.zeros_(self.heatmaps.bias)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: maps at strides 8, 16, 32 -> (B, P, 2) points in [-1, 1]."""
        top = self.lateral[-1](features[-1])
        for lateral, feature in zip(reversed(self.lateral[:-1]), reversed(features[:-1])):
            top = lateral(feature) + nn.functional.interpolate(top, size=feature.shape[-2:], mode="nearest")
        return soft_argmax(self.heatmaps(self.smooth(top)))


class MobileNetLandmarks(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        a = config.alpha
        layers = [ConvBNReLU(3, _channels(32, a), 3, stride=2)]
        cin = _channels(32, a)
        strides, channels = [2], [cin]
        for k, (c, stride) in enumerate(MOBILENET_BLOCKS):
            if config.shallow and k in SHALLOW_DROPPED:
                continue
            layers.append(DepthwiseSeparable(cin, _channels(c, a), stride))
            cin = _channels(c, a)
            strides.append(strides[-1] * stride)
            channels.append(cin)
        self.backbone = nn.Sequential(*layers)
        # the last layer at each of strides 8, 16, 32: where the pyramid head taps the backbone
        self.taps = [max(i for i, s in enumerate(strides) if s == t) for t in (8, 16, 32)]
        if config.head == "heatmap":
            self.head = PyramidHeatmapHead([channels[i] for i in self.taps], config.head_channels,
                                           config.num_points)
            return
        grid = -(-config.input_size // 32)  # five stride-2 stages
        outputs = 2 * config.num_points
        if config.head == "flatten":
            self.head = nn.Sequential(ConvBNReLU(cin, config.head_channels, 1), nn.Flatten(),
                                      nn.Linear(config.head_channels * grid * grid, outputs))
        elif config.head == "gap":
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, outputs))
        else:
            raise ValueError(f"unknown head {config.head!r}: use 'flatten', 'gap' or 'heatmap'")
        # start from "every point at the crop centre" with small weights, so early steps are calm
        last = self.head[-1]
        nn.init.normal_(last.weight, std=1e-3)
        nn.init.zeros_(last.bias)

    @property
    def scheme(self) -> Scheme:
        return Scheme.from_dict(self.config.scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised crops -> (B, P, 2) points in [-1, 1] crop coordinates."""
        if self.config.head != "heatmap":
            return self.head(self.backbone(x)).view(x.shape[0], -1, 2)
        features = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i in self.taps:
                features.append(x)
        return self.head(features)

    def to_pixels(self, y: torch.Tensor) -> torch.Tensor:
        """[-1, 1] crop coordinates -> crop pixels (pixel-centre convention)."""
        s = self.config.input_size
        return (y + 1) * (s / 2) - 0.5


class TorchLandmarkNetwork:
    """A torch landmark network behind the runtime's numpy interface (facemark.network.LandmarkNetwork): calls
    take a float32 array (N, 3, S, S) in [-1, 1] and return (N, P, 2) float32 points in [-1, 1] crop units.
    Used for `backend="torch"` and wherever training code predicts crops; the module itself is `.module`."""

    def __init__(self, module: nn.Module):
        self.module = module.eval()
        self.config, self.scheme = module.config, module.scheme
        self.metrics = getattr(module, "metrics", {})

    @torch.no_grad()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def to_pixels(self, y: np.ndarray) -> np.ndarray:
        return to_pixels(y, self.config.input_size)

    def __repr__(self) -> str:
        return f"TorchLandmarkNetwork({self.config.arch}, {self.config.input_size} px, {self.scheme.name})"


def predict_crops(network, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
    """facemark.network.predict_crops for a torch network too (points in crop pixels of (N, S, S, 3) uint8
    crops; flip: averaged with the mirrored crops)."""
    if isinstance(network, nn.Module):
        network = TorchLandmarkNetwork(network)
    return network_predict_crops(network, crops, flip=flip)


def points_to_unit(points: torch.Tensor, size: int) -> torch.Tensor:
    """Crop pixels -> the network's [-1, 1] coordinates (inverse of `to_pixels`)."""
    return (points + 0.5) * (2 / size) - 1


ARCHITECTURES = {"mobilenet": MobileNetLandmarks}

# The transfer-learning baseline : dlib's face-recognition ResNet, frozen, with a 1024-unit head;
# a comparison, not a built-in model. Its module does not import this one (no cycle).
from facemark.train.models.dlib_resnet import DlibResNetLandmarks  # noqa: E402

ARCHITECTURES["dlib_resnet"] = DlibResNetLandmarks


def create_model(arch: str = "mobilenet", scheme: Scheme | dict | None = None, **kwargs) -> nn.Module:
    """Build a landmark network by name, e.g. create_model("mobilenet", alpha=0.25, shallow=True)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if scheme is not None:
        kwargs["scheme"] = scheme.to_dict() if isinstance(scheme, Scheme) else Scheme.from_dict(scheme).to_dict()
    config = ModelConfig(arch=arch, **kwargs)
    return ARCHITECTURES[arch](config)


def model_from_config(config: dict) -> nn.Module:
    return create_model(**config)


def config_dict(model: nn.Module) -> dict:
    return asdict(model.config)
