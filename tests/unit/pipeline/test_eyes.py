"""Eye patches and the eye refiner (facemark.pipeline.eyes): the framing and its exact inverse, patches that show
the eye where its points say, lids replaced and nothing else, the ONNX file's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facemark.layouts import FACE88, IBUG68
from facemark.network import OnnxModelError
from facemark.pipeline.crops import crop_image
from facemark.pipeline.eyes import (EYE_CORNER_GAP, EYE_LIDS, EYE_PATCH_SIZE, MIRROR_OFFSETS, EyeRefinerNetwork,
                                    eye_patches, eye_transform, from_patch, patch_corners, refine_lids, to_patch)

LEFT, RIGHT = FACE88.region_slice("left_eye"), FACE88.region_slice("right_eye")


def _eye(cx: float, cy: float, width: float, roll: float, opening: float) -> np.ndarray:
    """An (8, 2) face88 eye: corners `width` apart, turned by `roll` radians, lids `opening` × width apart."""
    t = np.array([-0.5, -0.25, 0.0, 0.25, 0.5, 0.25, 0.0, -0.25])
    h = np.array([0, -1, -1.2, -1, 0, 1, 1.2, 1]) * opening / 2.4 * 2
    local = np.stack([t * width, h * width / 2], 1)
    c, s = math.cos(roll), math.sin(roll)
    return local @ np.array([[c, s], [-s, c]]) + [cx, cy]


def _face(roll: float = 0.2, opening: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(0)
    points = rng.uniform(80, 220, (88, 2))
    c, s = math.cos(roll), math.sin(roll)
    points[LEFT] = _eye(150 - 30 * c, 150 - 30 * s, 24, roll, opening)
    points[RIGHT] = _eye(150 + 30 * c, 150 + 30 * s, 24, roll, opening)
    return points


@pytest.mark.parametrize("mirrored", [False, True])
def test_framing_puts_the_corners_in_place_and_inverts_exactly(mirrored):
    points = _face()
    eye = points[RIGHT if mirrored else LEFT]
    t = eye_transform(eye)
    patch = to_patch(t, eye, mirrored)
    np.testing.assert_allclose(patch[[0, 4]], patch_corners(), atol=1e-9)
    # the upper lid stays above the corners' line, mirrored or not
    assert (patch[[1, 2, 3], 1] < patch_corners()[0, 1]).all() and (patch[[5, 6, 7], 1] > patch_corners()[0, 1]).all()
    moved = eye_transform(eye, shift=(2.0, -1.5), zoom=1.2, turn=0.1)
    np.testing.assert_allclose(from_patch(moved, to_patch(moved, eye, mirrored), mirrored), eye, atol=1e-9)
    gap = np.linalg.norm(np.subtract(*to_patch(moved, eye, mirrored)[[0, 4]]))
    assert gap == pytest.approx(EYE_CORNER_GAP * 1.2)


def test_the_mirrored_eye_is_the_left_eye_of_the_mirror_image():
    points = _face(roll=0.15)
    width = 300
    mirror = points[list(FACE88.flip)].copy()
    mirror[:, 0] = width - 1 - mirror[:, 0]
    direct = to_patch(eye_transform(points[RIGHT]), points[RIGHT], True)
    via_mirror = to_patch(eye_transform(mirror[LEFT]), mirror[LEFT], False)
    np.testing.assert_allclose(direct, via_mirror, atol=1e-9)
    assert sorted(MIRROR_OFFSETS) == list(range(8))


def test_patches_show_the_eye_where_its_points_say():
    """A white dot drawn at each lid point of a turned eye shows up at that point's patch position."""
    points = _face(roll=0.4)
    image = np.zeros((300, 300, 3), np.uint8)
    for x, y in points[LEFT][[2, 6]]:
        image[round(y) - 1:round(y) + 2, round(x) - 1:round(x) + 2] = 255
    patches, transforms = eye_patches(lambda ts: [crop_image(image, t) for t in ts], [points], FACE88)
    assert patches.shape == (2, EYE_PATCH_SIZE[1], EYE_PATCH_SIZE[0], 3)
    expected = to_patch(transforms[0], points[LEFT], False)[[2, 6]]
    bright = np.argwhere(patches[0, ..., 0] > 60)
    for x, y in expected:
        near = bright[np.hypot(bright[:, 1] - x, bright[:, 0] - y) < 3]
        assert len(near), (x, y)
        centre = near.mean(0)
        assert abs(centre[1] - x) < 1.0 and abs(centre[0] - y) < 1.0


