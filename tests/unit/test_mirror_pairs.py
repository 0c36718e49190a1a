"""The mirror permutations checked against faces, not against themselves.

A labeller that knows nothing of facemark's permutation labels an image and its mirror; the mirror's labels,
mapped back through the scheme's flip, must land on the image's own labels. face88 is checked with the teacher
(MediaPipe), ibug68 with dlib's 68-point predictor. Both checks are also run with a permutation that swaps the
partners of two neighbouring jaw points and of two neighbouring mouth points (still a valid involution that maps
every region onto its mirror, so test_scheme.py's checks pass it): that is the error the check must see.

Errors are per point, over the outer-eye-corner distance. Measured on examples/astronaut.png:
- face88 / teacher: correct permutation, worst point 0.032; jaw pair (3, 4) swapped 0.165, mouth pair (60, 61) 0.192
- ibug68 / dlib:    correct permutation, worst point 0.033; jaw pair (3, 4) swapped 0.201, mouth pair (49, 50) 0.151
Bounds: the correct permutation within 0.05 (1.5× the measured worst point), a swapped pair beyond 0.10
(two thirds of the smallest measured one).
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from facemark.images import load_image
from facemark.layouts import FACE88, IBUG68, Scheme
from measure_accuracy import ASTRONAUT, dlib_68

CORRECT_WITHIN = 0.05
SWAPPED_BEYOND = 0.10


def swap_partners(scheme: Scheme, a: int, b: int) -> Scheme:
    """The scheme with a mapped to b's mirror and b to a's mirror (and back): still an involution."""
    flip = list(scheme.flip)
    fa, fb = flip[a], flip[b]
    flip[a], flip[fb], flip[b], flip[fa] = fb, a, fa, b
    return dataclasses.replace(scheme, flip=tuple(flip))


def worst_point_error(scheme: Scheme, points: np.ndarray, mirror_points: np.ndarray, width: int) -> float:
    """Largest distance between the image's labels and its mirror's labels mapped back through the scheme's flip,
    over the labels' outer-eye-corner distance."""
    back = scheme.flip_points(mirror_points, width=width)
    a, b = scheme.normaliser
    return float(np.linalg.norm(back - points, axis=1).max() / np.linalg.norm(points[a] - points[b]))


def _check(scheme: Scheme, points, mirror_points, width, jaw_pair, mouth_pair):
    correct = worst_point_error(scheme, points, mirror_points, width)
    assert correct < CORRECT_WITHIN, f"{scheme.name}: the mirror's labels land {correct:.3f} from the image's"
    for region, (a, b) in (("face_profile", jaw_pair), ("mouth", mouth_pair)):
        assert {a, b} <= set(scheme.region_indices(region)) and scheme.flip[a] not in (a, b)
        swapped = worst_point_error(swap_partners(scheme, a, b), points, mirror_points, width)
        assert swapped > SWAPPED_BEYOND > 2 * correct, f"{scheme.name}: a swapped {region} pair gives {swapped:.3f}"


def test_face88_mirror_pairs_against_the_teacher(astronaut_labels):
    from facemark.labels.teachers import MediaPipeTeacher

    rgb, points = astronaut_labels
    teacher = MediaPipeTeacher()
    try:
        mirrored = teacher.label(np.ascontiguousarray(rgb[:, ::-1]))
    finally:
        teacher.close()
    assert mirrored.points is not None, mirrored.error
    _check(FACE88, points, np.asarray(mirrored.points, np.float64), rgb.shape[1], jaw_pair=(3, 4),
           mouth_pair=(60, 61))


def test_ibug68_mirror_pairs_against_dlib():
    pytest.importorskip("dlib")
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("could not import 'face_recognition_models' (dlib's 68-point model)")
    rgb = load_image(ASTRONAUT)
    points, mirrored = dlib_68(rgb), dlib_68(np.ascontiguousarray(rgb[:, ::-1]))
    _check(IBUG68, points, mirrored, rgb.shape[1], jaw_pair=(3, 4), mouth_pair=(49, 50))
