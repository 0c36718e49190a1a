"""What a Landmarker is built with: one options object, validated once, used alike by the Python API, the command
line's runners, the worker processes of `predict --workers` and the Ray actors.

    options = LandmarkerOptions(min_face=40)
    landmarker = Landmarker.from_options(options)
    worker = Landmarker.from_options(options.replace(threads=1))
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemark.detection.core import DEFAULT_DETECTOR, DETECTORS, FaceDetector

# The documented range of `min_face` (pixels of the input image): below 8 px a face has no features left; above
# 100,000 px no image holds it.
MIN_FACE_RANGE = (8.0, 100_000.0)
BACKENDS = ("auto", "onnx", "torch")
# CPU threads of the detector and the landmark network unless asked otherwise: one per Landmarker (more cores:
# more processes, `facemark predict --workers N`; benchmarks/results/speed.md).
DEFAULT_THREADS = 1
# Faces whose trust is below this are dropped unless `min_trust` says otherwise (min_trust=0 keeps every face):
# the value that drops the false faces of face-free images and faces whose points are lost
# (benchmarks/results/false_faces.md).
DEFAULT_MIN_TRUST = 0.15


class OptionError(ValueError):
    """A Landmarker option out of its range. `field` names the option (a keyword of LandmarkerOptions), `rule`
    says what it must be; the command line shows it under the option's flag (`--min-face`)."""

    def __init__(self, field: str, rule: str, value):
        self.field, self.rule, self.value = field, rule, value
        super().__init__(f"{field} must be {rule}, got {value!r}")

    def for_flag(self) -> str:
        """The message with the command line's flag for the field: `--min-face must be ...`."""
        shown = f"{self.value:g}" if isinstance(self.value, float) else str(self.value)
        return f"--{self.field.replace('_', '-')} must be {self.rule}, got {shown}"


@dataclass(frozen=True)
class LandmarkerOptions:
    """A Landmarker's settings (see facemark.Landmarker for what each does). Frozen and picklable (but for a
    FaceDetector instance as `detector`): hand it to worker processes as it is.

    Raises OptionError (a ValueError) naming the field for a value out of range: an unknown detector name or
    backend, threads that are not a positive integer, a min_face outside MIN_FACE_RANGE pixels, a min_trust
    outside [0, 1] or above 0 with trust off.
    """

    model: str | Path | None = None  # a built-in name ("face88", "ibug68"), a weights or .onnx file; None: face88
    detector: str | FaceDetector = DEFAULT_DETECTOR  # a name from facemark.detection.DETECTORS, or a detector
    refine: bool = True  # allow the refining pass (facemark.pipeline.passes) where the first batch is poorly framed
    threads: int | None = None  # CPU threads of the detector and the network; None: DEFAULT_THREADS
    backend: str = "auto"  # "auto" / "onnx" (onnxruntime) or "torch" (the `train` extra)
    flip: bool = False  # also average every pass of video tracking with the mirrored crop
    min_face: float | None = None  # smallest face to find, pixels of the input; None: one look at the whole image
    find_turned: bool = True  # look in the image's quarter turns when no face is surely upright
    trust: bool = True  # give each Face its trust score
    min_trust: float | None = None  # leave out faces trusted less; None: DEFAULT_MIN_TRUST; 0 keeps every face
    # read a JPEG file cut short as far as its data goes (the rest grey) instead of refusing it (files given by
    # path; an ImageReader made with allow_truncated=True says in `truncated` whether its file was)
    allow_truncated: bool = False
    # place the lids again on a patch of each eye (facemark.pipeline.eyes; face88 only): lids that close
    refine_eyes: bool = True

    def __post_init__(self):
        if isinstance(self.detector, str) and self.detector not in DETECTORS:
            raise OptionError("detector", f"one of {', '.join(DETECTORS)}", self.detector)
        if not isinstance(self.detector, str | FaceDetector):
            raise OptionError("detector", "a detector name or a FaceDetector", self.detector)
        if self.backend not in BACKENDS:
            raise OptionError("backend", f"one of {', '.join(BACKENDS)}", self.backend)
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise OptionError("threads", "a positive integer", self.threads)
        if self.min_face is not None:
            low, high = MIN_FACE_RANGE
            if isinstance(self.min_face, bool) or not isinstance(self.min_face, int | float | np.number) \
                    or not math.isfinite(self.min_face) or not low <= self.min_face <= high:
                raise OptionError("min_face", f"a number of pixels from {low:g} to {high:g}", self.min_face)
            object.__setattr__(self, "min_face", float(self.min_face))
        if self.min_trust is not None:
            if isinstance(self.min_trust, bool) or not isinstance(self.min_trust, int | float | np.number) \
                    or not 0.0 <= float(self.min_trust) <= 1.0:
                raise OptionError("min_trust", "a number from 0 to 1", self.min_trust)
            if not self.trust and self.min_trust > 0:
                raise OptionError("min_trust", "0 or unset when trust is off (it needs trust scores)",
                                  self.min_trust)
            object.__setattr__(self, "min_trust", float(self.min_trust))
        for name in ("refine", "flip", "find_turned", "trust", "allow_truncated", "refine_eyes"):
            object.__setattr__(self, name, bool(getattr(self, name)))

    @property
    def thread_count(self) -> int:
        """`threads`, or DEFAULT_THREADS when unset."""
        return DEFAULT_THREADS if self.threads is None else self.threads

    @property
    def trust_floor(self) -> float:
        """`min_trust`, or DEFAULT_MIN_TRUST when unset."""
        return DEFAULT_MIN_TRUST if self.min_trust is None else self.min_trust

    def replace(self, **changes) -> LandmarkerOptions:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)
