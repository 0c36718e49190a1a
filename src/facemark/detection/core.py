"""The face-detector plug-in layer: one result type, one base class, one factory.

Every detector takes an RGB uint8 H×W×3 array and returns `Detection`s sorted by score, highest first,
in image pixels with the pixel-centre convention (the centre of the top-left pixel is (0, 0)).
Detectors live one per module or folder (`blazeface/`, `mtcnn/`, `yunet/`, `mediapipe_detector.py`) and are
created by name:

    detector = create_detector("blazeface")
    for d in detector.detect(rgb, Look(min_face=20)): ...

What the pipeline needs from a detector is declared on `FaceDetector` (`LANDMARK_BOX`, `TAKES_MIN_FACE`,
`fixed_min_face`, `LONG_ASPECT`); what to look for in one image is a `Look` passed to `detect`, computed by the
pure size policy (facemark.pipeline.size_policy). Nothing is written onto a detector per call.
"""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels, pixel-centre convention
    score: float  # the detector's confidence, 0..1
    # (K, 2) in image pixels: the two eyes first, the one on the image's left first, then the detector's own:
    # MTCNN (K=5) nose tip and mouth corners; BlazeFace (K=6) nose tip, mouth centre, ear tragions (left first)
    keypoints: np.ndarray | None = None
    # found only in a tile of the image (a detector looking for faces smaller than its whole-image pass finds),
    # never in a look at the whole image: such faces are kept only when their landmarks are trusted
    tiled: bool = False
    # kept under the detector's score floor only because its box reaches beyond the image's edge (a face cut by it,
    # which scores lower): such a face goes on to the refining passes and the four ways up only when its first
    # batch is trusted (pipeline.passes.EDGE_FIRST_TRUST); most such boxes hold no face
    beyond_edge: bool = False


@dataclass(frozen=True)
class Look:
    """What a detector is asked to look for in one image, in the pixels of the image it is given.

    min_face: the smallest face to find (the longer side of the box around its landmarks); None: the detector's
        whole-image look alone (it finds faces down to about a tenth of the image's look side).
    crowd: the min_face is the default look's for the faces of a crowd (the size policy's, not asked for by the
        caller): a detector may find them with a cheaper second network than its own finer passes.
    Detectors that do not take a min_face (`FaceDetector.TAKES_MIN_FACE` False) ignore the Look.
    """

    min_face: float | None = None
    crowd: bool = False


