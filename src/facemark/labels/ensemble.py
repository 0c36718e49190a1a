"""Two teachers made into one: dlib's 68 points and MediaPipe's 88, calibrated on human labels, per point.

The two layouts share 34 points (`facemark.layouts.IBUG68_TO_FACE88`). On those, the ensemble estimate is

    p_i = w_i F_d⁻¹(F_d(d_i) + b_i^dlib) + (1 - w_i) F_m⁻¹(F_m(m_i) + b_i^mediapipe)

d_i, m_i are the teachers' points (pixels), F_d, F_m each teacher's own face frame (below), b_i a constant
offset per teacher and point (the teacher's robust mean error against people in its frame), w_i the weight
of dlib at point i. Where dlib's points stray from MediaPipe's by more than `max_disagreement` (mean over the
34, in eye distances) dlib has lost the face and is left out. All of it is fitted on human-labelled faces
(`fit_ensemble`: least squares, Huber-reweighted); `benchmarks/teacher_ensemble.py` chooses between this
and simpler variants by cross-validation. With one teacher only, that teacher de-biased is the estimate.

The other 54 face88 points have no human or dlib counterpart: MediaPipe's full shape is carried along by a
thin-plate spline (Bookstein, "Principal warps", IEEE PAMI 1989) that moves its 34 shared points onto the
calibrated ones (`warp_points`), so lids, lips, brows and the profile stay coherent with them.

Face frame of a 34-point shape: origin at its centroid, unit
length its outer-eye-corner distance (iBUG 36 to 45), x axis along the eye line (left to right in the image),
y axis 90° clockwise from it (down the face in an upright image). Image coordinates are pixels with the origin
at the centre of the top-left pixel, x right, y down.

Parameters live in a small JSON file (`facemark/weights/teacher_ensemble.json`, fitted on the InfAnFace
infant faces that neither teacher trained on); `EnsembleParams.load` / `save` read and write it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facemark.geometry.openness import eye_openness
from facemark.layouts import FACE88, FACE88_ANCHORS, IBUG68, IBUG68_ANCHORS

SHARED = len(IBUG68_ANCHORS)  # 34 points both layouts have
# the outer eye corners inside the 34-point order (iBUG 36 and 45): the frame's unit length and direction
_LEFT_CORNER = int(np.flatnonzero(IBUG68_ANCHORS == 36)[0])
_RIGHT_CORNER = int(np.flatnonzero(IBUG68_ANCHORS == 45)[0])

DEFAULT_PARAMS = Path(__file__).resolve().parents[1] / "weights" / "teacher_ensemble.json"
FORMAT = "facemark-teacher-ensemble"
FORMAT_VERSION = 1


class EnsembleError(ValueError):
    """A missing or malformed ensemble parameter file, or shapes the ensemble cannot use."""


# ---------------------------------------------------------------------------------------------------------
# The face frame

@dataclass(frozen=True)
class FaceFrame:
    """A similarity frame of one face: image point p <-> frame point q = R^T (p - origin) / scale."""

    origin: np.ndarray  # (2,) pixels
    axes: np.ndarray  # (2, 2): rows are the frame's x and y axes as unit vectors in the image
    scale: float  # pixels per frame unit (the reference shape's outer-eye-corner distance)

    @classmethod
    def of(cls, shape34: np.ndarray) -> "FaceFrame":
        """The frame of a (34, 2) shape in the shared-point order (`IBUG68_ANCHORS`). Raises EnsembleError
        when the shape is not finite or its outer eye corners coincide."""
        shape34 = np.asarray(shape34, np.float64)
        if shape34.shape != (SHARED, 2) or not np.isfinite(shape34).all():
            raise EnsembleError(f"a face frame needs ({SHARED}, 2) finite points, got {shape34.shape}")
        eye = shape34[_RIGHT_CORNER] - shape34[_LEFT_CORNER]
        scale = float(np.hypot(*eye))
        if not scale > 1e-9:
            raise EnsembleError("the outer eye corners coincide: no face frame")
        u = eye / scale
        return cls(origin=shape34.mean(axis=0), axes=np.array([u, [-u[1], u[0]]]), scale=scale)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - self.origin) @ self.axes.T / self.scale

    def to_image(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, np.float64) * self.scale @ self.axes + self.origin


def reference_shape(dlib34: np.ndarray | None, mediapipe34: np.ndarray | None) -> np.ndarray:
    """The shape whose frame the ensemble works in: the mean of the teachers present ((34, 2) pixels)."""
    shapes = [s for s in (dlib34, mediapipe34) if s is not None]
    if not shapes:
        raise EnsembleError("no teacher points to combine")
    return np.mean(shapes, axis=0)


# ---------------------------------------------------------------------------------------------------------
# Parameters

@dataclass
class EnsembleParams:
    """Fitted numbers of the ensemble (all in face-frame units unless said otherwise)."""

    weights: np.ndarray  # (34,) weight of dlib per shared point, in [0, 1]; MediaPipe gets 1 - w
    offsets_dlib: np.ndarray  # (34, 2) added to dlib's points in the frame
    offsets_mediapipe: np.ndarray  # (34, 2) added to MediaPipe's points in the frame
    # dlib's detector rectangle from another box (x0, y0, x1, y1): (centre shift x, y in units of the box's
    # width/height, width ratio, height ratio); measured where both exist, used when dlib's detector misses
    box_to_dlib_rect: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    # dlib is left out where its 34 points lie further than this from MediaPipe's on average (frame units,
    # i.e. outer-eye-corner distances): there it has lost the face (inf: never left out)
    max_disagreement: float = float("inf")
    warp_regularisation: float = 0.0  # thin-plate smoothing (frame units²; 0 = exact interpolation)
    notes: dict = field(default_factory=dict)  # provenance and cross-validation numbers, for people

    def __post_init__(self):
        self.weights = np.asarray(self.weights, np.float64).reshape(-1)
        self.offsets_dlib = np.asarray(self.offsets_dlib, np.float64)
        self.offsets_mediapipe = np.asarray(self.offsets_mediapipe, np.float64)
        if (self.weights.shape != (SHARED,) or self.offsets_dlib.shape != (SHARED, 2)
                or self.offsets_mediapipe.shape != (SHARED, 2)):
            raise EnsembleError(f"ensemble parameters need {SHARED} weights and ({SHARED}, 2) offsets per "
                                f"teacher, got {self.weights.shape}, {self.offsets_dlib.shape}, "
                                f"{self.offsets_mediapipe.shape}")
        if not (np.isfinite(self.weights).all() and np.isfinite(self.offsets_dlib).all()
                and np.isfinite(self.offsets_mediapipe).all()):
            raise EnsembleError("ensemble parameters contain NaN or inf")
        self.box_to_dlib_rect = {k: tuple(float(v) for v in m) for k, m in self.box_to_dlib_rect.items()}

    @classmethod
    def identity(cls, weight: float = 0.5) -> "EnsembleParams":
        """No calibration: a fixed blend, no offsets (for tests and as a starting point)."""
        return cls(np.full(SHARED, weight), np.zeros((SHARED, 2)), np.zeros((SHARED, 2)))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION,
                "ibug68_indices": IBUG68_ANCHORS.tolist(), "face88_indices": FACE88_ANCHORS.tolist(),
                "weights_dlib": np.round(self.weights, 5).tolist(),
                "offsets_dlib": np.round(self.offsets_dlib, 5).tolist(),
                "offsets_mediapipe": np.round(self.offsets_mediapipe, 5).tolist(),
                "box_to_dlib_rect": {k: [round(v, 5) for v in m] for k, m in self.box_to_dlib_rect.items()},
                "max_disagreement": None if not np.isfinite(self.max_disagreement) else self.max_disagreement,
                "warp_regularisation": self.warp_regularisation, "notes": self.notes}

    def save(self, path: str | Path) -> None:
        # one key per line: small enough to read, and a refit shows as a readable diff
        body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in self.to_dict().items())
        Path(path).write_text("{\n" + body + "\n}\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EnsembleParams":
        """Parameters from a JSON file (default: the shipped `weights/teacher_ensemble.json`).
        Raises EnsembleError naming the file when it is missing or malformed."""
        path = Path(path or DEFAULT_PARAMS)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise EnsembleError(f"cannot read ensemble parameters {path}: {getattr(e, 'strerror', None) or e}") from None
        except json.JSONDecodeError as e:
            raise EnsembleError(f"{path} is not a teacher-ensemble parameter file (invalid JSON: {e.msg})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise EnsembleError(f"{path} is not a teacher-ensemble parameter file (no '{FORMAT}' format)")
        if d.get("version") != FORMAT_VERSION:
            raise EnsembleError(f"{path}: teacher-ensemble format version {d.get('version')} is not supported")
        if (d.get("ibug68_indices") != IBUG68_ANCHORS.tolist()
                or d.get("face88_indices") != FACE88_ANCHORS.tolist()):
            raise EnsembleError(f"{path}: its shared points are not the 34 of facemark.layouts.IBUG68_TO_FACE88")
        try:
            return cls(weights=d["weights_dlib"], offsets_dlib=d["offsets_dlib"],
                       offsets_mediapipe=d["offsets_mediapipe"], box_to_dlib_rect=d.get("box_to_dlib_rect", {}),
                       max_disagreement=float("inf" if d.get("max_disagreement") is None else d["max_disagreement"]),
                       warp_regularisation=float(d.get("warp_regularisation", 0.0)), notes=d.get("notes", {}))
        except (KeyError, TypeError, ValueError) as e:
            raise EnsembleError(f"{path}: malformed teacher-ensemble parameters ({e})") from None


# ---------------------------------------------------------------------------------------------------------
# Combining

def disagreement(dlib34: np.ndarray, mediapipe34: np.ndarray) -> float:
    """Mean distance between the two teachers' 34 shared points, in their face frame's units."""
    frame = FaceFrame.of(reference_shape(dlib34, mediapipe34))
    return float(np.linalg.norm(frame.to_frame(dlib34) - frame.to_frame(mediapipe34), axis=1).mean())


def uses_dlib(params: EnsembleParams, dlib34: np.ndarray | None, mediapipe34: np.ndarray | None) -> bool:
    """Whether dlib's points enter the estimate: present, and (with MediaPipe's) not too far from them."""
    if dlib34 is None:
        return False
    return mediapipe34 is None or disagreement(dlib34, mediapipe34) <= params.max_disagreement


def debias(points34: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A teacher's (34, 2) points plus its offsets, applied in that shape's own face frame (pixels in and out)."""
    frame = FaceFrame.of(points34)
    return frame.to_image(frame.to_frame(points34) + offsets)


