"""dlib's face-recognition ResNet in PyTorch, and the transfer-learning landmark baseline built on it.

`DlibFaceResNet` is the network of `dlib_face_recognition_resnet_model_v1.dat` (Davis King, public domain;
trained on about 3 million faces for 128-D face descriptors): a 29-convolution ResNet on 150×150 RGB face chips.
`DlibFaceResNet.from_dlib()` rebuilds it from the installed `face-recognition-models` package through
`facemark.train.models.dlib_format`; its descriptors match `dlib.face_recognition_model_v1.compute_face_descriptor`
to float32 rounding (tests/unit/train/test_dlib_resnet.py). The converted weights are never stored in this repository.

`DlibResNetLandmarks` is the transfer baseline, built as the work we started from built its VGGFace one: the
pretrained convolutions frozen, their features taken before the final pooling and embedding (256×2×2 for a
150-px input), a 1024-unit fully connected layer, then 2×P outputs. It is registered as
`facemark.train.model.ARCHITECTURES["dlib_resnet"]`, so `facemark train --arch dlib_resnet` trains it; it is a
baseline for comparison, not a built-in model.

Conventions as in dlib: a chip's pixels are RGB 0–255; the network subtracts the mean colour stored in the file
(122.782, 117.001, 104.298) and divides by 256. Convolutions are cross-correlations (as torch's), with the
strides and paddings stored in the file (stride-2 layers have no padding). dlib's `add_prev` adds two tensors
of different sizes by zero-padding both to the larger one at the end of each axis (bottom, right, channels):
`_add_padded` does the same, which matters at the 8→3 vs 8→4 and 4→1 vs 4→2 downsamplings of a 150-px chip.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facemark.train.models import dlib_format
from facemark.layouts import Scheme

CHIP_SIZE = 150  # dlib's face chips: get_face_chip(img, shape, size=150, padding=0.25)
MEAN_RGB = (122.782, 117.001, 104.298)  # input_rgb_image's mean colour (also read from the file)
# residual stages, input first: (channels, blocks, first block downsamples); dlib's alevel4 ... alevel0
STAGES = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]
EMBEDDING = 128


class Affine(nn.Module):
    """Per-channel y = gamma·x + beta: dlib's `affine` layer, batch normalisation frozen into a scale and shift."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b for (B, C, H, W) tensors of different C, H, W: each zero-padded at the end to the larger size."""
    size = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def pad(t):
        c, h, w = t.shape[1:]
        return F.pad(t, (0, size[2] - w, 0, size[1] - h, 0, size[0] - c)) if [c, h, w] != size else t

    return pad(a) + pad(b)


class ResidualBlock(nn.Module):
    """relu(shortcut(x) + affine(conv(relu(affine(conv(x)))))): dlib's `ares` (stride 1, shortcut x) and
    `ares_down` (stride 2 without padding, shortcut a 2×2 average pool of x; sizes reconciled by zero-padding)."""

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        stride, padding = (2, 0) if down else (1, 1)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding)
        self.affine1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.affine2 = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(y, shortcut))


class DlibFaceResNet(nn.Module):
    """dlib's face-recognition ResNet: (B, 3, 150, 150) RGB chips, pixel values 0–255 -> (B, 128) descriptors.

    Other input sizes run too (every layer is convolutional up to the global average pool); `features` gives
    the last residual stage's map, (B, 256, 2, 2) for a 150-px chip."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean_rgb", torch.tensor(MEAN_RGB, dtype=torch.float32))
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 7, 2, 0), Affine(32), nn.ReLU(), nn.MaxPool2d(3, 2))
        stages, cin = [], 32
        for channels, blocks, down in STAGES:
            stages.append(nn.Sequential(*[ResidualBlock(cin if i == 0 else channels, channels, down and i == 0)
                                          for i in range(blocks)]))
            cin = channels
        self.stages = nn.ModuleList(stages)
        self.embedding = nn.Linear(cin, EMBEDDING, bias=False)  # dlib's fc_no_bias<128>

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB 0–255 -> the map before the global average pool, (B, 256, s, s)."""
        x = (pixels - self.mean_rgb[:, None, None]) / 256
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.features(pixels).mean(dim=(2, 3)))

    @classmethod
    def from_dlib(cls, path: str | Path | None = None) -> "DlibFaceResNet":
        """The network with the weights of a dlib file (default: the installed package's .dat), in eval mode.

        Raises FileNotFoundError when the package is missing, DlibFormatError when the file is not this net."""
        net = cls()
        path = dlib_format.face_recognition_resnet_path() if path is None else Path(path)
        net.load_dlib_layers(dlib_format.read_network(path, dlib_format.FACE_RECOGNITION_RESNET_V1))
        return net.eval()

    def load_dlib_layers(self, layers: list[dlib_format.DlibLayer]) -> None:
        """Copy the parameters of `read_network`'s layers (outermost first) into this module.

        Convolutions and affines are matched in order from the input up (the stem, then conv1, affine1, conv2,
        affine2 of each block); their sizes, strides and paddings must agree. Raises DlibFormatError if not."""
        inner_first = layers[::-1]
        convs = [layer for layer in inner_first if layer.kind == "con"]
        affines = [layer for layer in inner_first if layer.kind == "affine"]
        mine = [m for m in self.modules() if isinstance(m, (nn.Conv2d, Affine))]
        my_convs = [m for m in mine if isinstance(m, nn.Conv2d)]
        my_affines = [m for m in mine if isinstance(m, Affine)]
        if len(convs) != len(my_convs) or len(affines) != len(my_affines):
            raise dlib_format.DlibFormatError(f"{len(convs)} convolutions / {len(affines)} affines in the file, "
                                              f"{len(my_convs)} / {len(my_affines)} in the network")
        with torch.no_grad():
            for layer, conv in zip(convs, my_convs):
                f = layer.fields
                if ((f["stride_y"], f["stride_x"]) != conv.stride or (f["padding_y"], f["padding_x"]) != conv.padding
                        or tuple(f["filters"]) != tuple(conv.weight.shape)):
                    raise dlib_format.DlibFormatError(f"convolution {tuple(f['filters'])}, stride "
                                                      f"{f['stride_y']}, padding {f['padding_y']} does not fit {conv}")
                params = f["params"].ravel()
                n = conv.weight.numel()
                conv.weight.copy_(torch.from_numpy(params[:n].reshape(conv.weight.shape)))
                conv.bias.copy_(torch.from_numpy(params[n:n + conv.out_channels]))
            for layer, affine in zip(affines, my_affines):
                params, k = layer.fields["params"].ravel(), affine.gamma.numel()
                if int(np.prod(layer.fields["gamma"])) != k:
                    raise dlib_format.DlibFormatError(f"affine of {layer.fields['gamma']} does not fit {k} channels")
                affine.gamma.copy_(torch.from_numpy(params[:k]))
                affine.beta.copy_(torch.from_numpy(params[k:2 * k]))
            fc = next(layer for layer in layers if layer.kind == "fc")
            ni, no = fc.fields["num_inputs"], fc.fields["num_outputs"]
            if (no, ni) != tuple(self.embedding.weight.shape) or fc.fields["bias_mode"] != 1:
                raise dlib_format.DlibFormatError(f"fc {ni}->{no} does not fit {self.embedding}")
            # dlib's fc computes x · W with W of shape (num_inputs, num_outputs); torch's Linear x · Wᵀ
            self.embedding.weight.copy_(torch.from_numpy(fc.fields["params"].ravel()[:ni * no].reshape(ni, no).T))
            rgb = layers[-1].fields
            self.mean_rgb.copy_(torch.tensor([rgb["avg_red"], rgb["avg_green"], rgb["avg_blue"]]))


