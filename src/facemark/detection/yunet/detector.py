"""YuNet (Wu, Peng, Yu 2023) on onnxruntime and numpy: no OpenCV DNN, no cv2.FaceDetectorYN (OpenCV only shrinks
the image).

The network is `face_detection_yunet_2023mar.onnx` from OpenCV's model zoo, unchanged (see LICENSE-weights.md):
a 0.23 MB anchor-free detector with three heads, at strides 8, 16 and 32, each giving per grid cell a class score,
an objectness score, a box and five keypoints. Its graph works on any input whose sides are multiples of 32 (its
reshapes and upsamplings do not depend on the size), but the file declares a fixed 1×3×640×640 input, which
onnxruntime enforces; `_load_session` marks the two spatial sizes free, in memory only.

How an image becomes detections (the output format as OpenCV's FaceDetectorYN reads it; the code is ours):

1. The image is scaled so its longer side is `input_side` pixels (never enlarged by default), put in the top-left
   corner of a black canvas whose sides are multiples of 32, as BGR values 0..255, N×C×H×W float32. With
   `min_face`, the image is also seen at finer scales so a face of that size reaches SMALLEST_FACE input pixels
   (see `levels`), in tiles when the scaled copy is large.
2. Each grid cell (row r, column c) of stride S gives: score = sqrt(cls × obj) (both sigmoid outputs);
   box centre = ((c, r) + (dx, dy)) × S, box size = exp((dw, dh)) × S; keypoints = ((c, r) + offsets) × S.
   These are pixel-centre coordinates of the input: on mirrored images (200 HELEN faces) a box centre x and
   its mirror's add up to W − 1.08 ± 0.23 (the pixel-centre convention gives W − 1, pixel-edge W).
3. Cells scoring at least `min_score` are reduced by greedy non-maximum suppression (IoU > 0.3, as published).

Keypoints (5, 2), in the image's left-to-right order for an upright unmirrored face: the eye on the image's left
(the subject's right eye), the other eye, the nose tip, the mouth corner on the image's left, the other corner.
Coordinates: pixels of the image given, origin at the centre of the top-left pixel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from facemark.detection.core import Detection, FaceDetector, Look, check_image, session_options
from facemark.detection.nms import box_overlap, nms

HERE = Path(__file__).parent
MODEL_FILE = "face_detection_yunet_2023mar.onnx"
STRIDES = (8, 16, 32)
DIVISOR = 32  # the input's sides must be multiples of the coarsest stride
OUTPUT_NAMES = [f"{head}_{stride}" for head in ("cls", "obj", "bbox", "kps") for stride in STRIDES]
NMS_IOU = 0.3  # as the published demo (opencv_zoo models/face_detection_yunet/demo.py)
TOP_K = 5000  # at most this many cells, best first, go into non-maximum suppression (as the demo)
# The smallest face found reliably, in input pixels: the longer side of the box around its landmarks (about brows
# to chin). 60 HELEN faces pasted on grey at known sizes, found at min_score 0.6: 14 of 60 at 12 px, 28 at 16,
# 42 at 20, 47 at 24, 59 at 32, all from 48 px to 600 px.
SMALLEST_FACE = 32.0
# Finer levels (min_face) keep faces whose detection box is at most this long (input pixels): well inside YuNet's
# range (the 60 faces above are all found up to 600 px) and small next to a tile, so tiles overlap by it; larger
# faces are left to a coarser level (consecutive levels differ by at most LEVEL_STEP: they are ≥ 48 px there).
MAX_FACE = 384.0
LEVEL_STEP = 8.0
TILE = 2048  # a finer pass's copy with a side above this runs in overlapping tiles of at most this (~0.2 GB each)
TILE_EDGE = 8  # a tile's box closer than this to a side the tile shares with a neighbour is left to that one
CONTAINED = 0.6  # with several levels or tiles, a box overlapping a better one by this share of its area is a part
# Where the box of a face's face88 teacher points lies relative to YuNet's box (see FaceDetector.LANDMARK_BOX):
# medians over 500 CelebA faces (all found), measured as BlazeFace's by
#   python scripts/calibrate_detector_box.py work/celeba_clean.jsonl --images ../shared/data/celeba/images \
#       --detector yunet --count 500
# YuNet's box reaches up over the forehead: the points' box is as wide, 0.74 as tall and 0.115 of the height lower.
# Mean IoU with the points' box, as detected -> mapped: 0.69 -> 0.88. On the 870 HELEN faces of 300-W with their
# human 68 points instead (a box close to face88's): (0.003, 0.12, 1.026, 0.756), 0.71 -> 0.88.
LANDMARK_BOX = (-0.005, 0.115, 0.991, 0.738)


class YuNetDetector(FaceDetector):
    """YuNet, the face detector of OpenCV's model zoo (MIT), on onnxruntime.

    min_score: detections scoring below this (0..1) are dropped.
    min_face: the smallest face to look for when `detect` is given no `Look`: the longer side of the box around its landmarks (about brows to
        chin), in pixels of the image given. None: the whole-image pass alone, which finds faces down to about
        SMALLEST_FACE / input_side of the image's longer side (input_side 640: 1/20, a 96-px face in a 1920-px
        photo). Smaller values add finer passes (see `levels`); their time grows with the image's area over
        min_face².
    input_side: the longer side, in pixels, of the image as the whole-image pass sees it: larger images are
        shrunk to it, smaller ones are seen as they are. None: always the image's own size.
    threads: onnxruntime intra-op threads (None: 1; see `session_options`).

    Raises ValueError for an out-of-range parameter, RuntimeError when onnxruntime is missing, and `detect`
    raises ValueError for anything but an RGB uint8 H×W×3 array.
    """

    LANDMARK_BOX = LANDMARK_BOX
    TAKES_MIN_FACE = True

    def __init__(self, min_score: float = 0.6, min_face: float | None = None, input_side: int | None = 640,
                 threads: int | None = None):
        if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score!r}")
        if min_face is not None and (isinstance(min_face, bool) or not isinstance(min_face, int | float)
                                     or not math.isfinite(min_face) or min_face <= 0):
            raise ValueError(f"min_face must be a positive number of pixels or None, got {min_face!r}")
        if input_side is not None and (isinstance(input_side, bool) or not isinstance(input_side, int)
                                       or input_side < DIVISOR):
            raise ValueError(f"input_side must be an integer >= {DIVISOR} or None, got {input_side!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        self.min_score = float(min_score)
        self.look = Look(None if min_face is None else float(min_face))  # the look when `detect` is given none
        self.input_side = input_side
        self._session = _load_session(threads)

    # ------------------------------------------------------------------------------------------ detection

    def detect(self, image: np.ndarray, look: Look | None = None) -> list[Detection]:
        return self._detect(check_image(image), 0, look or self.look)

    def detect_padded(self, image: np.ndarray, pad: int, look: Look | None = None) -> list[Detection]:
        """As FaceDetector.detect_padded, without building the padded copy at full size: the border is added to
        the scaled copy, which the network's canvas holds anyway."""
        return self._detect(check_image(image), max(int(pad), 0), look or self.look)

    def _detect(self, rgb: np.ndarray, pad: int, look: Look) -> list[Detection]:
        """Detections in the pixels of `rgb` inside a black border `pad` wide (see detect_padded)."""
        if self._session is None:
            raise RuntimeError("this YuNetDetector was closed")
        height, width = rgb.shape[:2]
        levels = self.levels(width + 2 * pad, height + 2 * pad, look)
        boxes, keypoints, scores, fine = [], [], [], []
        calls = 0
        for k, scale in enumerate(levels):
            # the level's canvas: the image scaled, inside its scaled border, padded to multiples of DIVISOR
            offset = round(pad * scale)
            canvas_w = _padded(math.floor(width * scale + 1e-9) + 2 * offset)
            canvas_h = _padded(math.floor(height * scale + 1e-9) + 2 * offset)
            # the whole-image pass keeps every face, in one call; finer ones keep faces up to MAX_FACE, in tiles
            # when the canvas is larger than TILE (each cut from the image and scaled alone: bounded memory)
            max_face = None if k == 0 else MAX_FACE
            (tile_w, lefts), (tile_h, tops) = ((canvas_w, [0]), (canvas_h, [0])) if k == 0 else (
                _tiles(canvas_w, MAX_FACE + 2 * TILE_EDGE), _tiles(canvas_h, MAX_FACE + 2 * TILE_EDGE))
            for top in tops:
                for left in lefts:
                    window = _window(rgb, scale, pad, left, top, tile_w, tile_h)
                    if window is None:
                        continue  # all border: no face
                    x, (x0, y0) = window
                    calls += 1
                    found = self._run(x, max_face)
                    if found is None:
                        continue
                    shared = (left > 0, top > 0, left + tile_w < canvas_w, top + tile_h < canvas_h)
                    box, points, score = _inside(*found, shared, tile_w, tile_h)
                    # window pixels -> padded-image pixels: window pixel (x0, y0) is image pixel (0, 0) scaled
                    # by exactly `scale` (see _window)
                    boxes.append((box - np.tile([x0, y0], 2) + 0.5) / scale - 0.5 + pad)
                    keypoints.append((points - np.tile([x0, y0], 5) + 0.5) / scale - 0.5 + pad)
                    scores.append(score)
                    fine.append(np.full(len(score), k > 0))
        if not boxes or not sum(len(v) for v in scores):
            return []
        boxes, keypoints, scores = np.concatenate(boxes), np.concatenate(keypoints), np.concatenate(scores)
        fine = np.concatenate(fine)
        if len(scores) > TOP_K:
            best = np.argsort(-scores, kind="stable")[:TOP_K]
            boxes, keypoints, scores, fine = boxes[best], keypoints[best], scores[best], fine[best]
        keep = nms(boxes, scores, NMS_IOU)
        if len(keep) > 1 and calls > 1:
            # a level or tile can see part of a face as a face of its own: drop a box lying mostly inside a
            # better one (overlap over the smaller area, as BlazeFace's tiles and MTCNN's last step)
            inner = nms(boxes[keep], scores[keep], CONTAINED, mode="min")
            keep = keep[np.sort(inner)]
        whole = boxes[~fine]
        return [Detection(tuple(float(v) for v in boxes[i]), float(scores[i]), keypoints[i].reshape(5, 2),
                          # seen only by a finer pass: no whole-image box overlaps it as NMS would merge them
                          tiled=bool(fine[i]) and not (box_overlap(boxes[i], whole) > NMS_IOU).any())
                for i in keep]

    def levels(self, width: int, height: int, look: Look | None = None) -> list[float]:
        """The scales (input pixels per image pixel) the image is seen at (look None: the detector's own): the whole-image scale (longer side
        `input_side`, never above 1), then, when `min_face` asks for faces smaller than that scale finds, finer
        scales, each at most LEVEL_STEP times the one before, the last where a min_face face becomes
        SMALLEST_FACE input pixels (above 1 when min_face is below SMALLEST_FACE: the image is enlarged)."""
        min_face = (look or self.look).min_face
        longer = max(width, height)
        scale = 1.0 if self.input_side is None else min(1.0, self.input_side / longer)
        found = [scale]
        if min_face is None:
            return found
        finest = SMALLEST_FACE / min_face
        while scale < finest * 0.999:
            scale = min(scale * LEVEL_STEP, finest)
            found.append(scale)
        return found

    def _run(self, x: np.ndarray, max_face: float | None):
        """One network call on a 1×3×H×W canvas: its cells scoring at least min_score, decoded (see the module
        docstring), as (boxes (n, 4), keypoints (n, 10), scores (n,)) in canvas pixels; None when there are none."""
        width = x.shape[3]
        outputs = dict(zip(OUTPUT_NAMES, self._session.run(OUTPUT_NAMES, {"input": x})))
        boxes, points, scores = [], [], []
        for stride in STRIDES:
            cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0.0, 1.0)
            obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0.0, 1.0)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.min_score)[0]
            if len(keep) == 0:
                continue
            row, col = np.divmod(keep, width // stride)
            cell = np.stack([col, row], axis=1).astype(np.float64)
            raw = outputs[f"bbox_{stride}"][0, keep].astype(np.float64)
            centre = (cell + raw[:, :2]) * stride
            half = np.exp(np.minimum(raw[:, 2:4], 20.0)) * stride / 2  # clipped: exp stays finite on any input
            kps = (outputs[f"kps_{stride}"][0, keep].astype(np.float64).reshape(-1, 5, 2) + cell[:, None]) * stride
            if max_face is not None:
                small = 2 * half.max(axis=1) <= max_face
                centre, half, kps, keep = centre[small], half[small], kps[small], keep[small]
            boxes.append(np.concatenate([centre - half, centre + half], axis=1))
            points.append(kps.reshape(-1, 10))
            scores.append(score[keep].astype(np.float64))
        if not scores or not sum(len(s) for s in scores):
            return None
        return np.concatenate(boxes), np.concatenate(points), np.concatenate(scores)

    def close(self) -> None:
        self._session = None


def dynamic_model_bytes() -> bytes:
    """The shipped file with its input's height and width marked free. The file declares 1×3×640×640; its graph
    works at any multiple of 32 (OpenCV runs it at the image's own size), so the two sizes are renamed to symbolic
    dimensions in the bytes read, in memory: each `dim_value: 640` (field 1, varint: 08 80 05) becomes
    `dim_param: "H"` / `"W"` (field 2, one-byte string: 12 01 48 / 12 01 57), three bytes for three, so no
    enclosing length changes. The outputs keep their declared 640×640 lengths, which onnxruntime only warns about
    (below session_options' log level). Outputs are identical to the dynamic-size export in
    libfacedetection.train (onnx/yunet_s_dynamic.onnx) at 640×480, 160×96 and 1920×1088. The browser page
    (facemark web) is served these bytes too."""
    data = (HERE / MODEL_FILE).read_bytes()
    # graph input "input": FLOAT tensor, shape dims 1, 3, 640, 640
    fixed = b"\n\x05input\x12\x18\n\x16\x08\x01\x12\x12\n\x02\x08\x01\n\x02\x08\x03\n\x03\x08\x80\x05\n\x03\x08\x80\x05"
    if data.count(fixed) != 1:
        raise RuntimeError(f"{MODEL_FILE} is not the YuNet file this detector was written for (its input "
                           "is not the declared 1×3×640×640 float tensor named 'input')")
    free = fixed[:-10] + b"\n\x03\x12\x01H\n\x03\x12\x01W"
    return data.replace(fixed, free)


def _load_session(threads: int | None):
    """An onnxruntime session of `dynamic_model_bytes()`."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError("the YuNet detector needs onnxruntime: pip install onnxruntime") from None
    return onnxruntime.InferenceSession(dynamic_model_bytes(), session_options(threads),
                                        providers=["CPUExecutionProvider"])


def _padded(length: int) -> int:
    """`length` rounded up to a multiple of DIVISOR (at least DIVISOR)."""
    return max(DIVISOR, -(-length // DIVISOR) * DIVISOR)


def _window(rgb: np.ndarray, scale: float, pad: int, left: int, top: int, width: int, height: int):
    """(1×3×height×width float32 BGR 0..255 input, (x0, y0)) for the window at (left, top) of a level's canvas:
    the image scaled by `scale` inside a black border of `pad` image pixels (round(pad × scale) canvas pixels),
    black beyond. Window pixel x is image pixel (x - x0 + 0.5) / scale - 0.5 exactly (likewise y). Only the part
    of the image under the window is cut and scaled; None when the window holds none of the image."""
    img_h, img_w = rgb.shape[:2]
    offset = round(pad * scale)
    # the image pixels under the window, and one more each side so the resampling at its edges sees them
    first_x = max(0, math.floor((left - offset) / scale) - 1)
    first_y = max(0, math.floor((top - offset) / scale) - 1)
    end_x = min(img_w, math.ceil((left + width - offset) / scale) + 1)
    end_y = min(img_h, math.ceil((top + height - offset) / scale) + 1)
    if end_x <= first_x or end_y <= first_y:
        return None
    part = _scaled(rgb[first_y:end_y, first_x:end_x], scale)
    # where the part's first pixel goes in the window (rounded: the mapping uses the rounded place)
    x0 = offset + round(first_x * scale) - left
    y0 = offset + round(first_y * scale) - top
    x = np.zeros((1, 3, height, width), np.float32)
    u0, v0 = max(0, -x0), max(0, -y0)  # the part's pixels left of or above the window are cut off
    u1, v1 = min(part.shape[1], width - x0), min(part.shape[0], height - y0)
    if u1 <= u0 or v1 <= v0:
        return None
    x[0, :, y0 + v0:y0 + v1, x0 + u0:x0 + u1] = part[v0:v1, u0:u1, ::-1].transpose(2, 0, 1)
    # part pixel j is image pixel (j + 0.5) / scale - 0.5 + first_x, so window pixel x0 + j is too
    return x, (x0 - first_x * scale, y0 - first_y * scale)


def _inside(boxes, points, scores, shared: tuple[bool, bool, bool, bool], width: int, height: int):
    """A tile's detections without those reaching within TILE_EDGE of a side it shares with a neighbour (left,
    top, right, bottom): tiles overlap by more than any face they keep, so a neighbour holds such a face whole."""
    inside = np.ones(len(scores), bool)
    if shared[0]:
        inside &= boxes[:, 0] >= TILE_EDGE
    if shared[1]:
        inside &= boxes[:, 1] >= TILE_EDGE
    if shared[2]:
        inside &= boxes[:, 2] <= width - 1 - TILE_EDGE
    if shared[3]:
        inside &= boxes[:, 3] <= height - 1 - TILE_EDGE
    return boxes[inside], points[inside], scores[inside]


def _scaled(rgb: np.ndarray, scale: float) -> np.ndarray:
    """`rgb` scaled by exactly `scale` on both axes, pixel-centre convention (x_scaled = (x + 0.5) * scale - 0.5;
    the last row and column may stop short of the image's edge; empty when under one pixel). Shrinking: OpenCV's
    area average, first by the largest whole factor (its fast path: a 12-MP photo by 6 in ~6 ms, where Pillow's
    resize spends ~25 ms copying the array in), then by the rest (under 2×) on the small copy; enlarging:
    Pillow's bilinear."""
    height, width = rgb.shape[:2]
    out = (math.floor(width * scale + 1e-9), math.floor(height * scale + 1e-9))
    if scale == 1.0:
        return rgb
    if out[0] < 1 or out[1] < 1:
        return np.zeros((max(out[1], 0), max(out[0], 0), 3), np.uint8)
    if scale > 1.0:
        return np.asarray(Image.fromarray(rgb).resize(out, Image.Resampling.BILINEAR,
                                                      box=(0, 0, out[0] / scale, out[1] / scale)))
    import cv2

    whole = math.floor(1.0 / scale + 1e-9)
    if whole >= 2:
        # fx, fy given (no dsize): OpenCV keeps exactly that scale on both axes
        rgb = cv2.resize(rgb, None, fx=1.0 / whole, fy=1.0 / whole, interpolation=cv2.INTER_AREA)
    rest = scale * whole
    if rest < 1.0 - 1e-9:
        rgb = cv2.resize(rgb, None, fx=rest, fy=rest, interpolation=cv2.INTER_AREA)
    return rgb[:out[1], :out[0]]


def _tiles(length: int, overlap: float) -> tuple[int, list[int]]:
    """(tile side, first pixels of the tiles) covering 0..length with the fewest tiles of at most TILE,
    neighbours overlapping by at least `overlap`: equal tiles, each the smallest multiple of DIVISOR that
    covers the length with the overlaps (less work than TILE-sized ones)."""
    if length <= TILE:
        return length, [0]
    overlap += 1  # starts are rounded to whole pixels
    count = math.ceil((length - overlap) / (TILE - DIVISOR - overlap))  # DIVISOR: room to round the side up
    side = -(-math.ceil((length + (count - 1) * overlap) / count) // DIVISOR) * DIVISOR
    step = (length - side) / (count - 1)  # ≤ side - overlap by the choice of side
    return side, [round(k * step) for k in range(count)]
