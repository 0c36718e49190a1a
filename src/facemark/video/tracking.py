"""Faces through a video: the detector finds them, the landmark network follows them.

Detection costs several times a landmark pass, and neighbouring frames differ little, so a face found once is
followed by cropping the next frame around its last points (the framing the network was trained on) and
running one landmark pass; the detector runs only

- when there is no track (every frame, until a face appears),
- when a track looks lost (see below), to confirm it or let it go,
- every `detect_every` frames, to pick up faces that entered, and to re-anchor tracks that drifted.

A track "looks lost" when its new points are implausible next to its last ones: not finite, a box that grew
or shrank too much in one frame (or since the detector last confirmed it), changed its shape, jumped, turned
(roll) further than a head turns in one frame, left the image, or when the crop no longer looks like the
previous one (normalised cross-correlation of small grey thumbnails: a scene cut, a blank frame, something
passing in front). Then the detector decides: a
detection overlapping the track restarts its points from that detection, none ends the track. A track the
periodic check misses while it looks fine is kept for `max_misses` more detector runs (detectors miss faces
now and then: blur, a turned head).

A track whose points drifted off the face its detection shows (IoU below `reinit_iou`) restarts from the
detection as well: a landmark model whose points depend on the framing (a poorly trained one) walks away
from the face when its own points frame its crops, and the periodic detection is what holds it.

Each frame's landmark pass is a photo's first batch (facemark.pipeline.passes): the crop and its mirror image
together, their points averaged, and every face's trust (facemark.pipeline.trust) from the two halves'
disagreement; a track whose trust falls under the Landmarker's floor (`min_trust`) looks lost too. A track
starts, and restarts, from a detection as `Landmarker.detect` finds a face in a photo: the landmark passes, the
four ways up for a face not surely upright, and the same trust floors (`Landmarker.landmarks_for_candidates`), so
that a noisy re-detection cannot turn a still face's whole shape, and a face a photo would not show is not
followed.

Tracks are matched to detections greedily by overlap of landmark boxes (IoU, or, for a track grown around its
face, intersection over the smaller box). A face that is lost and found again gets a new track id. Each
track's points are smoothed with a One-Euro filter (facemark.video.smoothing); by default the raw points, not the
smoothed ones, frame the next crop, so smoothing never feeds lag back into tracking (`frame_on_smoothed`
frames on the smoothed points instead; with the default filter that buys no less jitter overall: see
benchmarks/results/jitter.md).

    tracker = FaceTracker(landmarker)
    for t, rgb in frames:
        for face in tracker.update(rgb, t): ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from facemark.detection.core import check_image
from facemark.detection.nms import box_overlap
from facemark.pipeline.crops import box_from_points, crop_image, inside_image, points_crop_transform, roll_angle
from facemark.layouts import Scheme
from facemark.video.smoothing import OneEuroFilter


@dataclass
class TrackerConfig:
    detect_every: int = 30  # frames between detector runs while all tracks look fine (new faces wait this long)
    smooth: bool = True  # One-Euro filter on each track's points
    # frame the next crop on the smoothed points instead of the raw ones: damps the feedback of the network's
    # noise through the framing, at the price of the filter's lag in the framing (with the default filter,
    # less jitter on one benchmark clip and more on another)
    frame_on_smoothed: bool = False
    # One-Euro: cut-off (Hz) of a still face, its rise per (face size per second) of speed, speed cut-off (Hz).
    # A steep rise and a quick speed estimate open the filter as soon as a face moves, so fast motion loses
    # little accuracy (a clip at 1-9 face sizes per second: NME against the teacher 3.4% raw, 3.7% smoothed;
    # beta 2 and d_cutoff 1 lagged to 10.1%), while a still or slow face, whose speed estimate is mostly the
    # network's noise, still loses 40-50% of its jitter. Measured on real clips: benchmarks/results/jitter.md.
    min_cutoff: float = 1.0
    beta: float = 20.0
    d_cutoff: float = 10.0
    match_iou: float = 0.3  # least IoU for a detection to belong to a track,
    match_cover: float = 0.6  # or least intersection over the smaller of the two boxes
    reinit_iou: float = 0.5  # a track overlapping its own detection less than this restarts from it (drift)
    duplicate_iou: float = 0.6  # two tracks overlapping more than this follow one face: the younger goes
    max_misses: int = 2  # periodic detector runs in a row that may miss a healthy-looking track
    # "looks lost" limits, per frame unless said otherwise
    max_scale_step: float = 1.3  # box size ratio to the previous frame
    max_scale_drift: float = 1.3  # box size ratio to the size when the detector last confirmed the track
    max_aspect_drift: float = 1.5  # box width/height ratio to the one when last confirmed
    max_shift: float = 0.4  # centre move, in box sizes
    max_roll_step: float = 30.0  # roll change, degrees: a shape that turns further in one frame has lost its face
    min_inside: float = 0.6  # share of points inside the image
    min_box: float = 8.0  # box size (geometric mean of width and height) in pixels
    min_similarity: float = 0.4  # normalised cross-correlation of this crop's thumbnail with the previous one

    def __post_init__(self):
        if int(self.detect_every) < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every!r}")


@dataclass
class TrackedFace:
    track: int  # track id: the same face keeps it from frame to frame
    box: tuple[float, float, float, float]  # box around `points` (x0, y0, x1, y1), pixel-centre convention
    points: np.ndarray  # (P, 2) image pixels, smoothed when the tracker smooths
    raw_points: np.ndarray  # (P, 2) the network's points of this frame, unsmoothed
    score: float  # detector confidence when the detector last saw this face
    scheme: Scheme
    trust: float | None = None  # facemark.pipeline.trust of this frame's raw points, in [0, 1]

    def region(self, name: str) -> np.ndarray:
        return self.points[self.scheme.region_slice(name)]

    def to_dict(self) -> dict:
        return {"track": self.track, "box": [round(float(v), 2) for v in self.box],
                "score": round(float(self.score), 4),
                **({} if self.trust is None else {"trust": round(float(self.trust), 4)}),
                "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]}


@dataclass
class TrackerStats:
    frames: int = 0
    detector_calls: int = 0
    landmark_batches: int = 0  # network calls (each a batch of faces)
    tracks_started: int = 0
    tracks_lost: int = 0  # ended because the detector could not confirm them
    reinitialised: int = 0  # restarted from a detection (drifted or implausible points)


@dataclass
class _Track:
    id: int
    points: np.ndarray  # raw points of the last frame
    score: float
    filter: OneEuroFilter | None
    ref_size: float = 0.0  # box size and aspect when the detector last confirmed the track
    ref_aspect: float = 1.0
    thumb: np.ndarray | None = None  # normalised thumbnail of the last crop, None after a restart
    misses: int = 0
    smoothed: np.ndarray | None = None
    suspect: bool = False
    new_points: np.ndarray | None = field(default=None, repr=False)
    trust: float = 1.0  # of `points`
    new_trust: float = 1.0  # of `new_points`

    def take_new_points(self) -> None:
        self.points, self.trust = self.new_points, self.new_trust

    def confirm(self, score: float) -> None:
        self.score, self.misses = score, 0
        self.ref_size, self.ref_aspect = _size_aspect(box_from_points(self.points))


class FaceTracker:
    """Landmarks of every face in consecutive frames of one video (or live stream).

    landmarker: a facemark.landmarker.Landmarker (its detector, network and crop settings are used).
    frequency: frames per second, for the One-Euro filter when `update` gets no timestamps.
    """

    def __init__(self, landmarker, config: TrackerConfig | None = None, *, frequency: float = 30.0):
        self.landmarker = landmarker
        self.config = config or TrackerConfig()
        self.frequency = float(frequency) if frequency and frequency > 0 else 30.0
        self.scheme = landmarker.scheme
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new video)."""
        self.tracks: list[_Track] = []
        self.stats = TrackerStats()
        self._next_id = 1
        self._since_detection = 0

    def update(self, rgb: np.ndarray, t: float | None = None) -> list[TrackedFace]:
        """The faces of the next frame (RGB uint8 H×W×3), `t` its time in seconds; sorted by track id."""
        cfg = self.config
        rgb = check_image(rgb)
        self.stats.frames += 1
        self._since_detection += 1
        height, width = rgb.shape[:2]

        if self.tracks:
            self._follow(rgb, width, height)
        needs_detector = (not self.tracks or self._since_detection >= cfg.detect_every
                          or any(tr.suspect or tr.misses for tr in self.tracks))
        if needs_detector:
            self._detect(rgb)
        else:
            for tr in self.tracks:
                tr.take_new_points()
        self._drop_duplicates()

        faces = []
        for tr in self.tracks:
            tr.new_points, tr.suspect = None, False
            points = tr.points
            if tr.filter is not None:
                size, _ = _size_aspect(box_from_points(points))
                points = tr.filter(points, t, scale=size)
                tr.smoothed = points
            faces.append(TrackedFace(tr.id, _safe_box(points), points, tr.points.copy(), tr.score, self.scheme,
                                     tr.trust))
        return faces

    # ---------------------------------------------------------------------------------------- steps

    def _follow(self, rgb: np.ndarray, width: int, height: int) -> None:
        """One landmark pass per track on a crop framed on its last points; flags implausible results."""
        lm = self.landmarker
        margin = lm.network.config.margin
        use_smoothed = self.config.frame_on_smoothed
        # each crop framed on the last points and turned by their roll, so a tilted face is seen upright
        transforms = []
        for tr in self.tracks:
            last = tr.smoothed if use_smoothed and tr.smoothed is not None else tr.points
            transforms.append(points_crop_transform(last, lm.crop_size, margin, roll_angle(last, self.scheme)))
        crops = np.stack([crop_image(rgb, tf) for tf in transforms])
        # one batch, the crops and their mirrors, as a photo's first batch: the two averaged, and each face's trust
        # from their disagreement (facemark.pipeline.trust)
        news, trusts = lm.one_batch(crops, transforms, (width, height))
        self.stats.landmark_batches += 1
        news = lm.refine_eyes(rgb, news)  # lids on eye patches of their own, as a photo's (facemark.pipeline.eyes)
        for tr, crop, new, trust in zip(self.tracks, crops, news, trusts):
            thumb = _thumbnail(crop)
            similar = tr.thumb is None or float(np.vdot(tr.thumb, thumb)) >= self.config.min_similarity
            tr.thumb = thumb
            tr.new_points, tr.new_trust = new, float(trust)
            tr.suspect = (not similar or not self._plausible(tr.points, new, tr, width, height)
                          or tr.new_trust < lm.min_trust)

    def _plausible(self, old: np.ndarray, new: np.ndarray, tr: _Track, width: int, height: int) -> bool:
        cfg = self.config
        if not np.isfinite(new).all():
            return False
        b0, b1 = box_from_points(old), box_from_points(new)
        s0, _ = _size_aspect(b0)
        s1, aspect = _size_aspect(b1)
        if s1 < cfg.min_box:
            return False
        if not 1 / cfg.max_scale_step <= s1 / s0 <= cfg.max_scale_step:
            return False
        if not 1 / cfg.max_scale_drift <= s1 / tr.ref_size <= cfg.max_scale_drift:
            return False
        if not 1 / cfg.max_aspect_drift <= aspect / tr.ref_aspect <= cfg.max_aspect_drift:
            return False
        shift = math.hypot((b1[0] + b1[2] - b0[0] - b0[2]) / 2, (b1[1] + b1[3] - b0[1] - b0[3]) / 2)
        if shift > cfg.max_shift * s0:
            return False
        turn = math.remainder(roll_angle(new, self.scheme) - roll_angle(old, self.scheme), 2 * math.pi)
        if abs(math.degrees(turn)) > cfg.max_roll_step:
            return False
        return bool(inside_image(new, (width, height)).mean() >= cfg.min_inside)

    def _detect(self, rgb: np.ndarray) -> None:
        """Run the detector: confirm, restart or end tracks, and start tracks for new faces."""
        cfg = self.config
        # the Landmarker's detection: scaled for its min_face, padded at the border, quarter turns when needed
        found = self.landmarker.candidates(rgb)
        detections = [c.detection for c in found]
        self.stats.detector_calls += 1
        self._since_detection = 0
        det_boxes = np.array([c.landmark_box for c in found], dtype=np.float64).reshape(-1, 4)

        # Overlap of every track with every detection; a suspect track's new box may be wild, so its old box
        # counts too. A track that drifted (grown around its face, slid half off it) overlaps its detection
        # with a low IoU but still covers most of it: it may match on intersection over the smaller box.
        iou = np.zeros((len(self.tracks), len(detections)))
        cover = np.zeros_like(iou)
        for i, tr in enumerate(self.tracks):
            if len(detections) == 0:
                break
            boxes = [np.array(box_from_points(tr.points))]
            if np.isfinite(tr.new_points).all():
                boxes.append(np.array(box_from_points(tr.new_points)))
            iou[i] = np.max([box_overlap(b, det_boxes) for b in boxes], axis=0)
            cover[i] = np.max([box_overlap(b, det_boxes, "min") for b in boxes], axis=0)
        eligible = (iou >= cfg.match_iou) | (cover >= cfg.match_cover)
        matches = _greedy_match(np.where(eligible, iou + cover, -1.0), 0.0)

        restart: list[tuple[_Track | None, int]] = []  # (track, or None for a new one; its detection)
        kept = []
        for i, tr in enumerate(self.tracks):
            j = matches.get(i)
            if j is None:
                if tr.suspect:
                    self.stats.tracks_lost += 1
                    continue
                tr.take_new_points()
                tr.misses += 1
                if tr.misses > cfg.max_misses:
                    self.stats.tracks_lost += 1
                    continue
            else:
                drifted = (not tr.suspect and box_overlap(np.array(box_from_points(tr.new_points)),
                                                          det_boxes[j:j + 1])[0] < cfg.reinit_iou)
                if tr.suspect or drifted:
                    restart.append((tr, j))
                else:
                    tr.take_new_points()
                    tr.confirm(detections[j].score)
            kept.append(tr)
        self.tracks = kept
        matched = set(matches.values())
        restart += [(None, j) for j in range(len(detections)) if j not in matched]
        if not restart:
            return

        # as a photo's faces: the passes, the way-up check, the trust floors (None: a photo would not show it)
        started = self.landmarker.landmarks_for_candidates(rgb, [found[j] for _, j in restart])
        self.stats.landmark_batches += 2 if self.landmarker.refine else 1
        ended = set()
        for (tr, j), result in zip(restart, started):
            if result is None:
                if tr is not None and tr.suspect:  # its own points are not to be believed either
                    ended.add(tr.id)
                    self.stats.tracks_lost += 1
                elif tr is not None:  # drifted from a detection that gives no trusted face: its own points stand
                    tr.take_new_points()
                continue
            p, trust = result
            if tr is None:
                tr = _Track(self._next_id, p, 0.0, self._new_filter(), trust=trust)
                self._next_id += 1
                self.stats.tracks_started += 1
                self.tracks.append(tr)
            else:
                # the old points were wrong (that is why it restarts): smoothing towards the new ones would
                # smear the error over the next frames, so the filter starts afresh too
                tr.points, tr.trust, tr.thumb, tr.smoothed = p, trust, None, None
                if tr.filter is not None:
                    tr.filter.reset()
                self.stats.reinitialised += 1
            tr.confirm(detections[j].score)
        self.tracks = sorted((tr for tr in self.tracks if tr.id not in ended), key=lambda tr: tr.id)

    def _drop_duplicates(self) -> None:
        """Two tracks on one face (a restart landed on another track's face): keep the older."""
        keep: list[_Track] = []
        for tr in self.tracks:  # sorted by id: older first
            box = np.array(box_from_points(tr.points))
            others = np.array([box_from_points(k.points) for k in keep]).reshape(-1, 4)
            if len(others) and box_overlap(box, others).max() > self.config.duplicate_iou:
                continue
            keep.append(tr)
        self.tracks = keep

    def _new_filter(self) -> OneEuroFilter | None:
        cfg = self.config
        if not cfg.smooth:
            return None
        return OneEuroFilter(cfg.min_cutoff, cfg.beta, cfg.d_cutoff, frequency=self.frequency)