def combine(params: EnsembleParams, dlib34: np.ndarray | None, mediapipe34: np.ndarray | None) -> np.ndarray:
    """The calibrated (34, 2) shared points, in pixels, from either teacher or both.

    `dlib34`: dlib's points at `IBUG68_ANCHORS`; `mediapipe34`: MediaPipe's face88 points at `FACE88_ANCHORS`;
    either may be None. Each teacher is first de-biased (its offsets added in its own face frame), then the
    two are blended per point with the weights; with one teacher (or dlib left out because it disagrees with
    MediaPipe by more than `params.max_disagreement`, see `uses_dlib`) the de-biased one is the answer.
    Raises EnsembleError when both are None or a shape is not (34, 2) finite."""
    if not uses_dlib(params, dlib34, mediapipe34):
        dlib34 = None
    if dlib34 is None and mediapipe34 is None:
        raise EnsembleError("no teacher points to combine")
    d = None if dlib34 is None else debias(dlib34, params.offsets_dlib)
    m = None if mediapipe34 is None else debias(mediapipe34, params.offsets_mediapipe)
    if d is None or m is None:
        return d if m is None else m
    w = params.weights[:, None]
    return w * d + (1 - w) * m


def to_frames(dlib34: np.ndarray, mediapipe34: np.ndarray, truth34: np.ndarray | None = None):
    """Batches (N, 34, 2) in pixels -> the same in each face's frame (made from the two teachers), plus the
    frames. The truth, when given, goes into the same frames (it never decides them)."""
    frames = [FaceFrame.of(reference_shape(d, m)) for d, m in zip(dlib34, mediapipe34)]
    qd = np.stack([f.to_frame(d) for f, d in zip(frames, dlib34)])
    qm = np.stack([f.to_frame(m) for f, m in zip(frames, mediapipe34)])
    qt = None if truth34 is None else np.stack([f.to_frame(t) for f, t in zip(frames, truth34)])
    return qd, qm, qt, frames


