"""Heavy motion blur must not turn answers upside down, and faces cut by the image's edge come back right or not
at all, with their points outside the image flagged (issue 22, cases 3 and 5)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facemark.labels.annotations import read_pts_folder
from facemark.landmarker import Landmarker
from facemark.cli import main
from facemark.images import load_image
from facemark.layouts import FACE88, FACE88_ANCHORS, IBUG68_ANCHORS
from facemark.evaluation.scoring import match_face

from locations import ASTRONAUT

LEFT_OUTER, RIGHT_OUTER = FACE88.normaliser  # outer eye corners


@pytest.fixture(scope="module")
def landmarker():
    return Landmarker(threads=1)


def motion_blur(rgb: np.ndarray, length: int, angle_deg: float = 45.0) -> np.ndarray:
    """`rgb` blurred along a straight line `length` pixels long at `angle_deg` (a moving camera)."""
    kernel = np.zeros((length, length), np.float32)
    c = length // 2
    for t in np.linspace(-c, c, 4 * length):
        kernel[round(c + t * np.sin(np.radians(angle_deg))), round(c + t * np.cos(np.radians(angle_deg)))] = 1
    return cv2.filter2D(rgb, -1, kernel / kernel.sum())


def roll_deg(points: np.ndarray, left: int, right: int) -> float:
    dx, dy = points[right] - points[left]
    return float(np.degrees(np.arctan2(dy, dx)))


def turned_by(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.mark.parametrize("length", [15, 25])
def test_blurred_sample_never_comes_back_turned(landmarker, length):
    """The sample blurred by a 25-px line at 45° came back turned by 130° (trust 0.00): now every face returned
    is upright (within 60° of the sharp face's roll)."""
    rgb = load_image(ASTRONAUT)
    (sharp,) = landmarker.detect(rgb)
    upright = roll_deg(sharp.points, LEFT_OUTER, RIGHT_OUTER)
    for face in landmarker.detect(motion_blur(rgb, length)):
        assert turned_by(roll_deg(face.points, LEFT_OUTER, RIGHT_OUTER), upright) < 60


def test_blurred_helen_faces_never_come_back_turned(landmarker, shared_data):
    """The first 60 HELEN-train faces blurred by a 25-px line at 45°: no face returned turned by more than 60°
    from its human labels' roll, and at least 50 found."""
    folder = shared_data / "300w" / "helen_train"
    found = 0
    for record in list(read_pts_folder(folder))[:60]:
        faces = landmarker.detect(motion_blur(load_image(folder / record.image), 25))
        i = match_face([f.points for f in faces], record.points)
        if i is None:
            continue
        found += 1
        assert turned_by(roll_deg(faces[i].points, LEFT_OUTER, RIGHT_OUTER), roll_deg(record.points, 36, 45)) < 60
    assert found >= 50


def test_faces_cut_through_the_middle_come_back_right_or_not_at_all(landmarker, shared_data):
    """The first 60 HELEN-train faces with the image cut at the middle of their points (half of them outside):
    at least 38 returned right, and at most 10 % of those returned wrong (NME over the visible shared points >
    0.1). Measured: 44 right, 1 wrong with the detector's partly mirrored border and its lower score for boxes
    reaching beyond the edge; 30 right, 1 wrong without that lower score; 13 right, 1 wrong with a black border
    instead of the mirrored one; before issue 22, 6 wrong of 18."""
    folder = shared_data / "300w" / "helen_train"
    right = wrong = 0
    for record in list(read_pts_folder(folder))[:60]:
        top = round(float(np.median(record.points[:, 1])))
        truth = record.points - [0, top]
        faces = landmarker.detect(np.ascontiguousarray(load_image(folder / record.image)[top:]))
        i = match_face([f.points for f in faces], truth)
        if i is None:
            continue
        predicted, labelled = faces[i].points[FACE88_ANCHORS], truth[IBUG68_ANCHORS]
        seen = labelled[:, 1] >= 0
        error = np.linalg.norm(predicted[seen] - labelled[seen], axis=1).mean()
        if error / np.linalg.norm(record.points[36] - record.points[45]) > 0.1:
            wrong += 1
        else:
            right += 1
    assert right >= 38 and wrong <= 0.1 * (right + wrong), (right, wrong)


def test_points_outside_the_image_are_flagged(landmarker, tmp_path):
    """The sample cut by the top edge through its brows: the face is found, its visible points stay where the
    whole image puts them, and exactly the points above the edge are flagged, in the API and the JSON."""
    rgb = load_image(ASTRONAUT)
    (whole,) = landmarker.detect(rgb)
    top = round(float(np.quantile(whole.points[:, 1], 0.3)))
    cut = np.ascontiguousarray(rgb[top:])
    (face,) = landmarker.detect(cut)
    expected = whole.points - [0, top]
    above = expected[:, 1] < -0.5
    assert 5 < above.sum() < len(above) // 2
    eye_distance = np.linalg.norm(expected[LEFT_OUTER] - expected[RIGHT_OUTER])
    assert np.linalg.norm(face.points[~above] - expected[~above], axis=1).mean() < 0.05 * eye_distance
    # the flag follows the returned points; those the whole image puts well above the edge are all flagged
    assert face.outside[expected[:, 1] < -0.1 * eye_distance].all()
    assert not face.outside[expected[:, 1] > 0.1 * eye_distance].any()
    assert face.to_dict()["outside"] == [int(i) for i in np.flatnonzero(face.outside)]
    path = tmp_path / "cut.png"
    cv2.imwrite(str(path), cut[..., ::-1])
    assert main(["predict", str(path), "--json", str(tmp_path / "cut.jsonl"), "--quiet"]) == 0
    (record,) = [json.loads(line) for line in (tmp_path / "cut.jsonl").read_text().splitlines()]
    assert record["faces"][0]["outside"] == [int(i) for i in np.flatnonzero(face.outside)]
    assert "outside" not in whole.to_dict()