class DlibResNetLandmarks(nn.Module):
    """Transfer-learning landmark network: dlib's face ResNet, frozen, with a new 1024-unit regression head.

    (B, 3, S, S) crops in [-1, 1] (facemark's normalisation; S = 150) -> (B, P, 2) points in [-1, 1] crop
    coordinates, the same contract as `MobileNetLandmarks`. The head flattens the last residual stage's
    256×2×2 map (the features before dlib's average pool and 128-D embedding), then Linear(1024, 1024), ReLU,
    Linear(1024, 2P).

    The config's `unfreeze` (default 0) lets the last N residual stages train too (1: the last, 256-channel
    stage, 1.2 M parameters); everything before stays frozen (requires_grad False). The input size is fixed at
    150 px (rho = 150/160), the chips the convolutions were trained on; alpha, shallow, head and head_channels
    do not apply and are set to what this network is (the config is rewritten so a weights file says so).

    pretrained: load dlib's weights from the installed `face-recognition-models` package (FileNotFoundError
    when it is missing); False leaves them random (tests, or a weights file about to be loaded over them)."""

    def __init__(self, config, pretrained: bool = True):
        super().__init__()
        self.config = replace(config, rho=CHIP_SIZE / 160, alpha=1.0, shallow=False, head="fc", head_channels=1024)
        self.backbone = DlibFaceResNet.from_dlib() if pretrained else DlibFaceResNet()
        del self.backbone.embedding  # the descriptor layer is not used: features come from before it
        unfreeze = getattr(config, "unfreeze", 0)
        if not 0 <= unfreeze <= len(STAGES):
            raise ValueError(f"unfreeze must be 0..{len(STAGES)} (residual stages), got {unfreeze}")
        trainable = list(self.backbone.stages)[len(STAGES) - unfreeze:]
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        for stage in trainable:
            for p in stage.parameters():
                p.requires_grad_(True)
        with torch.no_grad():
            grid = self.backbone.features(torch.zeros(1, 3, CHIP_SIZE, CHIP_SIZE)).shape
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(grid[1] * grid[2] * grid[3], self.config.head_channels),
                                  nn.ReLU(inplace=True), nn.Linear(self.config.head_channels,
                                                                   2 * self.config.num_points))
        nn.init.normal_(self.head[-1].weight, std=1e-3)  # every point starts at the crop centre: calm first steps
        nn.init.zeros_(self.head[-1].bias)

    @property
    def scheme(self) -> Scheme:
        return Scheme.from_dict(self.config.scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 150, 150) crops in [-1, 1] -> (B, P, 2) points in [-1, 1] crop coordinates."""
        pixels = (x + 1) * 127.5  # facemark's [-1, 1] back to dlib's 0–255
        return self.head(self.backbone.features(pixels)).view(x.shape[0], -1, 2)

    def to_pixels(self, y: torch.Tensor) -> torch.Tensor:
        """[-1, 1] crop coordinates -> crop pixels (pixel-centre convention, as MobileNetLandmarks)."""
        s = self.config.input_size
        return (y + 1) * (s / 2) - 0.5
