"""The three MTCNN networks (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks"): P-Net proposes, R-Net refines, O-Net outputs final boxes and five keypoints.

Layer names follow facenet-pytorch's port, so its converted weights load with `load_state_dict` unchanged.
All three take RGB in NCHW, normalised as (x - 127.5) / 128, with images in their usual orientation
(the original Caffe models worked on transposed images; the port's weights already undo that).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

FORMAT = "facemark-mtcnn"
VERSION = 1
# the three networks' parameters in float16 (scripts/convert_mtcnn_weights.py); the runtime runs the ONNX files
# scripts/export_mtcnn_onnx.py makes from them (facemark/detection/mtcnn/*.onnx)
WEIGHTS_PATH = Path(__file__).with_name("mtcnn_weights.pt")


class PNet(nn.Module):
    """Fully convolutional 12×12 window classifier: on an H×W image it scores every 12×12 window at stride 2.

    Returns (face probability N×H'×W', box regression N×4×H'×W'); the regression is the offset of each box
    edge (x0, y0, x1, y1) in units of the window size.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)  # box regression

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        prob = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return prob, self.conv4_2(x)


def _flatten_like_port(x: torch.Tensor) -> torch.Tensor:
    # The dense layers were trained on features flattened in (W, H, C) order (TensorFlow's H, W, C of a
    # transposed image), so we flatten the same way rather than permuting the dense weights.
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    """24×24 crop classifier. Returns (face probability N, box regression N×4)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_like_port(x)))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """48×48 crop classifier. Returns (face probability N, box regression N×4, keypoints N×10).

    Keypoints are x of the five points then y of the five, each as a fraction of the crop's width/height.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_like_port(x)))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


@functools.lru_cache(maxsize=4)
def _read_weights(path: str) -> dict:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("version") != VERSION:
        raise ValueError(f"{path} is not a facemark MTCNN weights file (format {FORMAT} v{VERSION})")
    return blob


def load_networks(path: str | Path = WEIGHTS_PATH) -> tuple[PNet, RNet, ONet]:
    """The three networks with their pretrained weights (stored in float16, run in float32), in eval mode."""
    blob = _read_weights(str(path))
    nets = PNet(), RNet(), ONet()
    for name, net in zip(("pnet", "rnet", "onet"), nets):
        net.load_state_dict({k: v.float() for k, v in blob[name].items()})
        net.eval().requires_grad_(False)
    return nets
