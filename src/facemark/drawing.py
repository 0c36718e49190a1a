"""Drawing landmarks (one colour per region) and contact sheets of many faces, for people to look at."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from facemark.layouts import Scheme

# One colour per region, in region order; schemes with more regions cycle through them.
REGION_COLOURS = [(255, 215, 0), (0, 200, 255), (0, 120, 255), (255, 80, 200), (200, 60, 255),
                  (255, 60, 60), (60, 255, 120), (255, 150, 40)]


def draw_points(image: np.ndarray | Image.Image, points: np.ndarray, scheme: Scheme, *,
                radius: float | None = None, lines: bool = True) -> Image.Image:
    """A copy of the image with the points drawn; NaN points are left out."""
    pil = (image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))).convert("RGB")
    pil = pil.copy()
    draw = ImageDraw.Draw(pil)
    pts = np.asarray(points, dtype=np.float64)
    finite = np.isfinite(pts).all(axis=1)
    if radius is None:
        radius = max(1.0, min(pil.size) / 160)
    region = scheme.region_of_point()
    if lines:
        for indices, closed in scheme.contours:
            idx = [i for i in indices if finite[i]]
            if closed and idx:
                idx.append(idx[0])
            if len(idx) >= 2:
                colour = REGION_COLOURS[region[idx[0]] % len(REGION_COLOURS)]
                draw.line([(pts[i, 0], pts[i, 1]) for i in idx], fill=colour, width=max(1, int(radius / 2)))
    for i in np.flatnonzero(finite):
        x, y = pts[i]
        colour = REGION_COLOURS[region[i] % len(REGION_COLOURS)]
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return pil


def contact_sheet(tiles: list[Image.Image], captions: list[str], *, tile_size: int = 200,
                  columns: int = 6) -> Image.Image:
    """Tiles on a grid, each scaled to fit tile_size and captioned underneath."""
    caption_height = 14 * max([1] + [c.count("\n") + 1 for c in captions])
    rows = max(1, -(-len(tiles) // columns))
    sheet = Image.new("RGB", (columns * tile_size, rows * (tile_size + caption_height)), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    for k, (tile, caption) in enumerate(zip(tiles, captions)):
        tile = tile.copy()
        tile.thumbnail((tile_size, tile_size))
        x = (k % columns) * tile_size
        y = (k // columns) * (tile_size + caption_height)
        sheet.paste(tile, (x + (tile_size - tile.width) // 2, y + (tile_size - tile.height) // 2))
        draw.multiline_text((x + 3, y + tile_size + 1), caption, fill=(240, 240, 240), spacing=2)
    return sheet
