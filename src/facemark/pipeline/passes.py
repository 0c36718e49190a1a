"""The landmark passes: from each face's first crop to its points and trust score.

1. **One batch**: the first crop (framed on the detector's box) and its mirror image, predicted together; the
   points are the two averaged.
2. **A refining pass, only where it pays**: when the square framed on those points differs from the crop they came
   from (FRAMING_SHIFT, FRAMING_SCALE, FRAMING_ROLL: a poorly framed or tilted face), or the two halves disagree
   (ORIENTATION_CHECK) or the trust is low (REFINE_BELOW_TRUST), the face is predicted again, with its mirror image,
   in a crop framed on its points and turned level by the roll of their eyes, so the network sees it exactly as in
   training; repeated (at most MAX_PASSES in all) while the roll still moves by more than ROLL_RECHECK, or while the
   face is cut by the image's edge (CUT_SHARE).
3. **Trust** (facemark.pipeline.trust) comes from the face's last batch at no extra cost: the points the crop was framed on
   (after one batch: the batch's own average) against the crop's points and its mirror's.

Faces whose way up is still in doubt after this (facemark.pipeline.orientation) are tried the four ways up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facemark.network import LandmarkNetwork, predict_crops
from facemark.pipeline.crops import CropTransform, points_crop_transform, roll_angle
from facemark.pipeline.trust import disagreement, judged_points, trust_from_disagreement

Cropper = Callable[[CropTransform], np.ndarray]  # a crop transform (image pixels) -> its S×S×3 uint8 crop

# A face's first batch is final when the square framed on its points is within these of the crop it was seen in:
# the centre within FRAMING_SHIFT of the side, the side within FRAMING_SCALE (log ratio), the roll within
# FRAMING_ROLL (benchmarks/results/passes.md)
FRAMING_SHIFT = 0.06
FRAMING_SCALE = 0.08
FRAMING_ROLL = math.radians(10)
# A one-batch face's disagreement (its two halves against their average) times this is comparable with a refining
# pass's (both halves against the points the crop was framed on), so one trust scale serves both: the median ratio
# on AFW (benchmarks/results/passes.md)
ONE_BATCH_DISAGREEMENT = 1.8
# ...and its trust at least this (a face the network is unsure of is framed again on its points)
REFINE_BELOW_TRUST = 0.5
# A refining pass is repeated (at most MAX_PASSES batches in all) while the roll it measures differs from the
# roll its crop was turned by by more than this: an upright first crop of a tilted face only half measures its roll.
ROLL_RECHECK = math.radians(15)
MAX_PASSES = 3
# A face with at least this share of its points beyond the image's edge is refined again while passes remain: its
# first crop (the detector's box of the face completed by the border's mirror) is far off, and trust judges the last
# crop against the points it was framed on (the sample cut 30 % by the left edge: trust 0.36 -> 0.81)
CUT_SHARE = 0.1
# A face the detector found only for reaching beyond the image's edge (Detection.beyond_edge: a face cut by the edge,
# or nothing) goes on to refining passes, and to the four ways up, only from this first trust: most such boxes hold
# no face, and each refining pass of them cost time for no face (docs/decisions.md, "a lower score at the edge")
EDGE_FIRST_TRUST = 0.1
# Which way up a face is: a face upright in its crop gives points that agree with its mirror image's (mean point
# distance ≤ 0.013 of the crop on HELEN faces); a face turned by 90° or more does not (≥ 0.02: the network draws an
# upright shape on whatever it is shown). Above this the face is not surely upright (facemark.pipeline.orientation).
ORIENTATION_CHECK = 0.02


@dataclass
class PassResult:
    """Per face, in image pixels: final points (P, 2), trust in [0, 1], the last batch's mirror disagreement
    (mean point distance between the crop's and its mirror's points, in units of the crop's side), and how many
    batches it took."""

    points: list[np.ndarray]
    trusts: list[float]
    mirror_gaps: list[float]
    batches: list[int]


def _cut_by_edge(points: np.ndarray, image_size: tuple[int, int] | None) -> bool:
    """Whether at least CUT_SHARE of a face's (P, 2) points lie beyond the edge of an image of `image_size`
    (while enough of them lie inside for trust to judge it by those: trust.judged_points)."""
    return image_size is not None and float((~judged_points(points, image_size)).mean()) >= CUT_SHARE


class LandmarkPasses:
    """The landmark network's passes over crops of one image (see the module docstring).

    network: a facemark.network.LandmarkNetwork (or the torch back end's equivalent). refine: allow the refining
    pass (False: the first batch is always final). flip: `predict` also averages with the mirrored crop.
    """

    def __init__(self, network: LandmarkNetwork, refine: bool = True, flip: bool = False):
        self.network = network
        self.scheme = network.scheme
        self.crop_size = network.config.input_size
        self.margin = network.config.margin
        self.refine = refine
        self.flip = flip

    def run(self, crop: Cropper, transforms: list[CropTransform],
            image_size: tuple[int, int] | None = None, edge_only: list[bool] | None = None) -> PassResult:
        """Points, trust and mirror disagreement of each face from its first crop (one batch; a refining pass for
        the faces that need it). `image_size` (width, height): trust judges the points inside the image only
        (facemark.pipeline.trust). `edge_only`: per face, whether the detector found it only for reaching beyond
        the image's edge (refined only from EDGE_FIRST_TRUST)."""
        if len(transforms) == 0:
            return PassResult([], [], [], [])
        points, gaps, one, other = self.predict_mirrored(crop, transforms, image_size)
        framing = list(points)  # per face: the points its last crop is judged against
        batches = [1] * len(points)
        todo = [i for i in range(len(points)) if self.refine and not self._framed_well(
            transforms[i], points[i], one[i], other[i], gaps[i], image_size)]
        if edge_only is not None and any(edge_only[i] for i in todo):
            first = self._one_batch_trust(np.stack(points), np.stack(one), np.stack(other), image_size)
            todo = [i for i in todo if not edge_only[i] or first[i] >= EDGE_FIRST_TRUST]
        for _ in range(MAX_PASSES - 1):
            if not todo:
                break
            rolls = {i: roll_angle(points[i], self.scheme) for i in todo}
            mean, gap, a, b = self.predict_mirrored(crop, [self.framing(points[i], rolls[i]) for i in todo],
                                                    image_size)
            todo_next = []
            for j, i in enumerate(todo):
                framing[i], one[i], other[i], gaps[i] = points[i], a[j], b[j], gap[j]
                points[i] = mean[j]
                batches[i] += 1
                if (abs(math.remainder(roll_angle(mean[j], self.scheme) - rolls[i], 2 * math.pi)) > ROLL_RECHECK
                        or _cut_by_edge(mean[j], image_size)):
                    todo_next.append(i)
            todo = todo_next
        d = disagreement(np.stack(framing), np.stack(one), np.stack(other), self.scheme, image_size)
        d = np.where(np.array(batches) == 1, ONE_BATCH_DISAGREEMENT * d, d)
        return PassResult(points, [float(v) for v in trust_from_disagreement(d)], gaps, batches)

    def _framed_well(self, t: CropTransform, points: np.ndarray, one: np.ndarray, other: np.ndarray,
                     gap: float, image_size: tuple[int, int] | None = None) -> bool:
        """Whether a first batch is final: the face is framed and levelled as in training, and trusted (judged by
        its points inside an image of `image_size`, when given)."""
        if not gap <= ORIENTATION_CHECK:
            return False
        f = self.framing(points, roll_angle(points, self.scheme))
        if math.hypot(f.cx - t.cx, f.cy - t.cy) > FRAMING_SHIFT * t.side:
            return False
        if abs(math.log(f.side / t.side)) > FRAMING_SCALE:
            return False
        if abs(math.remainder(f.angle - t.angle, 2 * math.pi)) > FRAMING_ROLL:
            return False
        return float(self._one_batch_trust(points, one, other, image_size)) >= REFINE_BELOW_TRUST

    def trust_scores(self, crop: Cropper, points: list[np.ndarray],
                     image_size: tuple[int, int] | None = None) -> list[float]:
        """Trust of given (P, 2) points: one batch on the crops framed on them (and their mirrors), compared with
        them (facemark.pipeline.trust; inside an image of `image_size` only, when given)."""
        if len(points) == 0:
            return []
        _, _, one, other = self.predict_mirrored(crop, [self.framing(p, roll_angle(p, self.scheme)) for p in points])
        d = disagreement(np.stack(points), np.stack(one), np.stack(other), self.scheme, image_size)
        return [float(v) for v in trust_from_disagreement(d)]

    def one_batch(self, crops: np.ndarray, transforms: list[CropTransform],
                  image_size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], list[float]]:
        """(points, trust) of each of (N, S, S, 3) crops cut by `transforms`, as a face's first batch gives them:
        the crop's and its mirror's points averaged, in image pixels, and trust from the two halves' disagreement
        (ONE_BATCH_DISAGREEMENT); no refining pass. A video's tracked faces take this: their crops are framed on the
        last frame's points already."""
        if len(transforms) == 0:
            return [], []
        points, _, one, other = self.mirrored(crops, transforms)
        return points, [float(v) for v in self._one_batch_trust(points, one, other, image_size)]

    def _one_batch_trust(self, points, one, other, image_size: tuple[int, int] | None = None) -> np.ndarray:
        """Trust of (…, P, 2) points that are their batch's own average (one batch, no earlier points to judge
        against): the halves' disagreement scaled by ONE_BATCH_DISAGREEMENT."""
        d = disagreement(np.asarray(points), np.asarray(one), np.asarray(other), self.scheme, image_size)
        return trust_from_disagreement(ONE_BATCH_DISAGREEMENT * d)

    def predict(self, crop: Cropper, transforms: list[CropTransform]) -> list[np.ndarray]:
        """(P, 2) image-pixel points of each crop (mirror-averaged with `flip`)."""
        crops = np.stack([crop(t) for t in transforms])
        crop_points = predict_crops(self.network, crops, flip=self.flip)
        return [t.to_image(p) for t, p in zip(transforms, crop_points)]

    def predict_mirrored(self, crop: Cropper, transforms: list[CropTransform],
                         image_size: tuple[int, int] | None = None) -> tuple[list, list, list, list]:
        """For each transform, in image pixels: (the points averaged with the mirrored crop's, the mean distance
        between the two in units of the crop's side, the crop's own points, the mirrored crop's points). With
        `image_size` (width, height), the distance is over the points inside the image (trust.judged_points): a
        face cut by the edge is judged by what can be seen of it."""
        return self.mirrored(np.stack([crop(t) for t in transforms]), transforms, image_size)

    def mirrored(self, crops: np.ndarray, transforms: list[CropTransform],
                 image_size: tuple[int, int] | None = None) -> tuple[list, list, list, list]:
        """`predict_mirrored` of (N, S, S, 3) crops already cut by `transforms`."""
        direct, mirrored = self.direct_and_mirrored(crops)
        distances = np.linalg.norm(direct - mirrored, axis=-1)
        one = [t.to_image(a) for t, a in zip(transforms, direct)]
        other = [t.to_image(b) for t, b in zip(transforms, mirrored)]
        points = [(a + b) / 2 for a, b in zip(one, other)]
        if image_size is None:
            gaps = distances.mean(axis=-1) / crops.shape[2]
        else:  # never empty: every point is judged when too few lie inside
            judged = judged_points(np.stack(points), image_size)
            gaps = np.array([d[j].mean() for d, j in zip(distances, judged)]) / crops.shape[2]
        return points, [float(d) for d in gaps], one, other

    def direct_and_mirrored(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points in crop pixels of (N, S, S, 3) crops and of their left/right mirrors, the mirrors' points mapped
        back into the crops' pixels and point names (Scheme.flip_points): one network batch of 2N, never
        flip-averaged (each half's own answer is what the callers compare)."""
        both = predict_crops(self.network, np.concatenate([crops, crops[:, :, ::-1]]), flip=False)
        n = len(crops)
        return both[:n], self.scheme.flip_points(both[n:], crops.shape[2])

    def framing(self, points: np.ndarray, roll: float) -> CropTransform:
        """The network's crop of a face whose points are known: the square around them, turned by `roll`."""
        try:
            return points_crop_transform(points, self.crop_size, self.margin, roll)
        except ValueError:  # no finite point (a broken network output): a crop far away that gives NaN again
            return CropTransform(0.0, 0.0, 1.0, self.crop_size)
