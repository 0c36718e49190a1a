"""Derive the mean 3-D face88 model used for head pose (facemark/weights/face88_mean_face_3d.json).

    python scripts/make_mean_face.py --images ../shared/data/celeba/images --count 3000

MediaPipe Face Mesh (0.10.21, refine_landmarks) gives 478 vertices per face with x, y normalised by the image's
width and height and a relative depth z "of roughly the same scale as x"; in pixels each vertex is
(x·W, y·H, z·W). The 88 face88 vertices (facemark.labels.teachers.MEDIAPIPE_TO_FACE88) of many CelebA faces are
averaged after a 3-D similarity alignment (Umeyama 1991), in three steps:

1. every face centred and scaled to an outer-eye-corner distance of 1, then averaged as it stands (CelebA faces
   are upright, so the average's orientation is the average pose of a CelebA photo);
2. the average made left/right symmetric: averaged with its own mirror image (x -> -x, points swapped through
   the layout's mirror permutation), mirrored about the vertical plane through the pair midpoints;
3. only *frontal* faces kept: those whose rotation onto the symmetric average is under 10° (yaw, pitch and roll
   each), then steps 1-2 again on them alone, aligned by rotation as well.

The result's axes are the camera's (x right, y down, z away from the camera) for a frontal face: the head
looks along -z. Origin: the midpoint of the outer eye corners (face88 points 21 and 33). Unit: millimetres,
with the outer eye corners 90 mm apart (adult ex-ex width, about 88-92 mm: Farkas, "Anthropometry of the head
and face", 1994).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from facemark.images import load_image
from facemark.geometry.pose import EYE_CORNER_DISTANCE_MM, rotation_to_angles, similarity_3d
from facemark.layouts import FACE88
from facemark.labels.teachers import MEDIAPIPE_TO_FACE88, import_mediapipe

REPO = Path(__file__).resolve().parents[1]

MIRROR_X = np.array([-1.0, 1.0, 1.0])


def mesh_faces(images: list[Path]) -> list[np.ndarray]:
    mp = import_mediapipe()
    faces = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        for i, path in enumerate(images):
            rgb = load_image(path)
            h, w = rgb.shape[:2]
            result = mesh.process(rgb)
            if result.multi_face_landmarks:
                lm = result.multi_face_landmarks[0].landmark
                xyz = np.array([(p.x * w - 0.5, p.y * h - 0.5, p.z * w) for p in lm], np.float64)
                faces.append(xyz[MEDIAPIPE_TO_FACE88])
            if (i + 1) % 500 == 0:
                print(f"{i + 1}/{len(images)} images, {len(faces)} faces", file=sys.stderr, flush=True)
    return faces


def normalised(face: np.ndarray) -> np.ndarray:
    a, b = FACE88.normaliser
    centre = (face[a] + face[b]) / 2
    return (face - centre) / np.linalg.norm(face[a] - face[b])


def symmetric(shape: np.ndarray) -> np.ndarray:
    """The shape averaged with its mirror image, both placed about the mirror plane of the shape's own pairs."""
    mirrored = shape[list(FACE88.flip)] * MIRROR_X
    scale, rotation, shift = similarity_3d(mirrored, shape, allow_scale=False)
    sym = (shape + mirrored @ rotation.T + shift) / 2
    # frame: x along the pair differences (image-left to image-right), y down in the symmetry plane
    pairs = [(i, j) for i, j in enumerate(FACE88.flip) if i < j]
    diffs = np.array([sym[j] - sym[i] for i, j in pairs])
    x_axis = np.linalg.svd(diffs, full_matrices=False)[2][0]
    if x_axis[0] < 0:
        x_axis = -x_axis
    y_axis = np.array([0.0, 1.0, 0.0]) - x_axis * x_axis[1]
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    out = normalised(sym) @ np.stack([x_axis, y_axis, z_axis]).T
    out[:, 0] = (out[:, 0] - out[list(FACE88.flip), 0]) / 2  # exactly symmetric
    out[:, 1:] = (out[:, 1:] + out[list(FACE88.flip), 1:]) / 2
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder of face photos (CelebA)")
    parser.add_argument("--count", type=int, default=3000, help="images to use (every k-th of the sorted folder)")
    parser.add_argument("--max-angle", type=float, default=10.0, help="frontal: yaw, pitch and roll under this")
    parser.add_argument("--out", default=str(REPO / "src" / "facemark" / "weights" / "face88_mean_face_3d.json"))
    args = parser.parse_args()

    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    step = max(1, len(files) // args.count)
    faces = [normalised(f) for f in mesh_faces(files[::step][:args.count])]
    mean = symmetric(np.mean(faces, axis=0))
    angles = []
    for face in faces:
        _, rotation, _ = similarity_3d(face, mean)
        angles.append(rotation_to_angles(rotation.T))
    angles = np.array(angles)
    frontal = [f for f, a in zip(faces, angles) if np.all(np.abs(a) < args.max_angle)]
    aligned = []
    for face in frontal:
        s, rotation, shift = similarity_3d(face, mean)
        aligned.append(s * face @ rotation.T + shift)
    model = symmetric(np.mean(aligned, axis=0)) * EYE_CORNER_DISTANCE_MM
    spread = np.sqrt(np.mean([np.sum((normalised(a) * EYE_CORNER_DISTANCE_MM - model) ** 2, axis=1) for a in aligned]))
    record = {
        "scheme": "face88",
        "unit": "mm",
        "axes": "camera axes of a frontal face: x right (image's), y down, z away from the camera; "
                "origin at the midpoint of the outer eye corners (21, 33), which are 90 mm apart",
        "source": f"MediaPipe Face Mesh 0.10.21 (x*W, y*H, z*W) of {len(frontal)} frontal CelebA faces "
                  f"(of {len(faces)} meshed), similarity-aligned, averaged, made symmetric: "
                  "scripts/make_mean_face.py",
        "rms_spread_mm": round(float(spread), 2),
        "points": [[round(float(v), 3) for v in p] for p in model],
    }
    points = record.pop("points")
    text = json.dumps(record, indent=1)[:-2] + ',\n "points": [\n' + ",\n".join(f"  {json.dumps(p)}" for p in points)
    Path(args.out).write_text(text + "\n ]\n}\n")
    print(f"{len(frontal)} frontal of {len(faces)} faces; rms spread {spread:.2f} mm -> {args.out}")


if __name__ == "__main__":
    main()
