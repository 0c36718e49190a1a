"""Transfer to a layout of your own: each new point starts as a mix of the trained points around it, and the
network learns where its crops lie relative to a face detector's box, so its first crop at run time is framed
as its training crops were."""

import math

import numpy as np
import pytest

from facemark.pipeline.crops import CropTransform, face_box_crop_transform, square_crop_transform

torch = pytest.importorskip("torch")

from facemark.train.transfer import face_framing, fit_mix  # noqa: E402


def test_a_new_point_is_the_mix_of_the_trained_points_it_lies_between():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (300, 6, 2))
    target = np.stack([0.25 * source[:, 1] + 0.75 * source[:, 2], source[:, 4]], axis=1)
    weights = fit_mix(source, target)
    assert np.allclose(weights[0, [1, 2]], [0.25, 0.75], atol=1e-6) and np.allclose(weights[1, 4], 1.0)
    assert np.allclose(weights.sum(axis=1), 1.0) and (weights >= 0).all()


def test_face_framing_measures_where_the_crop_lies_around_the_face_box():
    """Crops of 100 px whose face box (the trained network's points' box) is 80 px wide and sits 10 px above
    the crop's centre: side 100/80, centre 10/80 of the box side below the box's."""
    face = np.array([[-40.0, -40.0], [40.0, 40.0], [0.0, 10.0]])  # box: 80 px, centred on (0, 0)
    crop_centre = (100 - 1) / 2
    points = np.stack([face + [crop_centre, crop_centre - 10] + d for d in np.linspace(-1, 1, 9)[:, None]])
    side, dx, dy = face_framing(points, 100)
    assert side == pytest.approx(1.25) and dx == pytest.approx(0.0) and dy == pytest.approx(0.125)


def test_first_crop_from_a_face_box():
    box = (100.0, 50.0, 180.0, 150.0)  # 100 px tall
    # the built-in layouts (no framing): exactly the crop of before, turned by the roll
    t = face_box_crop_transform(box, 128, 1.25, None, 0.3)
    plain = square_crop_transform(box, 128, 1.25)
    assert (t.cx, t.cy, t.side, t.size, t.angle) == (plain.cx, plain.cy, plain.side, 128, 0.3)
    assert face_box_crop_transform(box, 128, 1.25) == plain
    # a layout of your own: side and centre from the framing, the offset turned with the face
    t = face_box_crop_transform(box, 128, 3.2, [1.3, 0.0, 0.2], 0.0)
    assert (t.cx, t.cy, t.side) == pytest.approx((140.0, 120.0, 130.0))
    t = face_box_crop_transform(box, 128, 3.2, [1.3, 0.0, 0.2], math.pi / 2)  # turned a quarter clockwise
    assert (t.cx, t.cy, t.angle) == pytest.approx((120.0, 100.0, math.pi / 2))
    assert isinstance(t, CropTransform)


def test_fine_tuning_a_layout_of_your_own_keeps_its_framing(tmp_path):
    from facemark.layouts import load_layout
    from facemark.train.model import create_model
    from facemark.train.training import init_from
    from facemark.train.weights import save_weights

    five = load_layout("examples/layouts/five_points.json")
    tiny = {"alpha": 0.25, "rho": 0.4, "shallow": True, "head": "flatten", "head_channels": 16}
    trained = create_model(scheme=five, margin=2.5, **tiny)
    trained.config.face_framing = [1.3, 0.0, -0.08]
    save_weights(trained, tmp_path / "five.pt")
    again = create_model(scheme=five, margin=2.5, **tiny)
    init_from(again, tmp_path / "five.pt")
    assert again.config.face_framing == [1.3, 0.0, -0.08]
