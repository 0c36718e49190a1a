"""The landmark network: MobileNet v1 (Howard et al. 2017) regressing 2×P numbers from an S×S face crop.

The original's knobs are here: width multiplier `alpha`, resolution multiplier `rho` (input 160·rho), and
`shallow` (drops the five 512-channel blocks). The network predicts points in crop coordinates scaled to
[-1, 1] (`to_pixels` turns them into crop pixels); a config travels with the weights, including the scheme,
so a weights file alone rebuilds the network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from facemark.preprocessing import normalise_crop
from facemark.scheme import FACE88, Scheme

# (output channels at alpha=1, stride) of the 13 depthwise-separable blocks of MobileNet v1.
MOBILENET_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),  # the five the "shallow" option drops
                    (1024, 2), (1024, 1)]
SHALLOW_DROPPED = range(6, 11)


@dataclass
class ModelConfig:
    arch: str = "mobilenet"
    alpha: float = 0.5  # width multiplier: channels = round(alpha × MobileNet's)
    rho: float = 1.0  # resolution multiplier: input side = round(160 × rho)
    shallow: bool = False  # drop the five 512-channel 1×1-stride blocks (faster, less capacity)
    head: str = "flatten"  # "flatten": keep the 5×5 layout (where a feature is matters); "gap": average it away
    head_channels: int = 64  # 1×1 conv width before flattening
    scheme: dict = field(default_factory=FACE88.to_dict)  # the point layout the head predicts
    margin: float = 1.25  # the framing it was trained on: crop side = margin × side of the points' box

    @property
    def input_size(self) -> int:
        return round(160 * self.rho)

    @property
    def num_points(self) -> int:
        return Scheme.from_dict(self.scheme).num_points


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


class MobileNetLandmarks(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        a = config.alpha
        layers = [ConvBNReLU(3, _channels(32, a), 3, stride=2)]
        cin = _channels(32, a)
        for k, (c, stride) in enumerate(MOBILENET_BLOCKS):
            if config.shallow and k in SHALLOW_DROPPED:
                continue
            layers.append(DepthwiseSeparable(cin, _channels(c, a), stride))
            cin = _channels(c, a)
        self.backbone = nn.Sequential(*layers)
        grid = -(-config.input_size // 32)  # five stride-2 stages
        outputs = 2 * config.num_points
        if config.head == "flatten":
            self.head = nn.Sequential(ConvBNReLU(cin, config.head_channels, 1), nn.Flatten(),
                                      nn.Linear(config.head_channels * grid * grid, outputs))
        elif config.head == "gap":
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, outputs))
        else:
            raise ValueError(f"unknown head {config.head!r}: use 'flatten' or 'gap'")
        # start from "every point at the crop centre" with small weights, so early steps are calm
        last = self.head[-1]
        nn.init.normal_(last.weight, std=1e-3)
        nn.init.zeros_(last.bias)

    @property
    def scheme(self) -> Scheme:
        return Scheme.from_dict(self.config.scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised crops -> (B, P, 2) points in [-1, 1] crop coordinates."""
        return self.head(self.backbone(x)).view(x.shape[0], -1, 2)

    def to_pixels(self, y: torch.Tensor) -> torch.Tensor:
        """[-1, 1] crop coordinates -> crop pixels (pixel-centre convention)."""
        s = self.config.input_size
        return (y + 1) * (s / 2) - 0.5


@torch.no_grad()
def predict_crops(network, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
    """Points in crop pixels for (N, S, S, 3) uint8 crops of any S (resized to the network's input).

    `network` is this module's network or anything that stands in for it (the onnxruntime one).
    flip: also predict the mirrored crops (one batch of 2N), mirror those points back through the scheme's
    left/right permutation and average: about 4% lower NME for twice the network time."""
    network.eval()
    s = crops.shape[1]
    x = torch.from_numpy(normalise_crop(crops))
    if flip:
        x = torch.cat([x, x.flip(-1)])
    n = network.config.input_size
    if s != n:
        x = torch.nn.functional.interpolate(x, size=(n, n), mode="bilinear", align_corners=False,
                                            antialias=True)
    pred = network.to_pixels(network(x)).numpy().astype(np.float64)
    if flip:
        k = len(crops)
        mirrored = pred[k:, list(network.scheme.flip)]
        mirrored[..., 0] = n - 1 - mirrored[..., 0]
        pred = (pred[:k] + mirrored) / 2
    return pred if s == n else (pred + 0.5) * (s / n) - 0.5


def points_to_unit(points: torch.Tensor, size: int) -> torch.Tensor:
    """Crop pixels -> the network's [-1, 1] coordinates (inverse of `to_pixels`)."""
    return (points + 0.5) * (2 / size) - 1


ARCHITECTURES = {"mobilenet": MobileNetLandmarks}


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