FIT_MODES = ("global", "per_point", "global+offsets", "per_point+offsets", "robust")
GATE_CHOICES = (0.05, 0.075, 0.1, 0.15, 0.2, 0.3, float("inf"))  # candidate max_disagreement values for "auto"


def fit_ensemble(dlib34: np.ndarray, mediapipe34: np.ndarray, truth34: np.ndarray, mode: str = "robust",
                 max_disagreement: float | str | None = None, huber: float = 0.05,
                 iterations: int = 10) -> EnsembleParams:
    """Fit weights (and offsets) from N faces where both teachers and a person placed the 34 shared points.

    Arrays are (N, 34, 2) pixels in the shared-point order (dlib at `IBUG68_ANCHORS`, MediaPipe at
    `FACE88_ANCHORS`, the person's iBUG points at `IBUG68_ANCHORS`). Modes:

    - "global": one weight for all points, no offsets (least squares);
    - "per_point": one weight per point, no offsets;
    - "global+offsets" / "per_point+offsets": each teacher's mean error per point in its own face frame is
      its offset (removed first), then the weight(s) are fitted on the de-biased points;
    - "robust": as "per_point+offsets", with Huber weights (threshold `huber` in inter-ocular units) on each
      face's point errors by iteratively reweighted least squares, so the few faces a teacher gets badly wrong
      do not set its offsets or the weights.

    `max_disagreement`: faces where dlib strays further from MediaPipe (`disagreement`) are left out of dlib's
    offsets and the weights, and the fitted parameters leave dlib out there too; None: no such gate; "auto":
    the value of `GATE_CHOICES` with the lowest error on these same faces. Weights are clipped to [0, 1].
    Raises EnsembleError on a bad mode or mismatched shapes."""
    if mode not in FIT_MODES:
        raise EnsembleError(f"unknown ensemble fit mode {mode!r}; known: {', '.join(FIT_MODES)}")
    dlib34, mediapipe34, truth34 = (np.asarray(a, np.float64) for a in (dlib34, mediapipe34, truth34))
    if not (dlib34.shape == mediapipe34.shape == truth34.shape and dlib34.shape[1:] == (SHARED, 2)
            and len(dlib34) > 0):
        raise EnsembleError(f"fit_ensemble needs three (N, {SHARED}, 2) arrays with N > 0, got "
                            f"{dlib34.shape}, {mediapipe34.shape}, {truth34.shape}")
    if max_disagreement == "auto":
        fits = [fit_ensemble(dlib34, mediapipe34, truth34, mode, gate, huber, iterations) for gate in GATE_CHOICES]
        errors = [np.mean([_nme(combine(p, d, m), t) for d, m, t in zip(dlib34, mediapipe34, truth34)])
                  for p in fits]
        return fits[int(np.argmin(errors))]
    gate = float("inf") if max_disagreement is None else float(max_disagreement)
    agree = np.array([disagreement(d, m) <= gate for d, m in zip(dlib34, mediapipe34)])
    with_offsets = mode not in ("global", "per_point")
    robust = mode == "robust"
    bm = _offsets(mediapipe34, truth34, huber, iterations if robust else 1) if with_offsets else np.zeros((SHARED, 2))
    if not agree.any():  # dlib never trusted: MediaPipe alone
        return EnsembleParams(np.zeros(SHARED), np.zeros((SHARED, 2)), bm, max_disagreement=gate)
    d34, m34, t34 = dlib34[agree], mediapipe34[agree], truth34[agree]
    bd = _offsets(d34, t34, huber, iterations if robust else 1) if with_offsets else np.zeros((SHARED, 2))
    d = np.stack([debias(x, bd) for x in d34])
    m = np.stack([debias(x, bm) for x in m34])
    # in each face's frame, so every face counts by its size in eye distances, not pixels
    qd, qm, qt, _ = to_frames(d, m, t34)
    per_point = mode not in ("global", "global+offsets")
    sample = np.ones(qt.shape[:2])
    for _ in range(iterations if robust else 1):
        # the weight minimising sum |t - (w d + (1 - w) m)|^2 = sum |(t - m) - w (d - m)|^2
        num = (sample[..., None] * (qt - qm) * (qd - qm)).sum(axis=(0, 2) if per_point else None)
        den = (sample[..., None] * (qd - qm) ** 2).sum(axis=(0, 2) if per_point else None)
        w = np.clip(np.where(den > 0, num / np.where(den > 0, den, 1), 0.5), 0.0, 1.0)
        w = np.broadcast_to(w, (SHARED,)).copy()
        err = np.linalg.norm(qt - (w[:, None] * qd + (1 - w[:, None]) * qm), axis=-1)
        sample = np.minimum(1.0, huber / np.maximum(err, 1e-12))
    return EnsembleParams(w, bd, bm, max_disagreement=gate)


