"""Group photos made from real faces: faces cut from human-labelled photos (or the sample image) pasted at known
sizes and places on a textured canvas, with their labelled points moved along. Shared by
benchmarks/group_photos.py and tests/scenarios/test_group_photos.py.

A face's size is the longer side of the box around its labelled points (brows to chin, ear to ear), in pixels of
the scene; a found face is matched to the labelled face by position (`matched`), never by size order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

# A face is cut with this much room around its points' box (a share of the box's side on each side), so the
# detector sees a head, not a mask
CUT_MARGIN = 0.4


@dataclass
class FaceSource:
    """A face to paste: an RGB image cut around it and its labelled points (P, 2) in the cut's pixels."""

    image: Image.Image
    points: np.ndarray

    @property
    def side(self) -> float:
        return float(np.ptp(self.points, axis=0).max())


@dataclass
class Scene:
    """A scene: the image and, per pasted face, its points (P, 2) in the scene's pixels; `near`: the index of the
    near face in front (a group selfie), None without one."""

    name: str
    image: Image.Image
    faces: list[np.ndarray] = field(default_factory=list)
    near: int | None = None


def read_pts(path: Path) -> np.ndarray:
    """A 300-W `.pts` file's points, 0-based pixel centres."""
    lines = path.read_text().split("{")[1].split("}")[0].split()
    return np.array(lines, np.float64).reshape(-1, 2) - 1.0


def cut_face(image: Image.Image, points: np.ndarray) -> FaceSource:
    """The face of `points` cut from `image` with CUT_MARGIN around its points' box (black where it leaves it)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = float((hi - lo).max())
    centre = (lo + hi) / 2
    half = side * (0.5 + CUT_MARGIN)
    box = tuple(int(round(v)) for v in (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half))
    return FaceSource(image.convert("RGB").crop(box), points - np.array(box[:2], np.float64))


def human_faces(folders: list[Path], count: int, min_side: float = 90.0) -> list[FaceSource]:
    """Up to `count` faces of at least `min_side` pixels from 300-W folders (image + `.pts`), in file order,
    taken from the folders in turn (so every set is in the mix)."""
    lists = [sorted(f.glob("*.pts")) for f in folders]
    out: list[FaceSource] = []
    for k in range(max(map(len, lists), default=0)):
        for pts_files in lists:
            if k >= len(pts_files) or len(out) >= count:
                continue
            pts = pts_files[k]
            image_path = next((pts.with_suffix(s) for s in (".jpg", ".png") if pts.with_suffix(s).exists()), None)
            if image_path is None:
                continue
            points = read_pts(pts)
            if np.ptp(points, axis=0).max() < min_side:
                continue
            with Image.open(image_path) as img:
                out.append(cut_face(img, points))
    return out


def textured_canvas(size: tuple[int, int], seed: int) -> Image.Image:
    """A smooth random texture with some fine grain: walls, foliage and crowds behind the faces."""
    rng = np.random.default_rng(seed)
    w, h = size
    coarse = rng.uniform(40, 210, (max(2, h // 160), max(2, w // 160), 3)).astype(np.uint8)
    base = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 10, (h, w, 1))
    return Image.fromarray(np.clip(np.asarray(base, np.float64) + grain, 0, 255).astype(np.uint8))


def paste(canvas: Image.Image, face: FaceSource, centre: tuple[float, float], side: float) -> np.ndarray:
    """`face` scaled so its points' box side is `side`, pasted with its points' box centred at `centre`; its points
    in the canvas's pixels."""
    k = side / face.side
    size = (max(1, round(face.image.width * k)), max(1, round(face.image.height * k)))
    scaled = face.image.resize(size, Image.Resampling.LANCZOS if k < 1 else Image.Resampling.BICUBIC)
    points = (face.points + 0.5) * np.array([size[0] / face.image.width, size[1] / face.image.height]) - 0.5
    box_centre = (points.min(axis=0) + points.max(axis=0)) / 2
    left, top = round(centre[0] - box_centre[0]), round(centre[1] - box_centre[1])
    # a soft edge: the cut's square corners do not read as an edge a detector could key on
    mask = Image.new("L", size, 0)
    inset = max(1, min(size) // 12)
    mask.paste(255, (inset, inset, size[0] - inset, size[1] - inset))
    canvas.paste(scaled, (left, top), mask.filter(ImageFilter.GaussianBlur(inset / 2)))
    return points + np.array([left, top], np.float64)


def fitting(size: tuple[int, int], side: float, count: int) -> int:
    """How many of `count` faces of `side` pixels fit in a grid on `size` without their cuts overlapping."""
    cut = side * (1 + 2 * CUT_MARGIN) * 1.05
    return max(1, min(count, int(size[0] // cut) * int(size[1] // cut)))


def grid_scene(name: str, size: tuple[int, int], faces: list[FaceSource], count: int, side: float, seed: int,
               near: tuple[FaceSource, float] | None = None) -> Scene:
    """`count` faces of `side` pixels in a jittered grid over the canvas (rows from the top), and optionally one
    near face (a source and its side) in front, low on the right, pasted last (it may hide faces behind it:
    such faces are left out of the scene's list)."""
    rng = np.random.default_rng(seed)
    w, h = size
    canvas = textured_canvas(size, seed)
    cols = max(1, min(int(np.ceil(np.sqrt(count * w / h))), count))
    rows = int(np.ceil(count / cols))
    cell_w, cell_h = w / cols, h / rows
    placed = []
    for i in range(count):
        r, c = divmod(i, cols)
        jitter = rng.uniform(-0.12, 0.12, 2) * np.array([cell_w, cell_h])
        centre = ((c + 0.5) * cell_w + jitter[0], (r + 0.5) * cell_h + jitter[1])
        placed.append(paste(canvas, faces[i % len(faces)], centre, side))
    scene = Scene(name, canvas, placed)
    if near is not None:
        source, near_side = near
        centre = (0.75 * w + rng.uniform(-0.05, 0.05) * w, h - 0.55 * near_side)
        points = paste(canvas, source, centre, near_side)
        lo, hi = points.min(axis=0) - CUT_MARGIN * near_side, points.max(axis=0) + CUT_MARGIN * near_side
        # faces the near one covers (any of their points' box inside its pasted square) are no longer in the photo
        scene.faces = [p for p in placed if not ((p.max(axis=0) > lo) & (p.min(axis=0) < hi)).all()]
        scene.faces.append(points)
        scene.near = len(scene.faces) - 1
    return scene


def matched(found_points: list[np.ndarray], labelled: list[np.ndarray]) -> list[bool]:
    """Per labelled face: is there a found face whose points' box centre lies within a third of the labelled
    box's side of the labelled box's centre, and whose side is within a factor 1.6 of it? Each found face
    matches one labelled face at most."""
    def box(p):
        p = p[np.isfinite(p).all(axis=1)]
        lo, hi = p.min(axis=0), p.max(axis=0)
        return (lo + hi) / 2, float((hi - lo).max())

    found = [box(p) for p in found_points if np.isfinite(p).all(axis=1).sum() >= 2]
    used = set()
    out = []
    for points in labelled:
        centre, side = box(points)
        hit = None
        for j, (c, s) in enumerate(found):
            if j not in used and np.hypot(*(c - centre)) < side / 3 and 1 / 1.6 < s / side < 1.6:
                hit = j
                break
        if hit is not None:
            used.add(hit)
        out.append(hit is not None)
    return out
