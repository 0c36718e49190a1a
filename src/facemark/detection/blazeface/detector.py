"""BlazeFace (Bazarevsky et al. 2019, Google MediaPipe) on onnxruntime and numpy: no torch, no mediapipe.

The networks are MediaPipe's own face detectors, converted once from the .tflite files of the mediapipe
0.10.21 wheel by scripts/convert_blazeface.py (weights unchanged; see LICENSE-weights.md):

- "full" (full range, default): 192×192 input, one 48×48 grid of anchors (2304), faces from a few percent of
  the input's side up to most of it (MediaPipe: "within 5 m of the camera").
- "short" (short range): 128×128 input, 16×16×2 + 8×8×6 anchors (896), faces filling much of the frame
  ("within 2 m"); faster, blind to faces under about a tenth of the image.

How an image becomes detections, as MediaPipe's face detection graph does it (the anchor and decoding
parameters are those published in mediapipe/modules/face_detection/face_detection_{short,full}_range.pbtxt
and face_detection.pbtxt; the code is ours):

1. The image is letterboxed into the network's square input: scaled so its longer side fills it, centred,
   black (-1 after scaling to [-1, 1]) around it. With `min_face`, smaller squares cut from the image are
   added, in a pyramid of overlapping tiles, so small faces reach the size the network finds (see `windows`).
2. Each anchor's 16 numbers are decoded: box centre = anchor centre + (dx, dy), box size = (w, h), six
   keypoints = anchor centre + offsets, all in input pixels (anchors have a fixed unit size); score =
   sigmoid(logit clipped to ±100).
3. Boxes scoring at least `min_score` are merged by MediaPipe's weighted non-maximum suppression: each
   cluster of boxes overlapping its best one by IoU > 0.3 becomes the score-weighted mean of its boxes and
   keypoints, with the best one's score.

Coordinates: pixels of the image given, origin at the centre of the top-left pixel. Keypoints (6, 2), in the
image's left-to-right order for an upright unmirrored face: the eye on the image's left (the subject's right
eye), the other eye, nose tip, mouth centre, the tragion (ear) on the image's left, the other tragion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facemark.detection.core import Detection, FaceDetector, Look, check_image, session_options
from facemark.detection.nms import box_overlap, nms, nms_groups

HERE = Path(__file__).parent


@dataclass(frozen=True)
class BlazeFaceModel:
    """One network and its anchor layout (MediaPipe's SsdAnchorsCalculator options)."""

    file: str
    input_size: int  # S: the network sees S×S pixels
    strides: tuple[int, ...]  # one per anchor layer; layers of equal stride share one grid
    anchors_per_layer: int  # 1 aspect ratio, plus 1 when interpolated_scale_aspect_ratio > 0
    # the smallest face box (side, in input pixels) found in most cases: measured on 300-W faces pasted at
    # known sizes (benchmarks/detector.py); `windows` plans tiles so min_face reaches at least this size
    smallest_face: float


MODELS = {
    # full range: planning tiles for 24-px faces instead finds 92 of 96 40-px faces in a 12-MP group photo
    # (min_face=40) against 90, but its finer tiles also find ~30-px false faces (5 on tests/scenarios/test_robustness.py's
    # six-face canvas, trust ≤ 0.1): not kept
    "full": BlazeFaceModel("blazeface_full.onnx", 192, (4,), 1, smallest_face=20.0),
    "short": BlazeFaceModel("blazeface_short.onnx", 128, (8, 16, 16, 16), 2, smallest_face=20.0),
}
# Per model combination: where the box of a face's face88 teacher points lies relative to the detection box
# (see FaceDetector.LANDMARK_BOX): medians over 500 CelebA faces, measured by
#   python scripts/calibrate_detector_box.py work/celeba_clean.jsonl --images ../shared/data/celeba/images \
#       --detector NAME --count 500
# BlazeFace's box is narrower and shorter than the points' box and sits higher. Mean IoU with the points' box,
# as detected -> mapped: 0.74 -> 0.89 (full+short, all 500 found), 0.65 -> 0.81 (full, 10 missed), 0.76 -> 0.89
# (short, all found); MTCNN: 0.67 -> 0.88.
LANDMARK_BOXES = {
    "full+short": (0.001, 0.07, 0.869, 0.863),
    "full": (0.001, 0.099, 0.83, 0.821),
    "short": (0.0, 0.065, 0.88, 0.871),
}
NUM_KEYPOINTS = 6
SCORE_CLIP = 100.0  # logits are clipped to ±this before the sigmoid (MediaPipe's score_clipping_thresh)
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold
CONTAINED = 0.6  # with tiles, a box overlapping a better one by this share of its own area is a face part
EDGE_BLEND = 2  # output pixels resampled past the image's edge, so the filter blends the edge with black
# detect_padded's border shows the image mirrored at its edges (reflect-101) in a band MIRROR_BAND of its width,
# black beyond: a face cut by the edge is completed by its own mirror image (benchmarks/results/border_cut.md)
MIRRORED_BORDER = True
# The mirrored band's share of the border: a wider one completes more cut faces and perturbs more faces near the
# edge (docs/decisions.md, "a mirrored border")
MIRROR_BAND = 0.5
# ...so a face near the edge has a mirror twin in the border: a detection whose box centre lies beyond the image's
# edge by more than this share of its side is a twin, and dropped (a face cut by the edge, completed by its mirror
# image, is centred near the edge; a twin of a face centred closer to it than this overlaps the face and is merged)
MIRROR_TWIN_SHARE = 0.25
# A face cut by the image's edge shows the network less of itself and scores lower, even completed by the mirror:
# a box reaching beyond the edge by at least EDGE_REACH of its side is kept from EDGE_SCORE_SHARE of min_score
# (the landmark passes' trust floor judges it then; docs/decisions.md, "a lower score at the edge")
EDGE_SCORE_SHARE = 0.6
EDGE_REACH = 0.15
# "full+short": a face the short-range network finds spanning at least this share of the image's shorter side (a
# portrait, a selfie, a webcam frame) is kept as that network found it (the full-range one scores such faces low)
PORTRAIT_FACE = 0.3
# An image whose longer side exceeds this many times its shorter side is looked at as squares of its shorter side
# along its length (a panorama, a strip), not letterboxed whole (its faces would shrink below the smallest face)
LONG_IMAGE_ASPECT = 2.0
TILE_OVERLAP = 2.5  # tiles overlap by this many smallest faces, so every face of a level lies whole in a tile
# Windows per network call. One: a batch's activations are held at once (and kept by onnxruntime's arena), so
# the 6000×6000 JPEG of tests/unit/pipeline/test_large_images.py grew the peak memory by 54 MB with 16 windows a call, 32 MB
# with 4, 16 MB with 1; a call costs ~0.1 ms more than a batch slot.
WINDOWS_PER_CALL = 1
# The default look's crowd (Look.crowd) is found by YuNet in one pass over the image shrunk so the crowd's smallest
# face is this many input pixels (YuNet finds 47 of 60 HELEN faces at 24 px, 59 at 32: yunet/detector.py)
CROWD_INPUT_FACE = 28.0


def anchor_centres(model: BlazeFaceModel) -> np.ndarray:
    """(A, 2) anchor centres in input pixels (x, y; pixel-edge coordinates, 0..S across the input), in the
    network's output order: for each run of layers of equal stride, row by row, column by column, every
    anchor of the run at that cell."""
    centres = []
    layer = 0
    while layer < len(model.strides):
        stride = model.strides[layer]
        run = 1
        while layer + run < len(model.strides) and model.strides[layer + run] == stride:
            run += 1
        cells = math.ceil(model.input_size / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2) + 0.5  # cell centres, in cells
        grid = np.repeat(grid, run * model.anchors_per_layer, axis=1).reshape(-1, 2)
        centres.append(grid * model.input_size / cells)
        layer += run
    return np.concatenate(centres).astype(np.float64)


@dataclass(frozen=True)
class Window:
    """A square of the image (pixel-edge coordinates; it may reach outside the image) seen as S×S input."""

    left: float
    top: float
    side: float
    # the largest face box (longer side, input pixels) kept from this window: a tile drops faces its
    # neighbours may cut (a coarser level finds them whole); None for the whole image
    max_face: float | None = None

    def to_image(self, xy: np.ndarray, size: int) -> np.ndarray:
        """Input pixel-edge coordinates (…, 2) -> image pixel-centre coordinates (…, 2)."""
        return xy * (self.side / size) + np.array([self.left, self.top]) - 0.5


class BlazeFaceDetector(FaceDetector):
    """MediaPipe's BlazeFace face detector, converted to ONNX, on onnxruntime.

    model: "full+short" (default): the full-range network (192-px input) on every window and the short-range
        one (128-px input, 1.3 ms) on the whole image as well, because the full-range network scores faces
        filling half the image or more low (on AFW it finds 323 of 337 faces alone, 337 with short range);
        "full" or "short" alone.
    min_score: detections scoring below this (0..1) are dropped (MediaPipe's min_detection_confidence), except a
        box reaching beyond the image's edge (EDGE_REACH), which needs EDGE_SCORE_SHARE of it.
    min_face: the smallest face to look for when `detect` is given no `Look`: the longer side of the box around
        its landmarks (about brows to chin), in pixels of the image the detector sees. None: only the whole-image
        pass, which finds faces down to about `smallest_face / input_size` of the image's longer side (full
        range: ~1/10, a 64-px face in a 640-px photo; short range alone: ~1/6). Smaller values add tiled passes
        (see `windows`); the time grows with the image's area over min_face².
    threads: onnxruntime intra-op threads (None: 1; see `session_options`).

    Raises ValueError for an unknown model or an out-of-range parameter, RuntimeError when onnxruntime is
    missing, and `detect` raises ValueError for anything but an RGB uint8 H×W×3 array.
    """

    TAKES_MIN_FACE = True
    LONG_ASPECT = LONG_IMAGE_ASPECT

    def __init__(self, model: str = "full+short", min_score: float = 0.5, min_face: float | None = None,
                 threads: int | None = None):
        if not isinstance(model, str) or model not in LANDMARK_BOXES:
            raise ValueError(f"unknown BlazeFace model {model!r}; use {', '.join(map(repr, LANDMARK_BOXES))}")
        names = model.split("+")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score!r}")
        if min_face is not None and not (isinstance(min_face, int | float) and min_face > 0):
            raise ValueError(f"min_face must be a positive number of pixels or None, got {min_face!r}")
        if threads is not None and (isinstance(threads, bool) or int(threads) != threads or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        try:
            import onnxruntime
        except ImportError:
            raise RuntimeError("the BlazeFace detector needs onnxruntime: pip install onnxruntime") from None
        self.model_name = model
        self.models = [MODELS[n] for n in names]
        self.model = self.models[0]  # the one whose tiles reach min_face
        self.LANDMARK_BOX = LANDMARK_BOXES[model]
        self.min_score = float(min_score)
        self.look = Look(None if min_face is None else float(min_face))  # the look when `detect` is given none
        self._anchors = [anchor_centres(m) for m in self.models]
        self._threads = threads
        self._crowd_finder = None  # YuNet, made on the first crowd look (Look.crowd)
        self._sessions = [onnxruntime.InferenceSession(str(HERE / m.file), session_options(threads),
                                                       providers=["CPUExecutionProvider"]) for m in self.models]

    # ------------------------------------------------------------------------------------------ detection

    def detect(self, image: np.ndarray, look: Look | None = None) -> list[Detection]:
        return self._detect(check_image(image), 0, look or self.look)

    def detect_padded(self, image: np.ndarray, pad: int, look: Look | None = None) -> list[Detection]:
        """As FaceDetector.detect_padded, without building the padded copy: the windows are planned on the
        padded size and cut from the image itself. The border's inner MIRROR_BAND is not black but the image
        mirrored at its edges (MIRRORED_BORDER), so that a face cut by the edge looks whole."""
        return self._detect(check_image(image), max(int(pad), 0), look or self.look)

    def _detect(self, rgb: np.ndarray, pad: int, look: Look) -> list[Detection]:
        """Detections in the pixels of `rgb` inside a virtual border `pad` wide (see detect_padded)."""
        if self._sessions is None:
            raise RuntimeError("this BlazeFaceDetector was closed")
        height, width = rgb.shape[:2]
        if look.crowd and look.min_face is not None:
            # the default look's crowd: the whole-image look, then YuNet's cheaper passes for the smaller faces
            return self._with_crowd(self._detect(rgb, pad, Look()), rgb, pad, look.min_face)
        windows = [Window(w.left - pad, w.top - pad, w.side, w.max_face)
                   for w in self.windows(width + 2 * pad, height + 2 * pad, look)]
        whole = [w for w in windows if w.max_face is None]  # the whole-image look (no tiles)
        found = []  # per network run: (boxes, keypoints, scores, from a tile)
        tiled = len(windows) > len(whole)
        if self.model_name == "full+short":
            found += self._run(1, rgb, whole, pad)
            if any(b[2] - b[0] >= PORTRAIT_FACE * min(height, width) for b in _sure_boxes(found, whole, self.min_score)):
                # a face filling much of the image (a portrait, a selfie, a webcam frame): kept as the short-range
                # network found it; the full-range network and the tiles look for every other face
                near = self._merged(found, pad, tiled=False, calibrated="short")
                others = self._merged(self._run(0, rgb, windows, pad), pad, tiled=tiled, calibrated="full")
                boxes = np.array([d.box for d in near])
                others = [d for d in others if not (box_overlap(np.array(d.box), boxes) > NMS_IOU).any()]
                return _without_twins(sorted(near + others, key=lambda d: -d.score), width, height, pad)
        found += self._run(0, rgb, windows, pad)
        return _without_twins(self._merged(found, pad, tiled=tiled, calibrated=self.model_name), width, height, pad)

    def _run(self, k: int, rgb: np.ndarray, windows: list["Window"], pad: int = 0) -> list[tuple]:
        """Network k on each window, a few per call (fewer calls, bounded memory): per window with detections,
        (boxes (n, 4), keypoints (n, 6, 2), scores (n,), the window) in the pixels of the padded image; `pad`: the
        width of the border around `rgb` (MIRRORED_BORDER: its inner MIRROR_BAND shows the image mirrored)."""
        model, session, anchors = self.models[k], self._sessions[k], self._anchors[k]
        out = []
        border = MIRROR_BAND * pad if MIRRORED_BORDER else 0
        size = rgb.shape[1], rgb.shape[0]
        for start in range(0, len(windows), WINDOWS_PER_CALL):
            batch = windows[start:start + WINDOWS_PER_CALL]
            x = np.stack([_network_input(rgb, w, model.input_size, border) for w in batch])
            regressors, logits = session.run(None, {"image": x})
            for window, reg, logit in zip(batch, regressors, logits):
                decoded = self._decode(reg, logit[:, 0], anchors, window, model.input_size, size)
                if decoded is not None:
                    out.append((*decoded, window))
        return out

    def _with_crowd(self, found: list[Detection], rgb: np.ndarray, pad: int, min_face: float) -> list[Detection]:
        """`found` (the whole-image look, padded pixels) and the faces down to `min_face` that YuNet finds in one
        pass over the image shrunk so such a face is CROWD_INPUT_FACE pixels (a fraction of the time of
        BlazeFace's tiles at that size: benchmarks/results/speed.md), boxes moved to this detector's
        calibration; a YuNet face overlapping one already found (IoU) is left out, the others are marked `tiled` (not
        from this detector's whole-image look: the trust floor for tiles holds)."""
        from facemark.detection.yunet import YuNetDetector

        if self._crowd_finder is None:
            self._crowd_finder = YuNetDetector(input_side=None, threads=self._threads)
        scale = min(1.0, CROWD_INPUT_FACE / min_face)
        height, width = rgb.shape[:2]
        # OpenCV's bilinear shrink, as the detector's copy is made (the page's opencvShrink): 0.3 ms for a 1280×720
        # photo where Pillow's antialiased filter took 7 ms, the same faces found (benchmarks/results/group_photos.md)
        # fx, fy given (no dsize): OpenCV keeps exactly that scale on both axes
        small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        # a border of one crowd face is enough for a crowd face cut by the edge (the whole-image look has its own)
        small_pad = math.floor(min(pad * scale, CROWD_INPUT_FACE) + 0.5)
        crowd = self._crowd_finder.detect_padded(small, small_pad, Look())
        if not crowd:
            return found

        def back(q: np.ndarray) -> np.ndarray:  # padded copy pixels -> padded image pixels (pixel centres)
            return (np.asarray(q, np.float64) - small_pad + 0.5) / scale - 0.5 + pad

        boxes = back(np.array([d.box for d in crowd], np.float64).reshape(-1, 2, 2)).reshape(-1, 4)
        boxes = _recalibrated(boxes, YuNetDetector.LANDMARK_BOX, self.LANDMARK_BOX)
        known = np.array([d.box for d in found], np.float64).reshape(-1, 4)
        out = list(found)
        for d, box in zip(crowd, boxes):
            # only a box of about its size is the same face: a loose box around a small face (the whole-image
            # look's guess at a face below its reach) must not hide it; parts of a face are left to the landmark
            # passes, which find the same face twice and keep it once
            if len(known) and (box_overlap(box, known) > NMS_IOU).any():
                continue
            out.append(Detection(tuple(float(v) for v in box), d.score, back(d.keypoints), tiled=True))
            known = np.vstack([known, box[None]])
        return sorted(out, key=lambda d: -d.score)

    def _merged(self, found: list[tuple], pad: int, tiled: bool, calibrated: str) -> list[Detection]:
        """MediaPipe's weighted non-maximum suppression over every window's boxes; boxes found by the short-range
        network alone are moved to where the default calibration expects them (LANDMARK_BOXES["short"] ->
        this detector's), so one LANDMARK_BOX serves both; a cluster with no box from a whole-image window is
        `tiled`."""
        if not found:
            return []
        boxes = np.concatenate([f[0] for f in found]) + pad
        keypoints = np.concatenate([f[1] for f in found]) + pad
        scores = np.concatenate([f[2] for f in found])
        from_tile = np.concatenate([np.full(len(f[2]), f[3].max_face is not None) for f in found])
        if calibrated != self.model_name:
            boxes = _recalibrated(boxes, LANDMARK_BOXES[calibrated], self.LANDMARK_BOX)
        out = []
        # boxes under min_score (kept only beyond the edge: EDGE_SCORE_SHARE) never join a sure box's cluster, and
        # their own clusters count only where no sure detection overlaps them: the faces found before are untouched
        sure = scores >= self.min_score
        for part in (np.flatnonzero(sure), np.flatnonzero(~sure)):
            known = np.array([d.box for d in out], np.float64).reshape(-1, 4)
            for group in nms_groups(boxes[part], scores[part], NMS_IOU):
                group = part[group]
                weights = scores[group] / scores[group].sum()
                box = weights @ boxes[group]
                if not sure[group[0]] and (box_overlap(box, known, "min") > NMS_IOU).any():
                    continue
                points = np.einsum("n,nkd->kd", weights, keypoints[group])
                out.append(Detection(tuple(float(v) for v in box), float(scores[group[0]]), points,
                                     bool(from_tile[group].all()), beyond_edge=not sure[group[0]]))
        if tiled and len(out) > 1:
            # tiles can see part of a face as a small face of its own: drop a box lying mostly inside a
            # better one (overlap over the smaller area, as MTCNN's last step)
            keep = nms(np.array([d.box for d in out]), np.array([d.score for d in out]), CONTAINED, mode="min")
            out = [out[i] for i in sorted(keep)]
        return out  # nms_groups gives the clusters best first

    def _decode(self, reg: np.ndarray, logit: np.ndarray, anchors: np.ndarray, window: "Window", size: int,
                image_size: tuple[int, int]):
        """(boxes (n, 4), keypoints (n, 6, 2), scores (n,)) in image pixels for the anchors scoring at least
        min_score in one window's output (regressors A×16, logits A), or EDGE_SCORE_SHARE of it for a box reaching
        beyond the edge of the (width, height) image (EDGE_REACH); None when there are none."""
        score = 1.0 / (1.0 + np.exp(-np.clip(logit.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
        keep = score >= self.min_score * EDGE_SCORE_SHARE
        if window.max_face is not None:
            keep &= np.maximum(reg[:, 2], reg[:, 3]) <= window.max_face
        keep = np.nonzero(keep)[0]
        raw, centres = reg[keep].astype(np.float64), anchors[keep]
        centre, half = raw[:, 0:2] + centres, raw[:, 2:4] / 2
        corners = np.concatenate([window.to_image(centre - half, size), window.to_image(centre + half, size)], axis=1)
        weak = score[keep] < self.min_score
        if weak.any():
            sure = ~weak | (_reach_beyond(corners, image_size) >= EDGE_REACH)
            keep, raw, centres, corners = keep[sure], raw[sure], centres[sure], corners[sure]
        if len(keep) == 0:
            return None
        points = raw[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + centres[:, None]
        return corners, window.to_image(points, size), score[keep]

    def windows(self, width: int, height: int, look: Look | None = None) -> list[Window]:
        """The squares of the image the network looks at (look None: the detector's own): the whole image
        letterboxed (centred, as MediaPipe does), then, when `look.min_face` asks for faces smaller than that pass
        finds, the fewest levels of tiles, evenly spaced in scale, at most TILE_OVERLAP times finer each than
        the one before, the last at exactly the scale where a min_face face becomes `smallest_face` input
        pixels. A level keeps faces of up to TILE_OVERLAP times its smallest face and its tiles overlap by that
        much, so every face size between min_face and the whole-image pass is some level's, whole in some
        tile."""
        look = look or self.look
        size, smallest = self.model.input_size, self.model.smallest_face
        longer, shorter = max(width, height), min(width, height)
        if longer > self.LONG_ASPECT * shorter:
            # a long image: squares of its shorter side along its length, overlapping by half; never smaller than
            # the network's input (a strip thinner than that is not enlarged into hundreds of squares: a face
            # there is at most its thickness, which the input holds as it is)
            side = float(min(longer, max(shorter, size)))
            found = [Window(left, top, side) for top in _tile_starts(height, side, side / 2)
                     for left in _tile_starts(width, side, side / 2)]
        else:
            found = [Window((width - longer) / 2, (height - longer) / 2, float(longer))]
        scale = size / found[0].side
        if look.min_face is None:
            return found
        finest = smallest / look.min_face  # input pixels per image pixel at the last level
        if finest <= scale * 1.001:
            return found
        levels = math.ceil(math.log(finest / scale) / math.log(TILE_OVERLAP) - 1e-9)
        step = (finest / scale) ** (1 / levels)
        for k in range(1, levels + 1):
            found += self._tile_level(width, height, scale * step ** k)
        return found

    def _tile_level(self, width: int, height: int, scale: float) -> list[Window]:
        """Overlapping square tiles covering the image, each seen at `scale` input pixels per image pixel."""
        size, smallest = self.model.input_size, self.model.smallest_face
        side = size / scale  # tile side in image pixels
        overlap = TILE_OVERLAP * smallest / scale
        return [Window(left, top, side, max_face=TILE_OVERLAP * smallest)
                for top in _tile_starts(height, side, overlap) for left in _tile_starts(width, side, overlap)]

    def close(self) -> None:
        self._sessions = None
        if self._crowd_finder is not None:
            self._crowd_finder.close()


def _network_input(rgb: np.ndarray, window: Window, size: int, border: float = 0.0) -> np.ndarray:
    """The S×S×3 float32 network input in [-1, 1] for one window: its pixels resampled with Pillow's
    antialiasing bilinear filter. Where the window leaves the image: the image mirrored at its edge (reflect-101)
    within `border` image pixels of it, -1 (black) beyond. Without a border, the filter blends the edge with black
    (EDGE_BLEND output pixels past it are resampled too), as it would on an image padded with black."""
    height, width = rgb.shape[:2]
    scale = size / window.side
    blend = 0 if border > 0 else EDGE_BLEND
    # the output pixels covering the image (and `blend` more where the window leaves it), and the edge box
    # they come from (exactly, up to the < half output pixel rounded at an image border)
    x0 = min(max(0, math.ceil(-window.left * scale - 1e-6) - blend), size)
    y0 = min(max(0, math.ceil(-window.top * scale - 1e-6) - blend), size)
    x1 = max(min(size, math.floor((width - window.left) * scale + 1e-6) + blend), x0)
    y1 = max(min(size, math.floor((height - window.top) * scale + 1e-6) + blend), y0)
    out = np.full((size, size, 3), -1.0, np.float32)
    if x1 > x0 and y1 > y0:
        left, top = window.left + x0 / scale, window.top + y0 / scale
        right, bottom = window.left + x1 / scale, window.top + y1 / scale
        l0, t0 = math.floor(left), math.floor(top)
        r0, b0 = math.ceil(right), math.ceil(bottom)
        if l0 >= 0 and t0 >= 0 and r0 <= width and b0 <= height:
            part = np.ascontiguousarray(rgb[t0:b0, l0:r0])
        else:  # the source box reaches past the image: black there
            part = np.zeros((b0 - t0, r0 - l0, 3), np.uint8)
            ix0, iy0, ix1, iy1 = max(l0, 0), max(t0, 0), min(r0, width), min(b0, height)
            if ix1 > ix0 and iy1 > iy0:
                part[iy0 - t0:iy1 - t0, ix0 - l0:ix1 - l0] = rgb[iy0:iy1, ix0:ix1]
        box = (left - l0, top - t0, right - l0, bottom - t0)
        # reducing_gap 2: Pillow first box-reduces by a whole factor, then filters: ~0.5 ms less per 640×480
        # image than 3; 1.5 saves a little more but found 26 of the 30 half-cut HELEN faces against 27
        resized = Image.fromarray(part).resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=box,
                                               reducing_gap=2.0)
        out[y0:y1, x0:x1] = np.asarray(resized, np.float32) * (2.0 / 255.0) - 1.0
        if border > 0:
            _mirror_border(out, (x0, y0, x1, y1), border * scale)
    return out


def _without_twins(found: list[Detection], width: int, height: int, pad: int) -> list[Detection]:
    """`found` (padded pixels of a width×height image inside a border `pad` wide) less the mirror twins of faces
    near the edge (MIRROR_TWIN_SHARE); all of it without a mirrored border."""
    if not (MIRRORED_BORDER and pad > 0):
        return found
    kept = []
    for d in found:
        x0, y0, x1, y1 = d.box
        cx, cy, reach = (x0 + x1) / 2 - pad, (y0 + y1) / 2 - pad, MIRROR_TWIN_SHARE * max(x1 - x0, y1 - y0)
        if -reach <= cx <= width + reach and -reach <= cy <= height + reach:
            kept.append(d)
    return kept


def _reach_beyond(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(n,): how far each box (n, 4; pixel-centre x0, y0, x1, y1) reaches beyond the nearest edge it crosses of a
    (width, height) image, over the box's longer side; 0 or less for a box inside the image."""
    width, height = image_size
    beyond = np.max([-0.5 - boxes[:, 0], -0.5 - boxes[:, 1], boxes[:, 2] - (width - 0.5), boxes[:, 3] - (height - 0.5)],
                    axis=0)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return beyond / np.maximum(side, 1e-9)


def _mirror_border(out: np.ndarray, inside: tuple[int, int, int, int], band: float) -> None:
    """Fill `out` (S×S×3) around its `inside` box (x0, y0, x1, y1 output pixels: the image) with the box mirrored
    at its edges (reflect-101), at most `band` output pixels wide; the rest is left as it is."""
    size = out.shape[0]
    x0, y0, x1, y1 = inside
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    b = max(int(round(band)), 0)
    bx0, by0, bx1, by1 = max(x0 - b, 0), max(y0 - b, 0), min(x1 + b, size), min(y1 + b, size)
    if (bx0, by0, bx1, by1) == (x0, y0, x1, y1):
        return
    widths = ((y0 - by0, by1 - y1), (x0 - bx0, bx1 - x1), (0, 0))
    out[by0:by1, bx0:bx1] = np.pad(out[y0:y1, x0:x1], widths, mode="reflect")


def _tile_starts(length: int, side: float, overlap: float) -> list[float]:
    """Left (or top) edges of tiles of `side` covering 0..length, neighbours overlapping by at least
    `overlap`; one centred tile when a tile already spans the length."""
    if side >= length:
        return [(length - side) / 2]
    count = math.ceil((length - overlap) / (side - overlap))
    step = (length - side) / (count - 1) if count > 1 else 0.0
    return [k * step for k in range(count)]


def _sure_boxes(found: list[tuple], windows: list[Window], min_score: float):
    """Every box scoring at least `min_score` (not one kept only for reaching beyond the edge) of the runs in
    `found` whose window is one of `windows`."""
    for boxes, _, scores, window in found:
        if window in windows:
            yield from boxes[scores >= min_score]


def _recalibrated(boxes: np.ndarray, source: tuple, target: tuple) -> np.ndarray:
    """Boxes (n, 4) calibrated by LANDMARK_BOX `source` moved so that `target` maps them to the same landmark
    boxes (FaceDetector.landmark_box: centre shift in units of the box's size, then size ratios)."""
    (sdx, sdy, ssw, ssh), (tdx, tdy, tsw, tsh) = source, target
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + sdx * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + sdy * h
    w2, h2 = w * ssw / tsw, h * ssh / tsh
    cx, cy = cx - tdx * w2, cy - tdy * h2
    return np.stack([cx - w2 / 2, cy - h2 / 2, cx + w2 / 2, cy + h2 / 2], axis=1)