def _nme(pred34: np.ndarray, truth34: np.ndarray) -> float:
    return float(np.linalg.norm(pred34 - truth34, axis=1).mean()
                 / np.linalg.norm(truth34[_RIGHT_CORNER] - truth34[_LEFT_CORNER]))


def _offsets(shapes34: np.ndarray, truth34: np.ndarray, huber: float, iterations: int) -> np.ndarray:
    """(34, 2) mean error of a teacher per point in each shape's own frame; Huber-weighted when iterating."""
    q, t = [], []
    for shape, truth in zip(shapes34, truth34):
        frame = FaceFrame.of(shape)
        q.append(frame.to_frame(shape))
        t.append(frame.to_frame(truth))
    residual = np.stack(t) - np.stack(q)
    sample = np.ones(residual.shape[:2])
    for _ in range(iterations):
        offsets = (sample[..., None] * residual).sum(axis=0) / sample.sum(axis=0)[:, None]
        err = np.linalg.norm(residual - offsets, axis=-1)
        sample = np.minimum(1.0, huber / np.maximum(err, 1e-12))
    return offsets


# ---------------------------------------------------------------------------------------------------------
# Carrying the whole face88 shape along: a thin-plate spline

def _tps_kernel(r: np.ndarray) -> np.ndarray:
    """U(r) = r² log r, with U(0) = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, r * r * np.log(np.where(r > 0, r, 1.0)), 0.0)


def warp_points(source: np.ndarray, target: np.ndarray, points: np.ndarray,
                regularisation: float = 0.0) -> np.ndarray:
    """Move `points` (P, 2) with the thin-plate spline that takes `source` (K, 2) onto `target` (K, 2).

    The spline interpolates the displacement target - source (so no displacement gives the identity
    exactly) with bending energy plus `regularisation` × the squared misfit (0: exact at the sources;
    Bookstein 1989, Wahba's smoothing for > 0). Works in the frame of `source` (any similarity frame gives the
    same warp; this one keeps the system well conditioned). Points equal to a source land exactly on its
    target only with regularisation 0; callers that need the sources exact set them afterwards
    (`ensemble_face88` does). Raises EnsembleError on bad shapes or fewer than 3 sources."""
    source, target, points = (np.asarray(a, np.float64) for a in (source, target, points))
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 3:
        raise EnsembleError(f"a thin-plate warp needs matching (K, 2) sources and targets with K >= 3, got "
                            f"{source.shape} and {target.shape}")
    if points.ndim != 2 or points.shape[1] != 2:
        raise EnsembleError(f"warp_points moves (P, 2) points, got {points.shape}")
    displacement = target - source
    if not np.any(displacement):
        return points.copy()
    centre = source.mean(axis=0)
    scale = float(np.sqrt(((source - centre) ** 2).sum(axis=1).mean())) or 1.0
    s, p = (source - centre) / scale, (points - centre) / scale
    k = len(s)
    kernel = _tps_kernel(np.linalg.norm(s[:, None] - s[None], axis=-1)) + regularisation * np.eye(k)
    affine = np.hstack([np.ones((k, 1)), s])
    system = np.zeros((k + 3, k + 3))
    system[:k, :k], system[:k, k:], system[k:, :k] = kernel, affine, affine.T
    rhs = np.zeros((k + 3, 2))
    rhs[:k] = displacement / scale
    # lstsq, not solve: two teachers' points can coincide (a closed mouth), which makes the system singular
    coef = np.linalg.lstsq(system, rhs, rcond=None)[0]
    moved = _tps_kernel(np.linalg.norm(p[:, None] - s[None], axis=-1)) @ coef[:k]
    moved += np.hstack([np.ones((len(p), 1)), p]) @ coef[k:]
    return points + moved * scale


def ensemble_face88(params: EnsembleParams, dlib68: np.ndarray | None, mediapipe88: np.ndarray | None) -> np.ndarray:
    """The ensemble's face88 shape (88, 2) in pixels.

    With MediaPipe's shape: its 34 shared points become the calibrated ones (`combine`) and the other 54
    follow by the thin-plate warp. Without it (dlib alone): a partial shape, the 34 calibrated shared points
    and NaN elsewhere (label files write NaN as null). Raises EnsembleError when both are None."""
    dlib34 = None if dlib68 is None else np.asarray(dlib68, np.float64)[IBUG68_ANCHORS]
    mp34 = None if mediapipe88 is None else np.asarray(mediapipe88, np.float64)[FACE88_ANCHORS]
    shared = combine(params, dlib34, mp34)
    if mediapipe88 is None:
        out = np.full((88, 2), np.nan)
    else:
        out = warp_points(mp34, shared, np.asarray(mediapipe88, np.float64), params.warp_regularisation)
    out[FACE88_ANCHORS] = shared
    return out


def ensemble_ibug68(params: EnsembleParams, dlib68: np.ndarray, mediapipe88: np.ndarray | None) -> np.ndarray:
    """The ensemble's iBUG-68 shape (68, 2) in pixels: dlib's 34 shared points replaced by the calibrated ones
    (`combine`), its other 34 carried along by the thin-plate warp (as `ensemble_face88` carries MediaPipe's).

    On an eye MediaPipe sees shut (`SHUT_EYE`), the lids are MediaPipe's (`_close_shut_lids`): dlib's do not
    close. With weights 1, zero dlib offsets and open eyes this is dlib's shape unchanged. dlib's points are
    required (MediaPipe has no iBUG contour of its own); raises EnsembleError when `dlib68` is None or dlib is left out
    (`uses_dlib`: it disagrees with MediaPipe beyond `params.max_disagreement`)."""
    if dlib68 is None:
        raise EnsembleError("an iBUG-68 ensemble shape needs dlib's points")
    dlib68 = np.asarray(dlib68, np.float64)
    dlib34 = dlib68[IBUG68_ANCHORS]
    mp34 = None if mediapipe88 is None else np.asarray(mediapipe88, np.float64)[FACE88_ANCHORS]
    if not uses_dlib(params, dlib34, mp34):
        raise EnsembleError("dlib disagrees with MediaPipe beyond the gate: no iBUG-68 shape")
    shared = combine(params, dlib34, mp34)
    out = warp_points(dlib34, shared, dlib68, params.warp_regularisation)
    out[IBUG68_ANCHORS] = shared
    if mediapipe88 is not None:
        _close_shut_lids(out, np.asarray(mediapipe88, np.float64))
    return out


# MediaPipe's eye openness (facemark.geometry.openness.eye_openness) under which an eye counts as shut: there
# dlib's lids stay open (mean 0.17-0.19 where MediaPipe's and a person's say 0.10), so the lids are
# MediaPipe's alone (benchmarks/results/eyelids.md, "Each teacher on shut eyes").
SHUT_EYE = 0.15
_LID_THIRDS = np.array([1 / 3, 2 / 3])  # where iBUG-68 puts its two points on each lid, along the eye


def _lid_at(polyline: np.ndarray, axis_origin: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The points of a lid polyline (corner, lid points, corner) at `_LID_THIRDS` of the way between corners."""
    t = (polyline - axis_origin) @ axis / (axis @ axis)
    t = np.maximum.accumulate(t)  # a folded polyline: keep the parameter increasing for the interpolation
    return np.stack([np.interp(_LID_THIRDS, t, polyline[:, k]) for k in (0, 1)], axis=1)


def _close_shut_lids(ibug68: np.ndarray, mediapipe88: np.ndarray) -> None:
    """On each eye MediaPipe sees shut, put MediaPipe's lids in place of the iBUG-68 shape's (in place): its
    face88 lids (3 points each) resampled at iBUG's places (2 each) and moved by the similarity that puts
    MediaPipe's eye corners on the shape's."""
    openness = eye_openness(mediapipe88)
    for k, eye in enumerate(("left_eye", "right_eye")):
        if not openness[k] < SHUT_EYE:
            continue
        m = mediapipe88[FACE88.region_slice(eye)]  # corners 0 and 4; upper lid 1-3, lower lid 7-5 left to right
        i = IBUG68.region_slice(eye).start  # corners i and i + 3; upper lid i+1, i+2, lower lid i+5, i+4
        corner, axis = m[0], m[4] - m[0]
        upper = _lid_at(m[[0, 1, 2, 3, 4]], corner, axis)
        lower = _lid_at(m[[0, 7, 6, 5, 4]], corner, axis)
        src = complex(*axis)
        dst = complex(*(ibug68[i + 3] - ibug68[i]))
        scale = dst / src if abs(src) > 1e-9 else 1.0
        z = ((np.r_[upper, lower] - corner) @ np.array([1, 1j])) * scale
        moved = np.stack([z.real, z.imag], axis=1) + ibug68[i]
        ibug68[[i + 1, i + 2, i + 5, i + 4]] = moved


# ---------------------------------------------------------------------------------------------------------
# Boxes from other boxes (dlib's detector rectangle from MediaPipe's points, say)

def map_box(box, mapping) -> tuple[float, float, float, float]:
    """Box (x0, y0, x1, y1) -> the box `mapping` = (centre shift x, y in units of the box's width/height,
    width ratio, height ratio) predicts, in the same pixel coordinates."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy, sw, sh = (float(v) for v in mapping)
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2 + dx * w, (y0 + y1) / 2 + dy * h
    return cx - sw * w / 2, cy - sh * h / 2, cx + sw * w / 2, cy + sh * h / 2


def fit_box_map(from_boxes: np.ndarray, to_boxes: np.ndarray) -> tuple[float, float, float, float]:
    """The `map_box` mapping from (N, 4) boxes to (N, 4) boxes of the same faces: the median of each ratio
    (medians, so a few mismatched faces do not pull it). Raises EnsembleError when N is 0 or shapes differ."""
    a, b = np.asarray(from_boxes, np.float64), np.asarray(to_boxes, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 4 or len(a) == 0:
        raise EnsembleError(f"fit_box_map needs two (N, 4) arrays with N > 0, got {a.shape} and {b.shape}")
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    dx = ((b[:, 0] + b[:, 2]) - (a[:, 0] + a[:, 2])) / 2 / w
    dy = ((b[:, 1] + b[:, 3]) - (a[:, 1] + a[:, 3])) / 2 / h
    return (float(np.median(dx)), float(np.median(dy)), float(np.median((b[:, 2] - b[:, 0]) / w)),
            float(np.median((b[:, 3] - b[:, 1]) / h)))