class FaceDetector(ABC):
    """Base class of all face detectors: what the pipeline needs from one is declared here.

    - `LANDMARK_BOX`: the detector's calibration, how its box relates to the box around a face's landmarks.
    - `TAKES_MIN_FACE`: `detect` honours `Look.min_face` (tiles or finer levels planned for it).
    - `fixed_min_face`: the smallest face a cascade with a fixed pyramid finds, in its own pixels (MTCNN), or
      None; the pipeline scales the detector's copy so the face asked for becomes that size.
    - `look`: what `detect` looks for when it is given no `Look` (set at construction).
    - `LONG_ASPECT`: an image whose longer side exceeds this many times its shorter side is looked at along its
      length as squares of its shorter side (None: always whole).
    """

    # How this detector's box relates to the tight box around a face's landmarks (what the landmark network
    # is framed on): (centre shift x, centre shift y) in units of the box's width/height, then (width,
    # height) ratios. Each detector measures its own; identity here.
    LANDMARK_BOX = (0.0, 0.0, 1.0, 1.0)
    TAKES_MIN_FACE = False
    LONG_ASPECT: float | None = None
    look = Look()  # what `detect` looks for when given no Look (detectors taking a min_face set it at construction)

    @property
    def fixed_min_face(self) -> float | None:
        """The smallest face found, in pixels of the image the detector is given, when it is fixed at construction
        (a cascade's pyramid); None when a `Look` sets it or the detector has none."""
        return None

    @abstractmethod
    def detect(self, image: np.ndarray, look: Look | None = None) -> list[Detection]:
        """Faces in an RGB uint8 H×W×3 image, sorted by score descending ([] when there are none). look: what to
        look for (None: the detector's own settings from its construction)."""

    def landmark_box(self, box) -> tuple[float, float, float, float]:
        """A detection box turned into an estimate of the box around the face's landmarks."""
        x0, y0, x1, y1 = (float(v) for v in box)
        dx, dy, sw, sh = self.LANDMARK_BOX
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2 + dx * w, (y0 + y1) / 2 + dy * h
        return cx - sw * w / 2, cy - sh * h / 2, cx + sw * w / 2, cy + sh * h / 2

    def detect_padded(self, image: np.ndarray, pad: int, look: Look | None = None) -> list[Detection]:
        """`detect` on `image` inside a black border `pad` pixels wide (a face cut by the image's edge is then a
        whole window); results in the padded image's pixels (pixel (x, y) of `image` is (x + pad, y + pad)).
        Detectors that can treat the border as virtual (BlazeFace: its windows may leave the image) override
        this to skip building the padded copy."""
        return self.detect(pad_image(image, pad), look)

    def close(self) -> None:
        """Free what the detector holds (a native graph, say); the detector is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def session_options(threads: int | None):
    """onnxruntime options for a small network run on a machine that may be busy: `threads` intra-op threads
    (None: 1), one inter-op thread, and no spinning (threads sleep while they wait instead of busy-polling,
    which collapses throughput when other processes load the cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads or 1)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def pad_image(rgb: np.ndarray, pad: int) -> np.ndarray:
    """`rgb` (H×W×3 uint8) with a black border `pad` pixels wide: pixel (x, y) moves to (x + pad, y + pad)."""
    if pad <= 0:
        return rgb
    out = np.zeros((rgb.shape[0] + 2 * pad, rgb.shape[1] + 2 * pad, 3), np.uint8)
    out[pad:pad + rgb.shape[0], pad:pad + rgb.shape[1]] = rgb
    return out


def check_image(image) -> np.ndarray:
    """`image` as a C-contiguous RGB uint8 H×W×3 array, or a ValueError saying what is wrong with it."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        what = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise ValueError(f"a face detector needs an RGB uint8 H×W×3 array, got a {what} "
                         "(facemark.images.load_image converts files, PIL images and other arrays)")
    return np.ascontiguousarray(image)


# name -> (module, class, constructor defaults); imported only when asked for, so unused back ends cost nothing.
# The first is the default of Landmarker and the CLI (chosen by measurement: benchmarks/results/detector.md).
DETECTORS = {
    "blazeface": ("facemark.detection.blazeface", "BlazeFaceDetector", {"model": "full+short"}),
    "blazeface-full": ("facemark.detection.blazeface", "BlazeFaceDetector", {"model": "full"}),
    "blazeface-short": ("facemark.detection.blazeface", "BlazeFaceDetector", {"model": "short"}),
    "mtcnn": ("facemark.detection.mtcnn", "MTCNNDetector", {}),
    "mediapipe": ("facemark.detection.mediapipe_detector", "MediaPipeDetector", {}),
    "yunet": ("facemark.detection.yunet", "YuNetDetector", {}),
}
DEFAULT_DETECTOR = next(iter(DETECTORS))


def create_detector(name: str, *, threads: int | None = None, whole_image: bool = False, **kwargs) -> FaceDetector:
    """A detector by name (see DETECTORS: "blazeface", "blazeface-full", "blazeface-short", "mtcnn",
    "mediapipe", "yunet"); keyword arguments go to its constructor, over the name's own defaults. `threads`
    goes to detectors that run their own thread pool (BlazeFace's, MTCNN's and YuNet's onnxruntime sessions)
    and is ignored by the others (MediaPipe chooses its own). `whole_image`: the caller sizes the image itself
    (the Landmarker's size policy), so a detector that would shrink large images first (`max_side`) does not.
    Raises ValueError for an unknown name."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}")
    module, cls, defaults = DETECTORS[name]
    detector_class = getattr(importlib.import_module(module), cls)
    accepted = inspect.signature(detector_class).parameters
    if threads is not None and "threads" in accepted:
        kwargs = {"threads": threads, **kwargs}
    if whole_image and "max_side" in accepted:
        kwargs = {"max_side": None, **kwargs}
    return detector_class(**{**defaults, **kwargs})
