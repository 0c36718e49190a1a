"""Convert facenet-pytorch's pretrained MTCNN weights into facemark's one compact weights file.

The weights (MIT licence, Tim Esler's facenet-pytorch; the networks are Kaipeng Zhang et al.'s MTCNN) ship
inside the facenet-pytorch wheel as three state dicts, facenet_pytorch/data/{pnet,rnet,onet}.pt. We read them
straight from the wheel, so facenet-pytorch is never installed (its pins clash with our torch):

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp
    python scripts/convert_mtcnn_weights.py /tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl
    python scripts/export_mtcnn_onnx.py      # then the ONNX files the runtime's detector runs

Key names and shapes stay as in facenet-pytorch (facemark's PNet/RNet/ONet use the same layer names and the
same (W, H, C) flattening before the dense layers, so no tensor is permuted). The file holds
{"format", "version", "source", "dtype", "pnet", "rnet", "onet"}. float16 halves it to ~1 MB; against
float32 on 45 AFW faces (100-300 px) it moved boxes and keypoints by 0.09 px (median, 0.4 px at most) and
scores by < 0.002, far below MTCNN's own jitter, and found the same faces.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import torch

from facemark.train.models.mtcnn_nets import FORMAT, VERSION, WEIGHTS_PATH, ONet, PNet, RNet

NETWORKS = {"pnet": PNet, "rnet": RNet, "onet": ONet}
EXPECTED_WHEEL = "facenet_pytorch-2.6.0-py3-none-any.whl"


def read_wheel(wheel: Path) -> dict[str, dict[str, torch.Tensor]]:
    with zipfile.ZipFile(wheel) as z:
        out = {}
        for name, cls in NETWORKS.items():
            blob = z.read(f"facenet_pytorch/data/{name}.pt")
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            cls().load_state_dict(state)  # strict: every key and shape must match ours
            out[name] = dict(state)
        return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", type=Path, nargs="?", default=Path("/tmp/fnp") / EXPECTED_WHEEL,
                   help=f"the downloaded {EXPECTED_WHEEL}")
    p.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    p.add_argument("--float32", action="store_true", help="keep float32 instead of storing float16")
    args = p.parse_args(argv)

    if not args.wheel.is_file():
        p.error(f"no wheel at {args.wheel}; fetch it with: pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp")
    digest = hashlib.sha256(args.wheel.read_bytes()).hexdigest()
    dtype = torch.float32 if args.float32 else torch.float16
    states = {name: {k: v.to(dtype) for k, v in state.items()} for name, state in read_wheel(args.wheel).items()}
    blob = {"format": FORMAT, "version": VERSION, "dtype": str(dtype).removeprefix("torch."),
            "source": f"facenet-pytorch 2.6.0 wheel ({args.wheel.name}, sha256 {digest}), MIT licence, "
                      "Tim Esler; MTCNN by Kaipeng Zhang et al. 2016",
            **states}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # through memory: torch.save names its zip folder after the file, so a temporary name would leak into the
    # bytes; this way the same wheel always gives the same file
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    tmp = args.out.with_name(f".{args.out.name}.tmp{os.getpid()}")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, args.out)
    params = sum(v.numel() for s in states.values() for v in s.values())
    print(f"wrote {args.out} ({params} parameters, {blob['dtype']}, {args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
