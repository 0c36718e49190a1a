"""Export MTCNN's three networks (facemark/train/models/mtcnn_weights.pt) to the ONNX files the runtime's MTCNN
detector runs on onnxruntime (facemark/detection/mtcnn/{pnet,rnet,onet}.onnx):

    python scripts/export_mtcnn_onnx.py

Inputs "image": float32 N×3×H×W normalised as (x - 127.5) / 128 (P-Net: any H, W ≥ 12; R-Net 24×24; O-Net
48×48). Outputs as the torch networks return them: P-Net "prob" N×H'×W', "reg" N×4×H'×W'; R-Net "prob" N,
"reg" N×4; O-Net "prob" N, "reg" N×4, "marks" N×10. Weight tensors are stored in float16 behind Cast nodes
(facemark.train.export.compact_initializers), folded back to float32 when onnxruntime loads the file. Checked
here against torch on random inputs and printed.
"""

from __future__ import annotations

import argparse
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from facemark.train.export import compact_initializers
from facemark.train.models.mtcnn_nets import load_networks

REPO = Path(__file__).resolve().parents[1]

OUT = REPO / "src" / "facemark" / "detection" / "mtcnn"
OUTPUTS = {"pnet": ["prob", "reg"], "rnet": ["prob", "reg"], "onet": ["prob", "reg", "marks"]}
SIZES = {"pnet": (37, 51), "rnet": (24, 24), "onet": (48, 48)}


def export(name: str, net: torch.nn.Module) -> Path:
    import onnx
    import onnxruntime

    h, w = SIZES[name]
    dummy = torch.zeros(2, 3, h, w)
    axes = {"image": {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS[name]}}
    if name == "pnet":  # fully convolutional: any image size
        axes["image"].update({2: "height", 3: "width"})
        axes["prob"].update({1: "rows", 2: "cols"})
        axes["reg"].update({2: "rows", 3: "cols"})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        torch.onnx.export(net, (dummy,), buffer, dynamo=False, opset_version=17, input_names=["image"],
                          output_names=OUTPUTS[name], dynamic_axes=axes, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    compact_initializers(model)
    model.producer_name = "facemark"
    model.doc_string = f"MTCNN {name} (Zhang et al. 2016), weights from facenet-pytorch 2.6.0 (MIT): LICENSE-weights.md"
    onnx.checker.check_model(model)
    path = OUT / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, h + 10 * (name == "pnet"), w + 7 * (name == "pnet")) * 2 - 1
    with torch.no_grad():
        expected = [t.numpy() for t in net(x)]
    got = session.run(None, {"image": x.numpy()})
    diff = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    print(f"{name}: {path} ({path.stat().st_size:,} bytes), onnxruntime vs torch max |diff| {diff:.1e}")
    return path


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options; --help says what it does
    for name, net in zip(("pnet", "rnet", "onet"), load_networks()):
        export(name, net)


if __name__ == "__main__":
    main()
