"""int8 landmark network: onnxruntime's quantized execution against the shipped float network.

    python benchmarks/quantization.py        # -> benchmarks/results/quantization.md (needs ../shared/data)

face88.onnx is quantized two ways with onnxruntime.quantization: static QDQ (int8 weights per channel, uint8
activations calibrated on 60 crops of LFPW train faces) and dynamic (uint8 weights, activations quantized at run
time). Each network, the float one included, predicts the crops of the AFW faces (framed on the float network's
points, levelled by their roll, as the refining pass frames them) and their mirrors, averaged as the passes do;
reported: ms per network call (1 thread, no spinning, batches of 1 and 2; median of 200 calls), how far the
points move from the float network's (crop pixels of the 128-px crop, and image pixels), and the NME against the
human labels over the 34 points face88 shares with iBUG. The runtime keeps a change of arithmetic only when no
point moves by more than 0.1 px on average.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from facemark import Landmarker
from facemark.detection.core import session_options
from facemark.evaluation.scoring import match_face, nme_against_ibug68
from facemark.images import load_image
from facemark.labels.annotations import read_pts_folder
from facemark.network import resolve_model_path
from facemark.pipeline.crops import crop_image, normalise_crop, roll_angle
from report import write_report

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "300w"


def framed_crops(landmarker: Landmarker, folder: Path, limit: int | None):
    """(crops (N, S, S, 3), transforms, human 68 points) of the faces of `folder` the landmarker finds."""
    crops, transforms, truths = [], [], []
    records = [r for r in read_pts_folder(folder) if r.scheme == "ibug68"][:limit]
    for r in records:
        rgb = load_image(folder / r.image)
        faces = landmarker.detect(rgb)
        i = match_face([f.points for f in faces], r.points)
        if i is None:
            continue
        p = faces[i].points
        t = landmarker.passes.framing(p, roll_angle(p, landmarker.scheme))
        crops.append(crop_image(rgb, t))
        transforms.append(t)
        truths.append(np.asarray(r.points, np.float64))
    return np.stack(crops), transforms, truths


def quantized_files(source: Path, calibration: np.ndarray, folder: Path) -> dict[str, Path]:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "prepared.onnx"
    quant_pre_process(str(source), str(prepared))

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"crops": calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self):
            return next(self.items, None)

    files = {"int8 static QDQ, per channel": folder / "static.onnx", "int8 dynamic": folder / "dynamic.onnx"}
    quantize_static(str(prepared), str(files["int8 static QDQ, per channel"]), Crops(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    quantize_dynamic(str(prepared), str(files["int8 dynamic"]), weight_type=QuantType.QUInt8)
    return files


def call_ms(session, x: np.ndarray, calls: int = 200) -> float:
    for _ in range(20):
        session.run(None, {"crops": x})
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        session.run(None, {"crops": x})
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def mirrored_points(session, landmarker: Landmarker, crops: np.ndarray) -> np.ndarray:
    """(N, P, 2) crop pixels: each crop's points averaged with its mirror's, as the passes average them."""
    network = landmarker.network
    out = []
    for start in range(0, len(crops), 32):
        c = crops[start:start + 32]
        x = normalise_crop(np.concatenate([c, c[:, :, ::-1]]))
        y = network.to_pixels(np.asarray(session.run(None, {"crops": x})[0], np.float64))
        n = len(c)
        out.append((y[:n] + landmarker.scheme.flip_points(y[n:], crops.shape[2])) / 2)
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="at most this many AFW faces")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import onnxruntime

    landmarker = Landmarker()
    calibration, _, _ = framed_crops(landmarker, SHARED / "lfpw_train", 60)
    crops, transforms, truths = framed_crops(landmarker, SHARED / "afw", args.limit)
    source = resolve_model_path("face88")
    with tempfile.TemporaryDirectory() as tmp:
        files = {"float (shipped)": source, **quantized_files(source, normalise_crop(calibration), Path(tmp))}
        rows, reference = [], None
        for name, path in files.items():
            session = onnxruntime.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
            x = normalise_crop(crops[:2])
            ms1, ms2 = call_ms(session, x[:1]), call_ms(session, x)
            points = mirrored_points(session, landmarker, crops)
            image = [t.to_image(p) for t, p in zip(transforms, points)]
            nme = float(np.mean([nme_against_ibug68(p, "face88", truth, "anchors34") for p, truth in zip(image, truths)]))
            if reference is None:
                reference = (points, image)
            moved = np.linalg.norm(points - reference[0], axis=-1)
            moved_image = np.concatenate([np.linalg.norm(a - b, axis=-1) for a, b in zip(image, reference[1])])
            rows.append(f"| {name} | {path.stat().st_size / 1e6:.2f} | {ms1:.2f} | {ms2:.2f} | {moved.mean():.3f} | "
                        f"{np.percentile(moved, 99):.2f} | {moved_image.mean():.3f} | {100 * nme:.2f}% |")
    lines = [f"{len(crops)} AFW faces (found by the float network's Landmarker), 128-px crops framed on its points; "
             f"onnxruntime {onnxruntime.__version__}, 1 thread, no spinning.", "",
             "| network | MB | ms, batch 1 | ms, batch 2 | points moved, mean (crop px) | 99th percentile (crop px) | "
             "mean (image px) | NME, anchors34 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|", *rows]
    write_report(args.out or REPO / "benchmarks" / "results" / "quantization.md",
                 "int8 landmark network against the float one", lines)


if __name__ == "__main__":
    main()