def test_refine_lids_replaces_the_lids_and_nothing_else():
    points = _face(roll=-0.3, opening=0.35)
    shut = patch_corners()
    target = np.zeros((8, 2))
    target[[0, 4]] = shut
    target[[1, 2, 3, 5, 6, 7]] = np.linspace(shut[0], shut[1], 5)[[1, 2, 3, 3, 2, 1]]  # lids on the corners' line

    def network(x, prior):
        assert x.shape == (4, 3, EYE_PATCH_SIZE[1], EYE_PATCH_SIZE[0]) and x.dtype == np.float32
        np.testing.assert_allclose(prior[:, [0, 4]], np.repeat(shut[None], 4, 0), atol=1e-4)  # the eyes as given
        return np.repeat(target[None], len(x), 0).astype(np.float32)

    image = np.full((300, 300, 3), 128, np.uint8)
    broken = points.copy()
    broken[LEFT.start + 2] = np.inf  # a face with a broken eye point is returned as it came
    out = refine_lids(lambda ts: [crop_image(image, t) for t in ts], [points, broken, points], FACE88, network)
    lids = np.r_[LEFT.start + np.array(EYE_LIDS), RIGHT.start + np.array(EYE_LIDS)]
    others = np.setdiff1d(np.arange(88), lids)
    np.testing.assert_array_equal(out[0][others], points[others])
    np.testing.assert_array_equal(out[1], broken)
    from facemark.geometry.openness import eye_openness
    assert np.allclose(eye_openness(out[0]), 0, atol=1e-9) and (eye_openness(points) > 0.3).all()
    with pytest.raises(ValueError, match="face88's 8-point eyes"):
        refine_lids(lambda ts: [], [np.zeros((68, 2))], IBUG68, network)


def test_the_built_in_refiner_reads_patches_and_refuses_other_files(tmp_path):
    network = EyeRefinerNetwork()
    w, h = EYE_PATCH_SIZE
    out = network(np.zeros((3, 3, h, w), np.float32), np.zeros((3, 8, 2), np.float32))
    assert out.shape == (3, 8, 2) and np.isfinite(out).all()
    with pytest.raises(OnnxModelError, match="no eye refiner file"):
        EyeRefinerNetwork(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxModelError, match="not a readable ONNX model"):
        EyeRefinerNetwork(tmp_path / "junk.onnx")
    from facemark.network import BUILTIN_DIR
    with pytest.raises(OnnxModelError, match="not a facemark eye refiner"):
        EyeRefinerNetwork(BUILTIN_DIR / "face88.onnx")


def _lid_indices() -> np.ndarray:
    return np.r_[LEFT.start + np.array(EYE_LIDS), RIGHT.start + np.array(EYE_LIDS)]


def test_the_landmarker_moves_only_the_lids(landmarker, astronaut):
    from facemark import Landmarker

    plain = Landmarker(refine_eyes=False, threads=1)
    assert landmarker.eyes is not None and plain.eyes is None
    refined, unrefined = landmarker.detect(astronaut)[0].points, plain.detect(astronaut)[0].points
    others = np.setdiff1d(np.arange(88), _lid_indices())
    np.testing.assert_array_equal(refined[others], unrefined[others])
    assert not np.allclose(refined[_lid_indices()], unrefined[_lid_indices()])
    # the refiner leaves an open eye open: the astronaut's lids stay within a few pixels of the network's
    assert np.linalg.norm(refined - unrefined, axis=1).max() < 3.0
    # other layouts keep their own lids
    assert Landmarker(model="ibug68", threads=1).eyes is None


def test_no_refine_eyes_on_the_command_line(tmp_path, capsys, astronaut):
    from cli_runs import read_jsonl, run_cli
    from facemark import Landmarker
    from locations import ASTRONAUT

    code, _, err = run_cli(["predict", ASTRONAUT, "--json", tmp_path / "plain.jsonl", "--no-refine-eyes", "--quiet"],
                           capsys)
    assert code == 0, err
    points = np.array(read_jsonl(tmp_path / "plain.jsonl")[0]["faces"][0]["points"])
    expected = Landmarker(refine_eyes=False, threads=1).detect(astronaut)[0].points
    np.testing.assert_allclose(points, expected, atol=0.006)  # the JSON rounds to 0.01 px
    assert "--no-refine-eyes" in run_cli(["video", "--help"], capsys)[1]
