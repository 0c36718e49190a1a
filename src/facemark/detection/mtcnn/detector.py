"""MTCNN face detection: an image pyramid through P-Net, then R-Net and O-Net on resampled crops.

Stages (Zhang et al. 2016):
1. P-Net scores every 12×12 window of each pyramid level (the image scaled so a `min_face_size` face is
   12 px, then by `scale_factor` again and again); windows above threshold are merged by NMS, moved by
   their box regression and made square.
2. R-Net re-scores a 24×24 crop of each survivor (one batch), then NMS, regression, square again.
3. O-Net scores 48×48 crops and adds five keypoints; the final NMS compares boxes by intersection over
   the smaller area so a box nested inside another one goes too.

Internally boxes are in pixel-*edge* coordinates (the image spans 0..W), which makes the pyramid's scaling a
plain multiplication; results are converted to the pixel-centre convention at the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facemark.detection.core import Detection, FaceDetector, Look, check_image, session_options
from facemark.detection.nms import nms
from facemark.images import load_image_downscaled
from facemark.pipeline.crops import CropTransform, crop_image

HERE = Path(__file__).parent  # pnet.onnx, rnet.onnx, onet.onnx: scripts/export_mtcnn_onnx.py
NETWORKS = ("pnet", "rnet", "onet")

# NMS overlap limits: within one pyramid level, across levels, after R-Net, after O-Net (the original's)
NMS_LEVEL, NMS_PYRAMID, NMS_REFINE, NMS_OUTPUT = 0.5, 0.7, 0.7, 0.7
PNET_CELL, PNET_STRIDE = 12, 2  # P-Net's window and its step in pyramid pixels


class _Network:
    """One of the three networks on onnxruntime: called with a float32 N×3×H×W array, returns its outputs."""

    def __init__(self, path: Path, threads: int | None):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), session_options(threads),
                                                    providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {"image": x})


class MTCNNDetector(FaceDetector):
    """MTCNN with facenet-pytorch's pretrained weights, converted to ONNX, on onnxruntime (no torch).

    min_face_size: the smallest face looked for, in pixels of the image the cascade sees (after `max_side`
        shrinking); smaller is slower (the pyramid's first level grows with (12 / min_face_size)²).
    thresholds: face-probability cut-offs of P-Net, R-Net and O-Net.
    scale_factor: size ratio between neighbouring pyramid levels (0.709 ≈ 1/√2: area halves per level).
    max_side: larger images are shrunk to this longest side before detection (results are mapped back
        to full resolution); None looks at every pixel. Faces smaller than min_face_size / max_side of the
        image's longer side are then missed.
    threads: onnxruntime intra-op threads (None: 1; see facemark.detection.core.session_options).
    """

    # Medians over 500 CelebA faces of where the box of their face88 teacher points lies relative to our box
    # (see FaceDetector.LANDMARK_BOX): as wide, but MTCNN's box reaches up over the forehead, which the
    # points (eyebrows and up) do not. Mean IoU with the points' box: 0.67 as detected, 0.88 mapped.
    LANDMARK_BOX = (0.015, 0.142, 0.998, 0.735)

    def __init__(self, min_face_size: float = 40, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 scale_factor: float = 0.709, max_side: int | None = 640, threads: int | None = None):
        if not min_face_size > 0:
            raise ValueError(f"min_face_size must be positive, got {min_face_size!r}")
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {thresholds!r}")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must be between 0 and 1, got {scale_factor!r}")
        if max_side is not None and (isinstance(max_side, bool) or int(max_side) != max_side or max_side < 12):
            raise ValueError(f"max_side must be an integer >= 12 or None, got {max_side!r}")
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.max_side = None if max_side is None else int(max_side)
        self.pnet, self.rnet, self.onet = (_Network(HERE / f"{name}.onnx", threads) for name in NETWORKS)

    @property
    def fixed_min_face(self) -> float:
        return self.min_face_size

    def detect(self, image: np.ndarray, look: Look | None = None) -> list[Detection]:
        """As FaceDetector.detect; the Look is not used (the pyramid is fixed by min_face_size)."""
        rgb = check_image(image)
        scale = 1.0
        if self.max_side is not None and max(rgb.shape[:2]) > self.max_side:
            rgb, scale = load_image_downscaled(rgb, self.max_side)
        boxes, scores, points = self._cascade(rgb)
        # pixel edges of the image we ran on -> pixel centres at full resolution: full = edge * scale - 0.5
        boxes, points = boxes * scale - 0.5, points * scale - 0.5
        return [Detection(tuple(float(v) for v in b), float(s), p)
                for b, s, p in zip(boxes, scores, points)]  # NMS already ordered them by score

    # ------------------------------------------------------------------------------------------ the cascade

    def pyramid_scales(self, height: int, width: int) -> list[float]:
        """Scale of each pyramid level: a min_face_size face becomes P-Net's 12 px window, and so on down
        until the short side no longer holds one window."""
        scales = []
        scale = PNET_CELL / self.min_face_size
        while min(height, width) * scale >= PNET_CELL:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    def _cascade(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes N×4, scores N, keypoints N×5×2) in pixel-edge coordinates of `rgb`, best first."""
        pil = Image.fromarray(rgb)
        boxes, scores = self._propose(pil)
        if len(boxes):
            boxes, scores = self._refine(pil, boxes)
        if len(boxes):
            return self._output(pil, boxes)
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))

    def _propose(self, pil: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1: P-Net over the pyramid -> square candidate boxes."""
        width, height = pil.size
        found = []
        level = pil
        for scale in self.pyramid_scales(height, width):
            size = (max(PNET_CELL, round(width * scale)), max(PNET_CELL, round(height * scale)))
            # Each level from the one before (resizing the full image every time costs more than P-Net);
            # edges map linearly between any two levels, so the scale to the image stays exact. PIL's
            # bilinear filter widens with the reduction, so every level is antialiased.
            level = level.resize(size, Image.Resampling.BILINEAR)
            prob, reg = self.pnet(_network_input(np.array(level)[None]))
            prob, reg = prob[0], reg[0]
            rows, cols = np.nonzero(prob >= self.thresholds[0])
            if len(rows) == 0:
                continue
            sx, sy = size[0] / width, size[1] / height  # exact per-axis scale of this level
            x0, y0 = cols * PNET_STRIDE, rows * PNET_STRIDE
            windows = np.stack([x0 / sx, y0 / sy, (x0 + PNET_CELL) / sx, (y0 + PNET_CELL) / sy], axis=1)
            level_scores = prob[rows, cols]
            keep = nms(windows, level_scores, NMS_LEVEL)
            found.append((windows[keep], level_scores[keep], reg[:, rows[keep], cols[keep]].T))
        if not found:
            return np.zeros((0, 4)), np.zeros(0)
        windows, level_scores, regs = (np.concatenate(parts) for parts in zip(*found))
        keep = nms(windows, level_scores, NMS_PYRAMID)
        boxes = _square(_regress(windows[keep], regs[keep]))
        valid = _usable(boxes)
        return boxes[valid], level_scores[keep][valid]

    def _refine(self, pil: Image.Image, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 2: R-Net on 24×24 crops of every candidate, in one batch."""
        prob, reg = self.rnet(_crops(pil, boxes, 24))
        passed = prob >= self.thresholds[1]
        boxes, scores, reg = boxes[passed], prob[passed], reg[passed]
        keep = nms(boxes, scores, NMS_REFINE)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        valid = _usable(boxes)
        return boxes[valid], scores[keep][valid]

    def _output(self, pil: Image.Image, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 3: O-Net on 48×48 crops -> final boxes, scores and keypoints."""
        prob, reg, marks = self.onet(_crops(pil, boxes, 48))
        passed = prob >= self.thresholds[2]
        boxes, scores, reg, marks = boxes[passed], prob[passed], reg[passed], marks[passed]
        # keypoints are fractions of the crop O-Net saw, i.e. of the box before its regression
        size = boxes[:, 2:] - boxes[:, :2]
        points = boxes[:, None, :2] + np.stack([marks[:, :5], marks[:, 5:]], axis=2) * size[:, None, :]
        boxes = _regress(boxes, reg)
        keep = nms(boxes, scores, NMS_OUTPUT, mode="min")
        return boxes[keep], scores[keep], points[keep]


# ---------------------------------------------------------------------------------------------- helpers


def _network_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 -> float32 N×3×H×W, scaled as the networks were trained: (x - 127.5) / 128."""
    x = np.ascontiguousarray(np.moveaxis(rgb, -1, 1), dtype=np.float32)
    return (x - 127.5) * 0.0078125


def _crops(pil: Image.Image, boxes: np.ndarray, size: int) -> np.ndarray:
    """Network input of the square `boxes` (pixel edges) resampled to size×size; black outside the image."""
    crops = np.stack([
        crop_image(pil, CropTransform(cx=(x0 + x1) / 2 - 0.5, cy=(y0 + y1) / 2 - 0.5, side=x1 - x0, size=size))
        for x0, y0, x1, y1 in boxes
    ])
    return _network_input(crops)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Move each edge by the network's offset, in units of the box's width (x) or height (y)."""
    size = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    return boxes + reg * size


def _square(boxes: np.ndarray) -> np.ndarray:
    """Square boxes of side max(width, height) with the same centres (what the next network expects)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.max(boxes[:, 2:] - boxes[:, :2], axis=1, keepdims=True) / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def _usable(boxes: np.ndarray) -> np.ndarray:
    """Boxes at least a pixel wide with finite coordinates (a wild regression can collapse one)."""
    return np.isfinite(boxes).all(axis=1) & (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
