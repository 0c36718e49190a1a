"""Scoring against human 68-point labels: hand-made cases, the face88 anchor mapping, face matching."""

from __future__ import annotations

import numpy as np
import pytest

from facemark.labels.annotations import AnnotationError, read_pts_folder, write_pts
from facemark.layouts import (FACE88, FACE88_ANCHORS, IBUG68, IBUG68_ANCHORS, IBUG68_TO_FACE88,
                             ibug68_as_face88)
from facemark.evaluation.scoring import match_face, nme_against_ibug68, summarise


def human_shape() -> np.ndarray:
    """68 distinct points with the outer eye corners (36, 45) exactly 100 px apart."""
    rng = np.random.default_rng(1)
    points = rng.uniform(100, 300, size=(68, 2))
    points[36] = (150.0, 180.0)
    points[45] = (250.0, 180.0)
    return points


def test_ibug68_nme_of_a_uniform_offset_is_its_length_over_the_eye_corner_distance():
    truth = human_shape()
    pred = truth + (3.0, 4.0)  # 5 px everywhere, eye corners 100 px apart
    for subset in ("68", "inner51", "anchors34"):
        assert nme_against_ibug68(pred, "ibug68", truth, subset) == pytest.approx(0.05)


def test_inner51_leaves_the_jaw_out():
    truth = human_shape()
    pred = truth.copy()
    pred[:17] += 50.0  # only the jaw is wrong
    assert nme_against_ibug68(pred, "ibug68", truth, "inner51") == pytest.approx(0.0)
    expected = 17 * np.hypot(50, 50) / 68 / 100
    assert nme_against_ibug68(pred, "ibug68", truth, "68") == pytest.approx(expected)


def test_face88_is_scored_on_its_34_anchor_points_only():
    truth = human_shape()
    pred88 = np.full((88, 2), 1e6)  # points without an iBUG partner may be anywhere
    pred88[FACE88_ANCHORS] = truth[IBUG68_ANCHORS] + (0.0, 10.0)
    assert nme_against_ibug68(pred88, "face88", truth, "anchors34") == pytest.approx(0.10)
    with pytest.raises(ValueError, match="34 shared points"):
        nme_against_ibug68(pred88, "face88", truth, "68")


def test_anchor_mapping_follows_the_spec_and_respects_left_and_right():
    assert len(IBUG68_TO_FACE88) == 34
    assert IBUG68_TO_FACE88[8] == 10 and IBUG68_TO_FACE88[36] == 21 and IBUG68_TO_FACE88[45] == 33
    # the face88 normaliser (outer eye corners) is the image of iBUG's
    assert (IBUG68_TO_FACE88[IBUG68.normaliser[0]], IBUG68_TO_FACE88[IBUG68.normaliser[1]]) == FACE88.normaliser
    # mirroring commutes with the mapping: partner(mirror(i)) == mirror(partner(i))
    for i, j in IBUG68_TO_FACE88.items():
        assert IBUG68_TO_FACE88[IBUG68.flip[i]] == FACE88.flip[j], (i, j)


def test_ibug68_as_face88_keeps_the_shared_points_and_leaves_the_rest_missing():
    truth = human_shape()
    partial = ibug68_as_face88(truth)
    assert partial.shape == (88, 2)
    assert np.isnan(partial).all(axis=1).sum() == 88 - 34
    for i, j in IBUG68_TO_FACE88.items():
        np.testing.assert_array_equal(partial[j], truth[i])
    batch = ibug68_as_face88(np.stack([truth, truth + 1]))
    assert batch.shape == (2, 88, 2)
    with pytest.raises(ValueError):
        ibug68_as_face88(truth[:60])


def test_summary_counts_missed_faces_as_failures():
    s = summarise([0.05, None, 0.2])
    assert s["faces"] == 3 and s["not_found"] == 1
    assert s["nme"] == pytest.approx(0.125)  # over the faces found
    assert s["failure_rate@0.1"] == pytest.approx(2 / 3)  # 0.2 and the missed one
    # CED: a third of the faces from NME 0.05 to 0.1 -> area (0.05 / 0.1) × 1/3
    assert s["auc@0.1"] == pytest.approx(1 / 6, abs=1e-3)


def test_match_face_picks_the_annotated_face_or_none():
    truth = human_shape()
    elsewhere = truth + 1000.0
    near = truth + 3.0
    assert match_face([elsewhere, near], truth) == 1
    assert match_face([elsewhere], truth) is None
    assert match_face([], truth) is None
    partial = ibug68_as_face88(near)  # NaN rows are ignored when boxing a candidate
    assert match_face([partial], truth) == 0


def test_pts_folder_reads_every_face_and_names_a_broken_one(tmp_path):
    truth = human_shape()
    (tmp_path / "sub").mkdir()
    for name in ("a_1", "sub/b_1"):
        (tmp_path / f"{name}.jpg").write_bytes(b"not read here")
        write_pts(tmp_path / f"{name}.pts", truth)
    records = list(read_pts_folder(tmp_path))
    assert [r.image for r in records] == ["a_1.jpg", "sub/b_1.jpg"]
    assert all(r.scheme == "ibug68" for r in records)
    np.testing.assert_allclose(records[0].points, truth, atol=1e-3)

    write_pts(tmp_path / "lonely.pts", truth)
    with pytest.raises(AnnotationError, match="lonely.pts: no image beside it"):
        list(read_pts_folder(tmp_path))
    (tmp_path / "lonely.png").write_bytes(b"x")
    write_pts(tmp_path / "lonely.pts", truth[:5])
    with pytest.raises(AnnotationError, match="5 points fit no known layout .68 or 88.; give the layout file of 5-point labels with --layout"):
        list(read_pts_folder(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match="no .pts files"):
        list(read_pts_folder(tmp_path / "empty"))
    with pytest.raises(AnnotationError, match="is not a folder"):
        list(read_pts_folder(tmp_path / "missing"))


def test_five_points_are_eye_centres_nose_tip_and_mouth_corners_in_both_layouts():
    from facemark.evaluation.scoring import five_points

    truth = human_shape()
    five = five_points(truth, "ibug68")
    np.testing.assert_allclose(five[0], truth[36:42].mean(axis=0))
    np.testing.assert_allclose(five[1], truth[42:48].mean(axis=0))
    np.testing.assert_allclose(five[2:], truth[[30, 48, 54]])
    # a face88 shape whose eye contours are shifted copies around the same centres scores 0
    pred88 = np.full((88, 2), 1e6)
    pred88[FACE88_ANCHORS] = truth[IBUG68_ANCHORS]
    ring = np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1) * 7
    pred88[21:29], pred88[29:37] = five[0] + ring, five[1] + ring
    assert nme_against_ibug68(pred88, "face88", truth, "5pt") == pytest.approx(0.0, abs=1e-9)
    # a uniform 5-px offset: 0.05 of the 100-px eye-corner distance, like every other subset
    assert nme_against_ibug68(truth + (3.0, 4.0), "ibug68", truth, "5pt") == pytest.approx(0.05)
    assert nme_against_ibug68(pred88 + (3.0, 4.0), "face88", truth, "5pt") == pytest.approx(0.05)
