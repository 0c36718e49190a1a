"""Head pose (facemark.geometry.pose): the solver recovers known rotations of the 3-D model exactly, the angle convention
is the documented one, and a real face gets a sensible pose that follows an in-plane rotation of its image."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facemark.geometry.pose import (DEFAULT_FOV_DEG, PoseError, angles_to_rotation, camera_matrix, head_pose,
                           mean_face_3d, rotation_angle_between, rotation_to_angles)
from facemark.layouts import FACE88, FACE88_ANCHORS, IBUG68_ANCHORS

SIZE = (640, 480)


def project(yaw, pitch, roll, distance=600.0, shift=(0.0, 0.0), fov=DEFAULT_FOV_DEG, size=SIZE):
    """The mean face turned by (yaw, pitch, roll), `distance` mm in front of a pinhole camera: (88, 2) pixels."""
    r = angles_to_rotation(yaw, pitch, roll)
    t = np.array([shift[0], shift[1], distance])
    points, _ = cv2.projectPoints(mean_face_3d(), cv2.Rodrigues(r)[0], t, camera_matrix(size, fov), None)
    return points.reshape(-1, 2), r, t


def test_mean_face_model_is_symmetric_and_metric():
    m = mean_face_3d()
    assert m.shape == (88, 3)
    a, b = FACE88.normaliser
    assert np.linalg.norm(m[a] - m[b]) == pytest.approx(90.0, abs=0.01)  # outer eye corners 90 mm apart
    mirrored = m[list(FACE88.flip)] * [-1, 1, 1]
    assert np.abs(mirrored - m).max() < 1e-6
    nose_tip, chin = FACE88.region_slice("nose").start + 3, FACE88.region_slice("face_profile").start + 10
    assert m[nose_tip, 2] < -25  # the nose tip is nearer the camera than the eye corners (z away from it)
    assert m[chin, 1] > m[nose_tip, 1] > 0  # y down: eyes, then the nose tip, then the chin


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (0, 20, 0), (0, 0, -25), (-40, 15, 10), (25, -20, 30)])
def test_known_rotation_is_recovered(angles):
    points, r, t = project(*angles, shift=(80.0, -40.0))
    pose = head_pose(points, image_size=SIZE)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx(angles, abs=0.05)
    assert rotation_angle_between(pose.rotation, r) < 0.05
    assert np.allclose(pose.translation, t, atol=0.5)
    assert pose.reprojection_error < 0.01
    assert np.allclose(cv2.Rodrigues(pose.rotation_vector)[0], pose.rotation, atol=1e-9)


def test_sign_conventions():
    # yaw > 0: nose toward the image's right; pitch > 0: nose up; roll > 0: clockwise in the image
    nose = FACE88.region_slice("nose").start + 3
    a, b = FACE88.normaliser
    frontal, _, _ = project(0, 0, 0)
    yawed, _, _ = project(20, 0, 0)
    pitched, _, _ = project(0, 20, 0)
    rolled, _, _ = project(0, 0, 20)
    mid = lambda p: (p[a] + p[b]) / 2  # noqa: E731
    assert (yawed[nose] - mid(yawed))[0] > (frontal[nose] - mid(frontal))[0] + 10
    assert (pitched[nose] - mid(pitched))[1] < (frontal[nose] - mid(frontal))[1] - 5
    assert rolled[b, 1] > rolled[a, 1] + 10  # the image-right eye corner lower: turned clockwise


def test_angles_round_trip():
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in rng.uniform([-80, -60, -170], [80, 60, 170], (50, 3)):
        assert rotation_to_angles(angles_to_rotation(yaw, pitch, roll)) == pytest.approx((yaw, pitch, roll), abs=1e-9)


def test_field_of_view_changes_distance_not_angles():
    points, _, _ = project(20, -10, 5, fov=60)
    wide = head_pose(points, image_size=SIZE, fov_deg=60)
    narrow = head_pose(points, image_size=SIZE, fov_deg=30)
    assert abs(wide.yaw - narrow.yaw) < 3 and abs(wide.roll - narrow.roll) < 0.5
    ratio = math.tan(math.radians(30)) / math.tan(math.radians(15))
    assert narrow.translation[2] / wide.translation[2] == pytest.approx(ratio, rel=0.05)
    f = camera_matrix(SIZE, 60)[0, 0]
    assert f == pytest.approx(320 / math.tan(math.radians(30)))
    full = head_pose(points, camera=camera_matrix(SIZE, 60))
    assert full.yaw == pytest.approx(wide.yaw)


def test_ibug68_points_give_the_same_pose():
    points, _, _ = project(-25, 10, 8)
    ibug = np.full((68, 2), np.nan)
    ibug[IBUG68_ANCHORS] = points[FACE88_ANCHORS]
    ibug[np.isnan(ibug)] = 0.0  # points pose does not use must not matter
    pose = head_pose(ibug, "ibug68", image_size=SIZE)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((-25, 10, 8), abs=0.1)


def test_bad_inputs_raise_one_line_errors():
    points, _, _ = project(0, 0, 0)
    with pytest.raises(PoseError, match="expected \\(88, 2\\)"):
        head_pose(points[:10])
    bad = points.copy()
    bad[21] = np.nan
    with pytest.raises(PoseError, match="finite"):
        head_pose(bad)
    with pytest.raises(PoseError, match="field of view"):
        head_pose(points, image_size=SIZE, fov_deg=0)
    with pytest.raises(PoseError, match="image size"):
        head_pose(points, image_size=(0, 480))
    with pytest.raises(PoseError, match="3×3"):
        head_pose(points, camera=np.eye(2))


def test_real_face_pose_follows_an_image_rotation(landmarker, astronaut):
    face = landmarker.detect(astronaut)[0]
    pose = face.pose
    assert abs(pose.yaw) < 20 and abs(pose.pitch) < 30 and abs(pose.roll) < 10  # a portrait, facing the camera
    assert 300 < pose.translation[2] < 1500  # mm: a head filling a fifth of a 60° picture is under 1.5 m away
    assert face.head_pose(fov_deg=40).translation[2] > pose.translation[2]
    # turn the image 20° clockwise about its centre (the camera's axis): the head turns by exactly a 20° roll
    # of the camera frame, so its new rotation is Rz(20°) · the old one
    h, w = astronaut.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -20, 1.0)
    turned = cv2.warpAffine(astronaut, m, (w, h), flags=cv2.INTER_LINEAR)
    again = landmarker.detect(turned)[0].pose
    assert rotation_angle_between(again.rotation, angles_to_rotation(0, 0, 20) @ pose.rotation) < 4
    assert again.roll - pose.roll == pytest.approx(20, abs=4)
