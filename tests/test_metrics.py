import numpy as np
import pytest

from facemark.metrics import auc, ced, failure_rate, landmark_metrics, per_image_nme
from facemark.scheme import FACE88


def _shape(iod=100.0):
    pts = np.zeros((88, 2))
    pts[:, 0] = np.linspace(0, 50, 88)
    pts[21] = (0.0, 0.0)
    pts[33] = (iod, 0.0)
    return pts


def test_metrics_against_hand_computed_values():
    true = np.stack([_shape(), _shape()])
    pred = true.copy()
    pred[0, :, 0] += 3.0  # image 0: every point 3 px right -> NME 0.03
    pred[1, :, 1] -= 20.0  # image 1: every point 20 px up -> NME 0.20 (a failure at 0.10)
    m = landmark_metrics(pred, true, FACE88)
    assert m["nme"] == pytest.approx((0.03 + 0.20) / 2)
    # MAE over all 2*88 coordinates per image: image 0 -> 3/2, image 1 -> 20/2
    assert m["mae_px"] == pytest.approx((1.5 + 10.0) / 2)
    assert m["mse_px"] == pytest.approx((9 / 2 + 400 / 2) / 2)
    assert m["failure_rate@0.1"] == 0.5
    # CED: image 0 counts from 0.03 on, image 1 never (within 0.10): area = 0.5 * (0.10 - 0.03) / 0.10
    assert m["auc@0.1"] == pytest.approx(0.35, abs=2e-3)
    assert m["region_nme"]["left_eye"] == pytest.approx((0.03 + 0.20) / 2)


def test_region_nme_only_counts_its_points():
    true = np.stack([_shape()])
    pred = true.copy()
    pred[0, FACE88.region_slice("mouth"), 0] += 10.0
    m = landmark_metrics(pred, true, FACE88)
    assert m["region_nme"]["mouth"] == pytest.approx(0.10)
    assert m["region_nme"]["nose"] == 0.0
    assert m["nme"] == pytest.approx(0.10 * 22 / 88)


def test_ced_auc_failure_edge_cases():
    assert auc(np.zeros(5)) == pytest.approx(1.0)
    assert auc(np.full(5, 0.5)) == 0.0
    assert failure_rate(np.array([0.05, 0.1, 0.11])) == pytest.approx(1 / 3)
    x, y = ced(np.array([0.02, 0.04]), threshold=0.1, steps=11)
    assert y[0] == 0 and y[2] == 0.5 and y[4] == 1.0 and y[-1] == 1.0


def test_per_image_nme_subset_and_shape_check():
    true = np.zeros((1, 3, 2))
    pred = np.array([[[3.0, 4.0], [0.0, 0.0], [0.0, 0.0]]])
    assert per_image_nme(pred, true, np.array([10.0]))[0] == pytest.approx(5 / 3 / 10)
    assert per_image_nme(pred, true, np.array([10.0]), np.array([0]))[0] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        landmark_metrics(pred[:, :2], true, FACE88)
