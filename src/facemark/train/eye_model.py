"""The eye refiner: a small network that places one eye's 8 points on a level eye patch.

The landmark network sees a whole face at 128 px, where an eye is ~20 px wide and its heatmaps have a cell every
8 px; a shut lid and an open one differ by a few of its pixels. The refiner sees one eye at a fixed scale
(facemark.pipeline.eyes: the corners 32 px apart on a 64×40 patch), so its whole input is the eye. Like
MediaPipe's attention mesh, it refines the eyes on crops of their own, framed by the first network's corners.

Inputs: (N, 3, 40, 64) RGB in [-1, 1], and the landmark network's own 8 eye points in patch pixels (the prior);
output (N, 8, 2) patch pixels (face88 eye order, the image-left eye's; pixel-centre convention). The output is
a correction of the prior in units of the corner gap, so the untrained network answers the landmark network's
eye (without a prior: a correction of a mean eye).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from facemark.pipeline.eyes import EYE_CORNER_GAP, EYE_PATCH_SIZE, patch_corners
from facemark.train.model import ConvBNReLU, DepthwiseSeparable


@dataclass
class EyeRefinerConfig:
    width: int = 24  # channels of the first layer; each stride-2 stage doubles them
    stem_stride: int = 2  # the first 3×3 convolution's stride: 2 halves the cost of training and of a patch
    stages: int = 3  # stride-2 depthwise-separable stages after the stem (40×64 -> 3×4 with a stride-2 stem)
    patch_size: tuple[int, int] = EYE_PATCH_SIZE  # (width, height)
    corner_gap: float = EYE_CORNER_GAP
    # also read the landmark network's own 8 eye points (patch pixels) and answer a correction of them: the
    # landmark network places open lids well; what the patch adds is how far they close
    prior: bool = True
    kind: str = field(default="eye_refiner")  # tells a weights file's loader what it holds


def mean_eye() -> np.ndarray:
    """(8, 2) patch pixels of an open eye: the corners where the frame puts them, lids a third of the gap apart."""
    (x0, y), (x1, _) = patch_corners()
    t = np.array([0.25, 0.5, 0.75])
    xs = x0 + t * (x1 - x0)
    lift = np.array([0.12, 0.16, 0.12]) * (x1 - x0)
    upper = np.stack([xs, y - lift], 1)
    lower = np.stack([xs[::-1], y + lift[::-1] * 0.8], 1)
    return np.concatenate([[[x0, y]], upper, [[x1, y]], lower]).astype(np.float32)


class EyeRefiner(nn.Module):
    def __init__(self, config: EyeRefinerConfig | None = None):
        super().__init__()
        self.config = config = config or EyeRefinerConfig()
        c = config.width
        layers = [ConvBNReLU(3, c, 3, stride=config.stem_stride)]
        for _ in range(config.stages):
            layers += [DepthwiseSeparable(c, 2 * c, 2), DepthwiseSeparable(2 * c, 2 * c, 1)]
            c *= 2
        self.features = nn.Sequential(*layers)
        w, h = config.patch_size
        for _ in range(config.stages + (config.stem_stride == 2)):
            w, h = -(-w // 2), -(-h // 2)
        cells = w * h
        # flatten, not pooling: where a lid is in the patch is the answer, so position must survive
        self.squeeze = nn.Sequential(ConvBNReLU(c, 32, 1), nn.Flatten())
        inputs = 32 * cells + (16 if config.prior else 0)
        self.head = nn.Sequential(nn.Linear(inputs, 128), nn.ReLU(inplace=True), nn.Linear(128, 16))
        nn.init.zeros_(self.head[-1].weight)  # the untrained network answers the prior (or the mean eye)
        nn.init.zeros_(self.head[-1].bias)
        self.register_buffer("mean", torch.from_numpy(mean_eye()))

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 3, H, W) patches in [-1, 1] and, with `config.prior`, (N, 8, 2) prior points in patch pixels ->
        (N, 8, 2) points in patch pixels."""
        features = self.squeeze(self.features(x))
        if self.config.prior:
            start = prior
            features = torch.cat([features, ((prior - self.mean) / self.config.corner_gap).flatten(1)], 1)
        else:
            start = self.mean.expand(x.shape[0], 8, 2)
        return start + self.head(features).view(-1, 8, 2) * self.config.corner_gap

    def config_dict(self) -> dict:
        return asdict(self.config)


def export_onnx(model: EyeRefiner, path, metrics: dict | None = None, opset: int = 17) -> None:
    """Write the refiner as the ONNX file facemark.pipeline.eyes.EyeRefinerNetwork runs: inputs "patches"
    (N, 3, 40, 64) and, with a prior, "prior" (N, 8, 2) patch pixels; output "points" (N, 8, 2) patch pixels; N
    dynamic; config and metrics in its metadata."""
    import io
    import json

    import onnx

    from facemark.pipeline.eyes import EYES_FORMAT, EYES_VERSION

    model = model.eval()
    w, h = model.config.patch_size
    buffer = io.BytesIO()
    inputs = (torch.zeros(1, 3, h, w),) + ((model.mean[None].clone(),) if model.config.prior else ())
    names = ["patches"] + (["prior"] if model.config.prior else [])
    torch.onnx.export(model, inputs, buffer, input_names=names, output_names=["points"],
                      dynamic_axes={**{n: {0: "n"} for n in names}, "points": {0: "n"}}, opset_version=opset,
                      dynamo=False)
    graph = onnx.load_from_string(buffer.getvalue())
    for key, value in {"facemark_format": EYES_FORMAT, "facemark_version": str(EYES_VERSION),
                       "facemark_config": json.dumps(model.config_dict()),
                       "facemark_metrics": json.dumps(metrics or {})}.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))
