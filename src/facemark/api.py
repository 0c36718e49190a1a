"""The one public entry point: `Landmarker(...).detect(image) -> list[Face]`.

A face detector finds boxes; each box is turned into the framing the landmark network was trained on,
cropped, and the network's points are mapped back to the image. Detector boxes and the network's framing
(a square around the *points'* box) differ, so a second pass re-frames the crop on the first pass's points:
the network then sees faces framed exactly as in training.

Very large images (a 12000×12000 scan) given as a file or a PIL image are never decoded whole into an array:
the detector sees a shrunk copy, and each face is cut from the image decoded at the smallest size that keeps it
sharp (a JPEG file at 1/2, 1/4 or 1/8 size by libjpeg, nearly free; other formats are decoded once, whole, and
cut from without further copies). Points always come in full-resolution pixels.

What the detector sees (`Landmarker._candidates`, `_detect_scale`):
- the image scaled so a face of `min_face` pixels becomes the smallest face the detector finds (its own
  `min_face_size`, in the pixels it sees: 40 for MTCNN), so small faces in big photos are found; on the reduced
  path above, the detector's copy also holds at most HUGE_DETECT_PIXELS pixels;
- with a black border of BORDER_PAD of its shorter side, so a face cut by the image's edge is still a whole
  window for the detector (FaceDetector.detect_padded: BlazeFace's border is virtual, no copy is made; boxes
  come back in image pixels, possibly reaching outside the image);
- when no face it finds is surely upright (see ORIENTATION_CHECK), turned by 90°, 180° and 270° as well
  (faces lying on their side or upside down; `Landmarker.candidates`, used by video, only when it finds none).
Each face's first crop is turned by its roll, measured from the detector's eye keypoints (or the quarter turn
it was found in); the second pass is framed on the first pass's points and turned by the roll of their eyes,
so the network sees the face level, as in training, and its points are turned back into the image. That pass
also predicts its crop's mirror image, in the same batch: the final points are the two averaged, a face whose
two disagree is tried all four ways up, and the two give the trust score (facemark.trust). Cost per face:
three crops in two network calls; on images with no surely upright face up to three more detector runs and
sixteen more crops per doubtful face.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from facemark.detection.core import DEFAULT_DETECTOR, Detection
from facemark.detection.nms import nms
from facemark.images import ImageReader, load_image, load_image_downscaled
from facemark.network import load_network, predict_crops
from facemark.preprocessing import (CropTransform, crop_image, points_crop_transform, roll_angle,
                                    square_crop_transform)
from facemark.scheme import Scheme
from facemark.trust import disagreement, trust_from_disagreement

# Files and PIL images with a longer side above this take the reduced path (see the module docstring); the
# detector then sees a copy shrunk to its own `max_side` (MTCNN: 640), or to this side if it has none. Up to
# this size (a 12-MP phone photo, 4032×3024) the image is decoded whole and everything runs on it, as before.
LARGE_IMAGE_SIDE = 4096
# On the reduced path a face is cut from the smallest decode in which its crop square still spans this many
# pixels per crop pixel, so the crop's own antialiased resize does the last shrinking. Measured on the upscaled
# sample with the same boxes, the worst point moves 0.07-0.09% of the face's size from the full-resolution
# crop's (0.10-0.14% at 1.0, 0.7% at 0.5); the detector's box, found on a differently shrunk copy, moves it more
# (tests/test_huge_images.py).
CROP_DETAIL = 2.0

Cropper = Callable[[CropTransform], np.ndarray]  # a full-resolution crop transform -> its S×S×3 uint8 crop

# Smallest face looked for by default by a detector with a fixed smallest face (MTCNN): the side, in pixels of
# the input image, of a face the detector is made to find (the image is scaled so that it becomes the
# detector's own smallest face). 40 px: MTCNN then runs on every pixel up to LARGE_IMAGE_SIDE (a 12-MP photo:
# ~0.6 s of detection on one core, against ~0.2 s when it was shrunk to 640 px and missed faces below ~250 px).
DEFAULT_MIN_FACE = 40.0
# A detector that tiles (BlazeFace) looks once over the whole image and reaches faces of about a tenth of its
# longer side: enough for a portrait or a webcam frame, so images up to TILED_SINGLE_PASS_SIDE get that one
# pass. On bigger photos it is asked by default for faces down to 1/TILED_FACES_ACROSS of the longer side (a
# 4000×3000 photo: 83 px; never below TILED_MIN_FACE), so group photos keep their small faces while the work
# stays bounded (about (TILED_FACES_ACROSS)² single-pass windows whatever the size); `min_face` overrides it.
TILED_SINGLE_PASS_SIDE = 1024
TILED_FACES_ACROSS = 48
TILED_MIN_FACE = 48.0
# CPU threads of the detector and the landmark network unless asked otherwise. One: the work per image is a few
# small networks, which gain little from more threads on an idle machine and lose much on a busy one (threads
# waiting on a preempted sibling; benchmarks/results/speed.md). More cores: `facemark predict --workers N`.
DEFAULT_THREADS = 1
# The detector's copy never holds more pixels than this (a small min_face on a big photo would enlarge it)...
MAX_DETECT_PIXELS = 50_000_000
# ...nor, on the reduced path (images above LARGE_IMAGE_SIDE, never decoded whole), more than this: its copy must
# stay small next to the image (a 12000² scan: faces from ~750 px are found there; pass load_image(path) with
# a smaller min_face to look at every pixel, at the memory cost of a full decode).
HUGE_DETECT_PIXELS = 640 * 640
# Black border around the detector's copy, as a fraction of its shorter side: a face whose centre lies on the
# image's edge is then still a whole face-sized window for the detector. 30 HELEN faces cut through their middle
# by the left edge: found 21 without, 26 / 27 / 28 with 0.10 / 0.15 / 0.25 (27 at 0.25 with BlazeFace's virtual
# border, which skips the padded copy, and its input resampling since); MTCNN on a 640×480 photo took
# 23 ms without, 29 ms with 0.25 (tests/test_small_and_border_faces.py).
BORDER_PAD = 0.25
# A refinement pass is repeated (at most MAX_PASSES in all) while the roll it measures differs from the roll its
# crop was turned by by more than this: a detector without eye keypoints gives an upright first crop, whose
# points on a tilted face only half measure its roll.
ROLL_RECHECK = math.radians(15)

MAX_PASSES = 3
# The first crop stays upright below this roll of the detector's eye keypoints: BlazeFace's are a few pixels off
# (turning by them cost 5.00% -> 5.59% NME on AFW, benchmarks/human_labels.py), the network is trained on rolls
# up to ±45°, and the next pass turns the crop by the roll of its own, better, eye points.
FIRST_CROP_MIN_ROLL = math.radians(25)
# Which way up a face is: the refining pass (or, without refine, the one pass) predicts each crop and its mirror
# image. On a face upright in its crop the two agree closely (mean point distance ≤ 0.013 of the crop on HELEN
# faces); on a face turned by 90° or more they do not (≥ 0.02: the network draws an upright shape on whatever it
# is shown), and MTCNN finds such faces with confident, upright-looking, wrong eye keypoints. Above
# ORIENTATION_CHECK the face is tried all four ways up (see Landmarker._four_ways_up).
ORIENTATION_CHECK = 0.02
# ...and so is a face whose refining pass gives a trust score (facemark.trust) below this, which is not surely
# upright either (the image's quarter turns are then searched too): a face upside down in its crop gets a mirror-
# consistent upright shape drawn on it (faces are left/right symmetric either way up), but not one the re-framing
# agrees with. Upright HELEN faces, even turned by 45°, score above 0.28. 0.2 against 0.1, 30 HELEN faces turned
# by 135° / 180°: NME ×1.22 / ×1.01 of 0° against ×1.22 / ×1.15; AFW 4.03% either way (benchmarks/rotation.py,
# human_labels.py).
ORIENTATION_TRUST = 0.2
# Ways up tried (every 360° / ORIENTATION_STEPS). 8 (every 45°) was measured too: better at 60° of roll, but the
# mirror agreement then picks more wrong ways for faces at 90-180° (benchmarks/rotation.py).
ORIENTATION_STEPS = 4
QUARTER_TURNS = (1, 3, 2)  # the image turned 90° counter-clockwise, clockwise, then 180°, for faces not upright
# Two faces whose points' boxes overlap more than this are one face found twice: the better-scored one is kept.
DUPLICATE_IOU = 0.5


@dataclass
class Candidate:
    """A face the detector found, before its landmarks: where the landmark passes start."""

    detection: Detection  # box, score and keypoints in image pixels (the box may reach outside the image)
    transform: CropTransform  # the first pass's crop, turned by the face's roll
    landmark_box: tuple[float, float, float, float]  # axis-aligned estimate of the box of its points, pixels


@dataclass(repr=False)
class Face:
    """One face: its detector box and score, and its landmarks in image pixels.

    Left and right are the image's: "left_eye" is the eye on the image's left, which is the subject's right
    eye (as in the 300-W / iBUG convention)."""

    box: tuple[float, float, float, float]  # detector box x0, y0, x1, y1 (image pixels, pixel-centre convention)
    score: float  # detector confidence
    points: np.ndarray  # (P, 2) float image pixels, 0-based, pixel-centre convention
    scheme: Scheme
    # how far the points can be believed, in [0, 1] (facemark.trust); None when the Landmarker computed none
    trust: float | None = None
    image_size: tuple[int, int] | None = None  # (width, height) of the image the face is in: the pose's camera
    # the RGB array the face was found in (a reference, not a copy), for `chip()`; None for a huge image file
    image: np.ndarray | None = field(default=None, compare=False)

    def region(self, name: str) -> np.ndarray:
        """Points of one region, e.g. face.region("left_eye") (the eye on the image's left)."""
        return self.points[self.scheme.region_slice(name)]

    # --- answers from the points: thin calls into facemark.pose, .measures, .chips (geometry, no network) ---

    @property
    def pose(self):
        """Head pose (facemark.pose.HeadPose: yaw, pitch, roll in degrees, rotation, translation in mm) with the
        default camera (60° across the image's longer side). Raises facemark.pose.PoseError (a ValueError)."""
        return self.head_pose()

    def head_pose(self, fov_deg: float | None = None, camera: np.ndarray | None = None):
        """`pose` with another field of view (degrees across the image's longer side) or a full 3×3 camera."""
        from facemark.pose import DEFAULT_FOV_DEG, head_pose

        return head_pose(self.points, self.scheme, image_size=self.image_size, camera=camera,
                         fov_deg=DEFAULT_FOV_DEG if fov_deg is None else fov_deg)

    @property
    def eye_openness(self) -> tuple[float, float]:
        """Eye aspect ratio of (image-left eye, image-right eye): ~0.2-0.4 open, ~0.05 closed (facemark.measures)."""
        from facemark.measures import eye_openness

        left, right = eye_openness(self.points, self.scheme)
        return float(left), float(right)

    @property
    def mouth_openness(self) -> float:
        """Inner-lip gap over mouth width: 0 closed, ~0.3-0.6 wide open (facemark.measures)."""
        from facemark.measures import mouth_openness

        return float(mouth_openness(self.points, self.scheme))

    def chip(self, image: np.ndarray | None = None, *, size: int = 112, template: str = "arcface",
             margin: float = 0.25):
        """The face aligned onto a template (facemark.chips.AlignedChip: .image, .matrix image->chip, .to_chip,
        .to_image). `image`: the H×W×3 uint8 array the points are in; by default the one the face was found in.
        template: "arcface" (insightface's 112×112, scaled to `size`) or "square" (the same shrunk by
        1 / (1 + margin)). Raises facemark.chips.ChipError (a ValueError)."""
        from facemark.chips import ChipError, aligned_chip

        image = self.image if image is None else image
        if image is None:
            raise ChipError("this face keeps no image (it was found in a huge image file): pass the image, "
                            "face.chip(image)")
        return aligned_chip(image, self.points, self.scheme, size=size, template=template, margin=margin)

    def __repr__(self) -> str:
        box = ", ".join(f"{float(v):.1f}" for v in self.box)
        return f"Face(box=({box}), score={float(self.score):.3f}, {len(self.points)} {self.scheme.name} points)"

    def to_dict(self) -> dict:
        d = {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
             "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]}
        if self.trust is not None:
            d["trust"] = round(float(self.trust), 4)
        return d


class Landmarker:
    """Landmarks for every face in an image.

    model: a built-in name ("face88"), a weights file or an .onnx file. detector: a name from
    facemark.detection.DETECTORS, "blazeface" by default (MediaPipe's BlazeFace converted to ONNX, built in),
    "mtcnn" (built in, ONNX too) or "mediapipe" (needs the `label` extra), or a
    FaceDetector. threads: CPU threads of the detector and the landmark network (default DEFAULT_THREADS, 1;
    torch's setting, for the torch back end, is process-wide). refine: re-frame each face on its
    first-pass points, turned level, and average that pass with its mirror image (more accurate; three crops
    in two network calls per face). backend: "auto" or "onnx" (onnxruntime; a built-in name runs its .onnx
    file) or "torch" (the `train` extra). flip: also average the first pass (and every pass of video
    tracking) with the mirrored crop (twice the network time there).
    min_face: the smallest face to find, its side in pixels of the input image; larger is faster on big photos
    (detection time grows with the image's area over min_face²), smaller reaches further (an image is enlarged
    for the detector when needed). None (default): DEFAULT_MIN_FACE (40) for a detector with a fixed smallest
    face (MTCNN: it then sees every pixel up to LARGE_IMAGE_SIDE); a detector that tiles to reach small faces
    (BlazeFace) keeps its own default (one whole-image pass: faces from ~1/10 of the longer side), as its tiles
    cost ~7× on a 640×480 photo. find_turned: when the upright image shows no face, look again in it
    turned by 90°, 180° and 270° (up to three more detector runs, on images without an upright face only).
    trust: give each face a trust score in [0, 1] (facemark.trust; from the refining pass at no cost, or one
    more network pass on two crops per face without refine). min_trust: leave out faces whose trust is below
    it (needs trust).
    Raises ValueError for a min_face that is not a number of at least 8 pixels, a min_trust outside [0, 1].
    """

    def __init__(self, model: str | Path | None = None, detector: str = DEFAULT_DETECTOR, refine: bool = True,
                 threads: int | None = None, backend: str = "auto", flip: bool = False,
                 min_face: float | None = None, find_turned: bool = True, trust: bool = True,
                 min_trust: float | None = None):
        from facemark.detection import create_detector

        self.min_face = None if min_face is None else check_min_face(min_face)
        self.trust, self.min_trust = bool(trust), check_min_trust(min_trust, trust)
        self.find_turned = bool(find_turned)
        threads = DEFAULT_THREADS if threads is None else threads
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        self.network = load_network(model, backend=backend, threads=threads)
        self.scheme = self.network.scheme
        self.detector = create_detector(detector, threads=threads) if isinstance(detector, str) else detector
        self._owns_detector = isinstance(detector, str)  # then the Landmarker sizes its input (min_face)
        if self._owns_detector and getattr(self.detector, "max_side", None) is not None:
            self.detector.max_side = None
        self._own_min_face = getattr(self.detector, "min_face", None)
        self.refine = refine
        self.flip = flip
        self.crop_size = self.network.config.input_size

    def detect(self, image, *, bgr: bool = False) -> list[Face]:
        """Faces by descending score. `image`: a path, a PIL image or an H×W×3 uint8 array, RGB unless
        `bgr=True` (as OpenCV gives it); other arrays are converted by facemark.images.load_image (gray, RGBA,
        uint16, float). An RGB uint8 array is used as it is (not copied); a file or PIL image larger than
        LARGE_IMAGE_SIDE is never decoded whole into an array. Boxes and points are in image pixels, origin at
        the centre of the top-left pixel; a box may reach outside the image (a face cut by its edge).
        Raises facemark.images.ImageError for an unreadable image."""
        if bgr:
            image = np.ascontiguousarray(np.asarray(image)[..., ::-1])
        if isinstance(image, np.ndarray):
            rgb = image if _is_rgb(image) else load_image(image)
        else:
            reader = ImageReader(image)
            if max(reader.size) > LARGE_IMAGE_SIDE:
                return self._detect_large(reader)
            rgb = reader.array()
        found, points, trusts = self._found_upright_or_turned(rgb)
        faces = [Face(c.detection.box, c.detection.score, p, self.scheme, t, (rgb.shape[1], rgb.shape[0]), rgb)
                 for c, p, t in zip(found, points, trusts)]
        return self._trusted(_distinct(faces))

    def _found_upright_or_turned(self, rgb: np.ndarray) -> tuple[list[Candidate], list[np.ndarray], list]:
        """Candidates, their points and their trust (None without `trust`): upright first; when no face found
        there is surely upright (its mirror images agree, ORIENTATION_CHECK, and it is trusted, ORIENTATION_TRUST)
        and `find_turned`, also those found in the image's quarter turns (the detector may take a face lying on
        its side for a bigger, wrong one, upright)."""
        height, width = rgb.shape[:2]
        small, s = _scaled_for_detector(rgb, self._detect_scale(width, height))
        crop = functools.partial(crop_image, rgb)
        found = self._candidates(small, s, (0,))
        agreement: list[float] = []
        points, trusts = self._landmarks(crop, [c.transform for c in found], agreement)
        if self.find_turned and not any(a <= ORIENTATION_CHECK for a in agreement):
            turned = self._candidates(small, s, QUARTER_TURNS)
            more: list[float] = []
            more_points, more_trusts = self._landmarks(crop, [c.transform for c in turned], more)
            found, points, trusts = found + turned, points + more_points, trusts + more_trusts
            agreement += more
            # one face found both ways (or a bigger false face around it, upright): keep the surely upright one
            # (mirror images agreeing), then the better score; overlap is over the smaller points' box
            sure = [float(a <= ORIENTATION_CHECK) for a in agreement]
            keep = _distinct_points(points, [u + c.detection.score for u, c in zip(sure, found)], "min")
            keep.sort(key=lambda i: -found[i].detection.score)
            found, points, trusts = [found[i] for i in keep], [points[i] for i in keep], [trusts[i] for i in keep]
        return found, points, trusts

    def candidates(self, rgb: np.ndarray) -> list[Candidate]:
        """The detector's faces in an RGB uint8 H×W×3 array, best score first, each with its first crop (see the
        module docstring: scaled for `min_face`, padded, turned when nothing is found upright)."""
        height, width = rgb.shape[:2]
        small, s = _scaled_for_detector(rgb, self._detect_scale(width, height))
        return self._candidates(small, s)

    def landmarks_for_boxes(self, rgb: np.ndarray, boxes) -> list[np.ndarray]:
        """Points for faces whose landmark boxes (≈ the upright box around their points, image pixels) are known;
        all in one batch. The first crop is upright; the next ones are turned by the roll of the points."""
        margin = self.network.config.margin
        return self.landmarks_for_transforms(rgb, [square_crop_transform(b, self.crop_size, margin) for b in boxes])

    def landmarks_for_transforms(self, rgb: np.ndarray, transforms: list[CropTransform]) -> list[np.ndarray]:
        """(P, 2) points in image pixels for faces whose first crops are known (e.g. `Candidate.transform`)."""
        return self._landmarks(functools.partial(crop_image, rgb), transforms)[0]

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """Points in crop pixels for a batch of (N, S, S, 3) uint8 crops."""
        return predict_crops(self.network, crops, flip=self.flip)

    def trust_scores(self, rgb: np.ndarray, points: list[np.ndarray]) -> list[float]:
        """Trust in [0, 1] of each face's (P, 2) points in an RGB uint8 image (facemark.trust): the network run
        once more on a crop framed on the points, and on that crop mirrored, both compared with the points."""
        return self._trust_scores(functools.partial(crop_image, rgb), points)

    def _trust_scores(self, crop: Cropper, points: list[np.ndarray]) -> list[float]:
        if len(points) == 0:
            return []
        _, _, reframed, mirrored = self._predict_mirrored(
            crop, [self._framing(p, roll_angle(p, self.scheme)) for p in points])
        d = disagreement(np.stack(points), np.stack(reframed), np.stack(mirrored), self.scheme)
        return [float(v) for v in trust_from_disagreement(d)]

    def _trusted(self, faces: list[Face]) -> list[Face]:
        """The faces at or above `min_trust` (all of them without one)."""
        if self.min_trust is None:
            return faces
        return [f for f in faces if f.trust is not None and f.trust >= self.min_trust]

    def _detect_large(self, reader: ImageReader) -> list[Face]:
        width, height = reader.size
        s = self._detect_scale(width, height, reduced=True)
        small, s = reader.downscaled(max(12, math.floor(max(width, height) / s)))
        found = self._candidates(small, s)
        del small
        # each face from the smallest decode that keeps it sharp; one decode held at a time, smallest first
        reductions = [self._reduction_for(reader, c.transform) for c in found]
        points: list[np.ndarray | None] = [None] * len(found)
        trusts: list[float | None] = [None] * len(found)
        for r in sorted(set(reductions), reverse=True):
            faces = [i for i, ri in enumerate(reductions) if ri == r]
            crop = functools.partial(_reduced_crop, reader, r)
            done, scores = self._landmarks(crop, [found[i].transform for i in faces])
            for i, p, t in zip(faces, done, scores):
                points[i], trusts[i] = p, t
        return self._trusted(_distinct([Face(c.detection.box, c.detection.score, p, self.scheme, t, reader.size)
                                        for c, p, t in zip(found, points, trusts)]))

    def _reduction_for(self, reader: ImageReader, transform: CropTransform) -> int:
        """The largest reduction at which the face's first crop square keeps CROP_DETAIL pixels per crop pixel
        (the refined square is about as large, so it serves both passes)."""
        return max(r for r in reader.reductions if r == 1 or transform.side / r >= CROP_DETAIL * self.crop_size)

    # ------------------------------------------------------------------------------------------ detection

    def _detect_scale(self, width: int, height: int, reduced: bool = False) -> float:
        """Image pixels per detector pixel. A detector with a fixed smallest face (`min_face_size`, in the pixels
        it sees: MTCNN) gets the image scaled so a min_face face becomes that size; one that reaches a given size
        itself (a `min_face` attribute: BlazeFace tiles) gets every pixel and, when the Landmarker created it,
        the min_face asked for in its own pixels (none asked: its own default). The copy holds at most
        MAX_DETECT_PIXELS, or HUGE_DETECT_PIXELS on the reduced path (`reduced`) and, unless min_face was
        given, for any image above LARGE_IMAGE_SIDE (so an array and its file give the same faces). (Asking
        BlazeFace for 40-px faces of that copy, as MTCNN finds, gave false faces that differ between a file's
        reduced decode and its array, and ~95 MB more memory on a 6000² JPEG: it keeps its own default.)"""
        smallest = getattr(self.detector, "min_face_size", None)
        capped = reduced or (self.min_face is None and max(width, height) > LARGE_IMAGE_SIDE)
        min_face = DEFAULT_MIN_FACE if self.min_face is None else self.min_face
        s = min_face / float(smallest) if smallest else 1.0
        s = max(s, math.sqrt(width * height / (HUGE_DETECT_PIXELS if capped else MAX_DETECT_PIXELS)))
        if self._owns_detector and hasattr(self.detector, "min_face") and not smallest:
            if self.min_face is not None:
                self.detector.min_face = self.min_face / max(s, 1.0)
            elif not capped and max(width, height) > TILED_SINGLE_PASS_SIDE and self._own_min_face is None:
                default = max(TILED_MIN_FACE, max(width, height) / TILED_FACES_ACROSS)
                self.detector.min_face = default / max(s, 1.0)
            else:
                self.detector.min_face = self._own_min_face
        return s

    def _candidates(self, small: np.ndarray, s: float, turns: tuple[int, ...] | None = None) -> list[Candidate]:
        """Faces found in `small`, the image scaled by 1/s (full = (small + 0.5) * s - 0.5), in full pixels.
        turns: the quarter turns (counter-clockwise) of the image to look in; None: upright, then, when nothing
        is found and `find_turned`, the other three."""
        height, width = small.shape[:2]
        pad = round(BORDER_PAD * min(height, width))
        if turns is None:
            found = self._detect_turned(small, pad, 0)
            if not found and self.find_turned:
                found = [c for k in QUARTER_TURNS for c in self._detect_turned(small, pad, k)]
        else:
            found = [c for k in turns for c in self._detect_turned(small, pad, k)]
        if len(found) > 1 and (turns is None or len(turns) > 1):  # a face at 45° may show in two turns
            boxes = np.array([c.detection.box for c in found])
            found = [found[i] for i in nms(boxes, np.array([c.detection.score for c in found]), 0.4)]
        # padded pixels -> scaled-copy pixels -> image pixels
        return [_moved(c, lambda q: (q - pad + 0.5) * s - 0.5, s) for c in found]

    def _detect_turned(self, small: np.ndarray, pad: int, k: int) -> list[Candidate]:
        """The detector on `small` turned counter-clockwise by k quarter turns, inside a black border `pad`
        wide (FaceDetector.detect_padded); results in the pixels of `small` padded (x + pad, y + pad). The
        first crop is turned by the face's roll: from the eye keypoints when the detector gives them, else the
        quarter turn itself."""
        height, width = small.shape[0] + 2 * pad, small.shape[1] + 2 * pad
        turned = np.ascontiguousarray(np.rot90(small, k)) if k else small
        margin = self.network.config.margin
        found = []
        for d in self.detector.detect_padded(turned, pad):
            x0, y0, x1, y1 = self.detector.landmark_box(d.box)
            roll = _keypoint_roll(d.keypoints)
            if abs(roll) < FIRST_CROP_MIN_ROLL:
                roll = 0.0  # rough eye keypoints: the next pass levels the crop on the network's own points
            # the calibrated box's offset from the detector's box is measured on upright faces: turn it with the face
            bx, by = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
            dx, dy = (x0 + x1) / 2 - bx, (y0 + y1) / 2 - by
            c, s = math.cos(roll), math.sin(roll)
            cx, cy = bx + c * dx - s * dy, by + s * dx + c * dy
            w, h = x1 - x0, y1 - y0
            t = square_crop_transform((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), self.crop_size, margin)
            t = CropTransform(t.cx, t.cy, t.side, t.size, roll)
            half_w, half_h = (abs(c) * w + abs(s) * h) / 2, (abs(s) * w + abs(c) * h) / 2
            candidate = Candidate(d, t, (cx - half_w, cy - half_h, cx + half_w, cy + half_h))
            found.append(_moved(candidate, functools.partial(_unturn, k=k, width=width, height=height), 1.0,
                                k * math.pi / 2))
        return found

    # ------------------------------------------------------------------------------------------ landmarks

    def _landmarks(self, crop: Cropper, transforms: list[CropTransform],
                   agreement: list[float] | None = None) -> tuple[list[np.ndarray], list[float | None]]:
        """(points, trust) of each face from its first crop.

        With `refine`: one network pass on each first crop, then passes framed on the points and turned by their
        roll (repeated, up to MAX_PASSES in all, for faces whose roll moved by more than ROLL_RECHECK). Those
        passes predict each crop and its mirror image in one batch: the final points are the two averaged, the
        two's disagreement and, with the framing points, the trust score (facemark.trust) they give at no extra
        cost are the orientation check (a face above ORIENTATION_CHECK or under ORIENTATION_TRUST is tried the
        four ways up, `_four_ways_up`). Without `refine`: one mirrored pass (orientation check, average) and,
        with `trust`, the separate trust pass. `agreement` (when given) receives each face's final mirror
        disagreement, infinite for a face whose trust is under ORIENTATION_TRUST (not surely upright)."""
        if len(transforms) == 0:
            return [], []
        if not self.refine:
            points = self._first_pass(crop, transforms, agreement)
            return points, self._trust_scores(crop, points) if self.trust else [None] * len(points)
        points = self._predict(crop, transforms)
        framing: list = [None] * len(points)  # per face: the points its last crop was framed on
        direct: list = [None] * len(points)  # ... and that crop's own points and its mirror's, image pixels
        mirrored: list = [None] * len(points)
        mirror_gap = [math.inf] * len(points)
        todo = list(range(len(points)))
        for _ in range(MAX_PASSES - 1):
            rolls = {i: roll_angle(points[i], self.scheme) for i in todo}
            framed = [self._framing(points[i], rolls[i]) for i in todo]
            mean, gap, one, other = self._predict_mirrored(crop, framed)
            todo_next = []
            for j, i in enumerate(todo):
                framing[i], direct[i], mirrored[i], mirror_gap[i] = points[i], one[j], other[j], gap[j]
                points[i] = mean[j]
                if abs(_angle_difference(roll_angle(mean[j], self.scheme), rolls[i])) > ROLL_RECHECK:
                    todo_next.append(i)
            todo = todo_next
            if not todo:
                break
        trusts = [float(v) for v in trust_from_disagreement(
            disagreement(np.stack(framing), np.stack(direct), np.stack(mirrored), self.scheme))]
        doubtful = [i for i, (g, t) in enumerate(zip(mirror_gap, trusts))
                    if not (g <= ORIENTATION_CHECK and t >= ORIENTATION_TRUST)]
        if doubtful:
            for i, (p, gap) in zip(doubtful, self._four_ways_up(crop, [transforms[i] for i in doubtful])):
                points[i], mirror_gap[i] = p, gap
            # their last crops were framed on a rough pass: the trust of their final points themselves
            for i, t in zip(doubtful, self._trust_scores(crop, [points[i] for i in doubtful])):
                trusts[i] = t
        if agreement is not None:  # surely upright: mirror images agreeing and points trusted
            agreement[:] = [g if t >= ORIENTATION_TRUST else math.inf for g, t in zip(mirror_gap, trusts)]
        return points, trusts if self.trust else [None] * len(points)

    def _first_pass(self, crop: Cropper, transforms: list[CropTransform],
                    agreement_out: list[float] | None = None) -> list[np.ndarray]:
        """Mirror-averaged points of each first crop (the one pass of refine=False); a face whose mirror images
        disagree (ORIENTATION_CHECK) is tried the four ways up (`_four_ways_up`)."""
        points, gaps, _, _ = self._predict_mirrored(crop, transforms)
        doubtful = [i for i, d in enumerate(gaps) if not d <= ORIENTATION_CHECK]
        if doubtful:
            for i, (p, gap) in zip(doubtful, self._four_ways_up(crop, [transforms[i] for i in doubtful])):
                points[i], gaps[i] = p, gap
        if agreement_out is not None:
            agreement_out[:] = gaps
        return points

    def _four_ways_up(self, crop: Cropper, transforms: list[CropTransform]) -> list[tuple]:
        """For faces whose way up is in doubt, from their first crops: each quarter turn of the crop (every
        360° / ORIENTATION_STEPS), predicted with its mirror, re-framed on its own points and roll and predicted
        again with its mirror; the way whose re-framed mirror images agree best is kept. (The trust score's
        disagreement, re-framing and mirror together, picks a face upside down better, but more often a wrong way
        on hard upright faces: AFW 4.25% against 4.03% NME, benchmarks/rotation.py 135° ×1.91 against ×1.50.)
        Per face: (its averaged points, its mirror disagreement)."""
        steps = ORIENTATION_STEPS
        tried = [dataclasses.replace(t, angle=math.remainder(t.angle + 2 * math.pi * k / steps, 2 * math.pi))
                 for t in transforms for k in range(steps)]
        rough, _, _, _ = self._predict_mirrored(crop, tried)
        framed = [self._framing(p, roll_angle(p, self.scheme)) for p in rough]
        better, gaps, _, _ = self._predict_mirrored(crop, framed)
        out = []
        for n in range(len(transforms)):
            best = min(range(steps * n, steps * (n + 1)), key=lambda j: gaps[j])
            out.append((better[best], gaps[best]))
        return out

    def _predict_mirrored(self, crop: Cropper, transforms: list[CropTransform]) -> tuple[list, list, list, list]:
        """For each transform, in image pixels: (the points averaged with the mirrored crop's, the mean distance
        between the two in units of the crop's side, the crop's own points, the mirrored crop's points)."""
        crops = np.stack([crop(t) for t in transforms])
        direct, mirrored = self._direct_and_mirrored(crops)
        gaps = np.linalg.norm(direct - mirrored, axis=-1).mean(axis=-1) / crops.shape[2]
        one = [t.to_image(a) for t, a in zip(transforms, direct)]
        other = [t.to_image(b) for t, b in zip(transforms, mirrored)]
        return [(a + b) / 2 for a, b in zip(one, other)], [float(d) for d in gaps], one, other

    def _direct_and_mirrored(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points in crop pixels of (N, S, S, 3) crops and of their left/right mirrors, the mirrors' points mapped
        back into the crops' pixels and point names (Scheme.flip_points): one network batch of 2N, never
        flip-averaged (each half's own answer is what the callers compare)."""
        both = predict_crops(self.network, np.concatenate([crops, crops[:, :, ::-1]]), flip=False)
        n = len(crops)
        return both[:n], self.scheme.flip_points(both[n:], crops.shape[2])

    def _framing(self, points: np.ndarray, roll: float) -> CropTransform:
        """The network's crop of a face whose points are known: the square around them, turned by `roll`."""
        try:
            return points_crop_transform(points, self.crop_size, self.network.config.margin, roll)
        except ValueError:  # no finite point (a broken network output): a crop far away that gives NaN again
            return CropTransform(0.0, 0.0, 1.0, self.crop_size)

    def _predict(self, crop: Cropper, transforms: list[CropTransform]) -> list[np.ndarray]:
        crops = np.stack([crop(t) for t in transforms])
        crop_points = self.predict_crops(crops)
        return [t.to_image(p) for t, p in zip(transforms, crop_points)]


def check_min_trust(min_trust, trust: bool = True) -> float | None:
    """`min_trust` as a float in [0, 1] (or None), or a ValueError saying what is wrong with it."""
    if min_trust is None:
        return None
    if isinstance(min_trust, bool) or not isinstance(min_trust, int | float | np.number) \
            or not 0.0 <= float(min_trust) <= 1.0:
        raise ValueError(f"min_trust must be a number from 0 to 1, got {min_trust!r}")
    if not trust:
        raise ValueError("min_trust needs trust scores: do not turn trust off")
    return float(min_trust)


def _distinct(faces: list[Face]) -> list[Face]:
    """The faces whose points' boxes overlap no better-scored face's by more than DUPLICATE_IOU: two detections
    of one face (a detector box around a turned face and one inside it) end on the same points."""
    keep = set(_distinct_points([f.points for f in faces], [f.score for f in faces]))
    return [f for i, f in enumerate(faces) if i in keep]


def _distinct_points(points: list[np.ndarray], priority: list[float], mode: str = "union") -> list[int]:
    """Indices (in their order) of the shapes whose points' boxes overlap no shape of higher priority by more
    than DUPLICATE_IOU (intersection over union, or over the smaller box: facemark.detection.nms.box_overlap);
    shapes with fewer than two finite points are kept."""
    usable = [i for i, p in enumerate(points) if np.isfinite(p).all(axis=1).sum() >= 2]
    if len(usable) < 2:
        return list(range(len(points)))
    boxes = np.array([[*np.nanmin(points[i], axis=0), *np.nanmax(points[i], axis=0)] for i in usable])
    kept = {usable[j] for j in nms(boxes, np.array([priority[i] for i in usable], np.float64), DUPLICATE_IOU, mode)}
    return [i for i in range(len(points)) if i in kept or i not in usable]


def check_min_face(min_face) -> float:
    """`min_face` as a float, or a ValueError saying what is wrong with it."""
    if isinstance(min_face, bool) or not isinstance(min_face, int | float | np.number) \
            or not math.isfinite(min_face) or min_face < 8:
        raise ValueError(f"min_face must be a number of pixels, at least 8, got {min_face!r}")
    return float(min_face)


def _scaled_for_detector(rgb: np.ndarray, s: float) -> tuple[np.ndarray, float]:
    """(copy, exact s): `rgb` at about 1/s of its size, with full = (small + 0.5) * s - 0.5 exactly (as
    load_image_downscaled); `rgb` itself and 1.0 when s rounds to 1."""
    height, width = rgb.shape[:2]
    longer = max(width, height)
    side = max(12, math.floor(longer / s + 1e-9))  # as _detect_large asks ImageReader.downscaled: the same copy
    if side == longer:
        return rgb, 1.0
    if side < longer:
        return load_image_downscaled(rgb, side)
    # enlarged (min_face below the detector's own smallest face): the same exact-scale convention
    s = longer / side
    out = (side, max(1, height * side // width)) if width >= height else (max(1, width * side // height), side)
    pil = Image.fromarray(rgb).resize(out, Image.Resampling.BILINEAR, box=(0, 0, out[0] * s, out[1] * s))
    return np.asarray(pil), s


def _unturn(points: np.ndarray, k: int, width: int, height: int) -> np.ndarray:
    """Pixels of a width×height image turned counter-clockwise by k quarter turns (np.rot90) -> its own pixels."""
    p = np.asarray(points, np.float64)
    x, y = p[..., 0], p[..., 1]
    x, y = {0: (x, y), 1: (width - 1 - y, x), 2: (width - 1 - x, height - 1 - y), 3: (y, height - 1 - x)}[k % 4]
    return np.stack([x, y], axis=-1)


def _moved(c: Candidate, move: Callable[[np.ndarray], np.ndarray], scale: float, turn: float = 0.0) -> Candidate:
    """A candidate carried into another frame by a similarity: `move` maps points, `scale` multiplies lengths,
    `turn` (radians) is added to angles. Boxes stay axis-aligned (exact for quarter turns)."""
    def box(b):
        corners = move(np.array([[b[0], b[1]], [b[2], b[3]]], np.float64))
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    d, t = c.detection, c.transform
    keypoints = None if d.keypoints is None else move(d.keypoints)
    cx, cy = move(np.array([t.cx, t.cy], np.float64))
    angle = math.remainder(t.angle + turn, 2 * math.pi)
    return Candidate(Detection(box(d.box), d.score, keypoints),
                     CropTransform(float(cx), float(cy), t.side * scale, t.size, angle), box(c.landmark_box))


def _keypoint_roll(keypoints) -> float:
    """Roll (radians, as preprocessing.roll_angle) from a detection's eye keypoints (the first two: the eye on
    the image's left, then the other); 0.0 without usable keypoints."""
    if keypoints is None:
        return 0.0
    k = np.asarray(keypoints, np.float64)
    if k.ndim != 2 or len(k) < 2 or not np.isfinite(k[:2]).all():
        return 0.0
    dx, dy = k[1] - k[0]
    return math.atan2(dy, dx) if dx or dy else 0.0


def _angle_difference(a: float, b: float) -> float:
    """a - b wrapped into [-π, π]."""
    return math.remainder(a - b, 2 * math.pi)


def _is_rgb(image: np.ndarray) -> bool:
    return image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


def _crop(region: Callable[[tuple[int, int, int, int]], np.ndarray], t: CropTransform) -> np.ndarray:
    """`crop_image(image, t)` for an image we only cut parts of: `region(box)` gives the pixels of an integer
    box (black outside the image), so the whole image is never converted (Pillow copies an array it is given).

    The part is one pixel wider on each side than the square's integer box: crop_image cuts that box out of it
    itself, so the crop is the one the whole image gives, whichever way the floats round."""
    left, top, right, bottom = t.edge_box()
    x0, y0 = math.floor(left) - 1, math.floor(top) - 1
    part = region((x0, y0, math.ceil(right) + 1, math.ceil(bottom) + 1))
    return crop_image(part, CropTransform(cx=t.cx - x0, cy=t.cy - y0, side=t.side, size=t.size, angle=t.angle))


def _reduced_crop(reader: ImageReader, reduction: int, t: CropTransform) -> np.ndarray:
    """The crop of full-resolution transform `t`, cut from the image decoded at 1/`reduction` size."""
    cx, cy = reader.to_reduced((t.cx, t.cy), reduction)
    reduced = CropTransform(cx=float(cx), cy=float(cy), side=t.side / reduction, size=t.size, angle=t.angle)
    return _crop(functools.partial(reader.region, reduction=reduction), reduced)
