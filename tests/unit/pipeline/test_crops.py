import numpy as np
import pytest

from facemark.pipeline.crops import (CropTransform, box_from_points, crop_image, normalise_crop,
                                    square_crop_transform)


@pytest.mark.parametrize("box", [
    (40.0, 50.0, 140.0, 170.0),  # inside
    (-60.0, -30.0, 80.0, 90.0),  # sticks out top-left
    (150.0, 100.0, 260.0, 230.0),  # sticks out bottom-right
    (10.3, 20.7, 11.1, 21.2),  # tiny
])
@pytest.mark.parametrize("size", [160, 96])
def test_point_round_trip_image_crop_image(box, size):
    rng = np.random.default_rng(1)
    t = square_crop_transform(box, size=size, margin=1.3)
    pts = rng.uniform(-100, 300, size=(88, 2))
    back = t.to_image(t.to_crop(pts))
    assert np.abs(back - pts).max() < 1e-3


def test_square_covers_the_crop_edge_to_edge():
    t = CropTransform(cx=50.0, cy=60.0, side=100.0, size=160)
    # the square spans x 0..100 around cx=50 (pixel-centre coordinates): its edges are the crop's edges
    corners = np.array([[0.0, 10.0], [100.0, 110.0]])
    assert np.allclose(t.to_crop(corners), [[-0.5, -0.5], [159.5, 159.5]])


def test_square_crop_transform_extends_the_longer_side():
    t = square_crop_transform((10, 20, 50, 100), size=160, margin=1.25)
    assert t.side == pytest.approx(80 * 1.25)
    assert (t.cx, t.cy) == (30, 60)


@pytest.mark.parametrize("box", [(20, 30, 60, 70), (-30, -20, 40, 50), (150, 90, 230, 170)])
def test_crop_pixels_follow_the_transform(box):
    """A bright dot in the image appears in the crop where the transform says, also when padding."""
    image = np.zeros((200, 200, 3), np.uint8)
    dot = np.array([[35.0, 45.0]]) if box[0] < 100 else np.array([[180.0, 120.0]])
    x, y = dot[0].astype(int)
    image[y - 1:y + 2, x - 1:x + 2] = 255
    t = square_crop_transform(box, size=160, margin=1.2)
    crop = crop_image(image, t)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    weights = crop[..., 0].astype(float)
    ys, xs = np.mgrid[:160, :160]
    found = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    assert np.abs(found - t.to_crop(dot)[0]).max() < 0.6


def test_crop_pads_outside_the_image_with_black():
    image = np.full((50, 50, 3), 200, np.uint8)
    crop = crop_image(image, square_crop_transform((-25, -25, 25, 25), size=32, margin=1.0))
    assert crop[:14, :14].max() == 0  # the top-left quarter lies outside the image
    assert crop[-14:, -14:].min() == 200


def test_box_from_points_ignores_nan_and_invalid_boxes_raise():
    pts = np.array([[1, 2], [5, 9], [np.nan, 3]])
    assert box_from_points(pts) == (1, 2, 5, 9)
    with pytest.raises(ValueError):
        square_crop_transform((10, 10, 5, 20))
    with pytest.raises(ValueError):
        box_from_points(np.full((3, 2), np.nan))


def test_normalise_crop_range_and_layout():
    crop = np.zeros((2, 8, 8, 3), np.uint8)
    crop[..., 0] = 255
    x = normalise_crop(crop)
    assert x.shape == (2, 3, 8, 8) and x.dtype == np.float32
    assert x[:, 0].min() == 1.0 and x[:, 1].max() == -1.0


def test_array_and_pil_crops_are_identical_inside_and_across_the_border():
    """An array is sliced before Pillow sees it; the crop must be exactly what Pillow's padded crop gives."""
    from PIL import Image

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    pil = Image.fromarray(rgb)
    for cx, cy, side in [(60, 45, 50.3), (3.7, 2.2, 40), (118.5, 88.9, 61), (60, 45, 300), (-80, -80, 20)]:
        t = CropTransform(cx=cx, cy=cy, side=side, size=32)
        np.testing.assert_array_equal(crop_image(rgb, t), crop_image(pil, t))
