import numpy as np
import pytest

from facemark.evaluation.metrics import auc, ced, failure_rate, landmark_metrics, per_image_nme
from facemark.layouts import FACE88


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


def test_nme_normalises_by_the_true_eye_corners_not_the_predicted_ones():
    """Errors on the eye corners themselves: the predicted eye distance differs from the true one, so a metric
    normalised by the prediction would give other numbers (and here another failure count)."""
    true = np.stack([_shape(), _shape()])
    pred = true.copy()
    # image 0: only the two outer eye corners wrong, 40 px outward each (predicted eye distance 180, true 100)
    pred[0, 21, 0] -= 40.0
    pred[0, 33, 0] += 40.0
    # image 1: every point 9 px down, and the corners 30 px inward (predicted eye distance 40)
    pred[1, :, 1] += 9.0
    pred[1, 21, 0] += 30.0
    pred[1, 33, 0] -= 30.0
    corner = np.hypot(30.0, 9.0)
    nme0 = 2 * 40.0 / 88 / 100  # 0.0091; by the predicted distance it would be 0.0051
    nme1 = (86 * 9.0 + 2 * corner) / 88 / 100  # 0.0951, under 0.10; by the predicted distance 0.238, a failure
    m = landmark_metrics(pred, true, FACE88)
    np.testing.assert_allclose(m["per_image_nme"], [nme0, nme1], rtol=1e-9)
    assert m["nme"] == pytest.approx((nme0 + nme1) / 2, rel=1e-9)
    assert m["failure_rate@0.1"] == 0.0
    # the left eye holds corner 21 and 7 other points: image 0 -> 40 / 8, image 1 -> (corner + 7 * 9) / 8
    assert m["region_nme"]["left_eye"] == pytest.approx((40.0 / 8 + (corner + 63.0) / 8) / 2 / 100, rel=1e-9)
    assert m["region_nme"]["nose"] == pytest.approx((0.0 + 9.0) / 2 / 100, rel=1e-9)


def test_ibug68_nme_uses_its_own_eye_corners():
    from facemark.layouts import IBUG68

    true = np.zeros((1, 68, 2))
    true[0, :, 1] = np.linspace(0, 80, 68)
    true[0, 36] = (10.0, 30.0)
    true[0, 45] = (60.0, 30.0)  # true eye distance 50
    pred = true.copy()
    pred[0, 45, 0] += 25.0  # one corner 25 px out: predicted eye distance 75
    m = landmark_metrics(pred, true, IBUG68)
    assert m["nme"] == pytest.approx(25.0 / 68 / 50, rel=1e-9)  # by the prediction: 25 / 68 / 75
    assert m["region_nme"]["right_eye"] == pytest.approx(25.0 / 6 / 50, rel=1e-9)
