"""Accuracy floors of the shipped models (facemark/weights/): a model whose error grows by a third fails here.

Every figure a test holds about a shipped model lives in MEASURED (tests/accuracy_bounds.py). When a model is replaced, re-measure:

    .venv/bin/python tests/measure_accuracy.py --shared      # (without --shared: the bundled samples only)

and paste the MEASURED it prints. Each bound is measured × MARGIN: 1.15 for the accuracy figures leaves room
for float differences between machines and libraries, and a model 1/3 worse (× 1.33) fails. How the samples
and labels are made:
tests/measure_accuracy.py (the sample image and four exact warps of it; face88 against the MediaPipe teacher,
ibug68 against dlib's 68 points in tests/data/astronaut_ibug68.pts; held out: the validation identities of AFW and
HELEN train in ../shared/data).
"""

from __future__ import annotations

import numpy as np
import pytest

from facemark.landmarker import Landmarker
from facemark.images import load_image
from measure_accuracy import ASTRONAUT, heldout_nme, ibug68_labels, model_nmes, models_agree

from accuracy_bounds import BOUND, MEASURED


@pytest.fixture(scope="module")
def face88():
    return Landmarker()


@pytest.fixture(scope="module")
def ibug68():
    return Landmarker(model="ibug68")


def _check(name: str, value: float) -> None:
    assert value < BOUND[name], (f"{name}: {value:.4f}, over the floor {BOUND[name]:.4f} (measured "
                                 f"{MEASURED[name]:.4f}); a replaced model? re-measure: tests/measure_accuracy.py")


def test_face88_against_the_teachers_labels(face88, astronaut_labels):
    rgb, points = astronaut_labels
    nmes = model_nmes(face88, rgb, points)
    _check("face88_vs_teacher", float(np.mean(nmes)))


def test_ibug68_against_dlibs_68_points(ibug68):
    nmes = model_nmes(ibug68, load_image(ASTRONAUT), ibug68_labels())
    _check("ibug68_vs_dlib68", float(np.mean(nmes)))


def test_ibug68_and_face88_agree_on_their_shared_points(face88, ibug68):
    """Trained on different data and layouts, the two models must still agree where their layouts meet."""
    _check("ibug68_vs_face88_anchors34", models_agree(face88, ibug68, load_image(ASTRONAUT)))


@pytest.mark.shared
def test_face88_on_held_out_human_labels(shared_data, face88):
    """Trained with AFW, HELEN and LFPW train's 34 shared points but their validation identities: those are held out."""
    _check("face88_heldout_anchors34", heldout_nme(face88, "anchors34"))


@pytest.mark.shared
def test_ibug68_on_held_out_human_labels(shared_data, ibug68):
    """Trained on AFW, HELEN and LFPW train but their validation identities, scored as the benchmark does."""
    _check("ibug68_heldout", heldout_nme(ibug68, "68"))
