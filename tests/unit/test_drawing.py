"""facemark.drawing: points drawn in their region's colour, NaN points left out; the contact sheet's grid."""

import numpy as np
from PIL import Image

from facemark.drawing import REGION_COLOURS, contact_sheet, draw_points
from facemark.layouts import FACE88


def test_points_drawn_in_their_region_colour_and_the_input_untouched():
    image = np.zeros((200, 200, 3), np.uint8)
    points = np.full((88, 2), np.nan)
    points[0] = (50, 50)    # face_profile: region 0
    points[21] = (150, 150)  # left_eye: region 1
    out = np.asarray(draw_points(image, points, FACE88, radius=3, lines=False))
    assert tuple(out[50, 50]) == REGION_COLOURS[0]
    assert tuple(out[150, 150]) == REGION_COLOURS[1]
    assert out.sum() > 0 and image.sum() == 0
    # nothing else drawn: the NaN points are left out
    drawn = np.argwhere(out.any(axis=2))
    assert all(np.hypot(*(p - [50, 50])) <= 4 or np.hypot(*(p - [150, 150])) <= 4 for p in drawn)


def test_contact_sheet_grid():
    tiles = [Image.new("RGB", (300, 150), (200, 0, 0)) for _ in range(7)]
    sheet = contact_sheet(tiles, [f"tile {i}" for i in range(7)], tile_size=100, columns=3)
    assert sheet.size == (300, 3 * (100 + 14))
    # the first tile, shrunk to 100×50, is centred in its cell
    assert np.asarray(sheet)[50, 50].tolist() == [200, 0, 0]
    assert np.asarray(sheet)[10, 50].tolist() == [30, 30, 30]