# -------------------------------------------------------------------------------------------- helpers

THUMB_SIZE = 24  # thumbnail side for the appearance check: enough for "still the same face", cheap


def _thumbnail(crop: np.ndarray) -> np.ndarray:
    """A small grey version of a crop, zero mean and unit norm (all zeros when the crop is flat)."""
    grey = crop.astype(np.float32).mean(axis=2)
    small = cv2.resize(grey, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    # a flat crop (blank frame, lens cap) has no pattern to compare: zeros make its similarity 0
    return small / norm if norm > 1e-3 * small.size else np.zeros_like(small)


def _size_aspect(box) -> tuple[float, float]:
    """(geometric mean of width and height, width / height) of a box, both at least a hair above zero."""
    w, h = max(box[2] - box[0], 1e-6), max(box[3] - box[1], 1e-6)
    return math.sqrt(w * h), w / h


def _safe_box(points: np.ndarray) -> tuple[float, float, float, float]:
    try:
        return box_from_points(points)
    except ValueError:  # no finite point at all
        return (math.nan,) * 4


def _greedy_match(overlap: np.ndarray, threshold: float) -> dict[int, int]:
    """Track index -> detection index, highest scores first, each used once, only above `threshold`."""
    matches: dict[int, int] = {}
    if overlap.size == 0:
        return matches
    used_rows, used_cols = set(), set()
    for flat in np.argsort(-overlap, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, overlap.shape)
        if overlap[i, j] <= threshold:
            break
        if i in used_rows or j in used_cols:
            continue
        matches[int(i)] = int(j)
        used_rows.add(i)
        used_cols.add(j)
    return matches
