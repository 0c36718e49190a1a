"""The one public entry point: `Landmarker(...).detect(image) -> list[Face]`.

The common path, top to bottom (`Landmarker.detect`), one module per step:
1. **What the detector sees** (facemark.pipeline.size_policy): the image scaled so the work costs what the photo needs,
   inside a border (BlazeFace's shows the image mirrored at its edges: a face cut by the edge looks whole).
2. **Candidates** (facemark.pipeline.candidates): the detector's faces, each with a first crop: its box mapped to the
   framing the landmark network was trained on, turned by its roll.
3. **Landmark passes** (facemark.pipeline.passes): the first crop and its mirror in one batch; a refining pass framed on the
   points only where it pays; the trust score from the last batch.
4. **Way up** (facemark.pipeline.orientation): a face not surely upright is tried the four ways up; when no face is surely
   upright the image's quarter turns are searched too.
5. **Kept faces**: one face found twice is kept once; faces found only in tiles or turned copies, or not surely
   upright, need a higher trust, and every face at least `min_trust` (facemark.options.DEFAULT_MIN_TRUST by default).

Images above size_policy.LARGE_IMAGE_SIDE given as files or PIL images take the huge-image path
(facemark.pipeline.large_images): never decoded whole. The result type, `Face`, is in facemark.face.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from facemark.pipeline import size_policy
from facemark.pipeline.candidates import QUARTER_TURNS, Candidate, find_candidates
from facemark.detection.core import DEFAULT_DETECTOR, FaceDetector, Look
from facemark.detection.nms import box_overlap, nms
from facemark.face import Face
from facemark.pipeline.eyes import EyeRefinerNetwork, refine_lids
from facemark.pipeline.large_images import croppers_by_decode, cut_from_decodes
from facemark.images import ImageReader, from_bgr, lift_dark, load_image
from facemark.network import load_network, predict_crops
from facemark.options import LandmarkerOptions
from facemark.pipeline.orientation import UNSURE_MIN_TRUST, four_ways_up, surely_upright
from facemark.pipeline.passes import EDGE_FIRST_TRUST, Cropper, LandmarkPasses
from facemark.pipeline.crops import CropTransform, crop_image, face_box_crop_transform

__all__ = ["Landmarker", "LandmarkerOptions", "Face", "Candidate"]

# A face found only in a tile (BlazeFace looking for faces smaller than its whole-image look finds) is kept when
# its trust is at least this (benchmarks/results/false_faces.md).
TILED_MIN_TRUST = 0.15
# Two faces whose points' boxes overlap more than this are one face found twice: the better-scored one is kept.
DUPLICATE_IOU = 0.5
# A face whose points' box holds at least this share of another face's (intersection over the smaller box) is the
# same face seen twice too, one of them loosely (a shape drawn around a face smaller than the detector's box guessed:
# benchmarks/results/speed.md's small faces): a visible face cannot lie wholly inside another face's points. The
# better-trusted one is kept (a loose shape around a small face is the less trusted: benchmarks/results/group_photos.md).
NESTED_SHARE = 0.9


class Landmarker:
    """Landmarks for every face in an image.

    Built from keyword arguments or from a LandmarkerOptions (`Landmarker.from_options`; facemark.options says
    what each option does and its default): model, detector, refine, threads, backend, flip, min_face,
    find_turned, trust, min_trust, allow_truncated, refine_eyes.

    model: a built-in name ("face88"), a weights file or an .onnx file. detector: a name from
    facemark.detection.DETECTORS, "blazeface" by default (MediaPipe's BlazeFace converted to ONNX, built in),
    "mtcnn" (built in, ONNX too) or "mediapipe" (needs the `label` extra), or a FaceDetector, which keeps its own
    look (a detector made from a name looks where the size policy says). min_face: the smallest face to find, its
    side in pixels of the input image; None (default): one look at the whole image (facemark.pipeline.size_policy:
    BlazeFace finds faces down to about a tenth of the image's longer side, or of a long image's shorter side;
    MTCNN down to DEFAULT_MIN_FACE, 40 px). Smaller values reach further at a cost that grows with the image's
    area over min_face². min_trust: leave out faces whose trust is below it; None (default):
    facemark.options.DEFAULT_MIN_TRUST; 0 keeps every face. allow_truncated: a JPEG file cut short is read as far
    as its data goes instead of raising ImageError (to learn whether it was, pass an
    `ImageReader(path, allow_truncated=True)` and read its `truncated`). refine_eyes (default True): a face88
    model's lids are placed again on a patch of each eye by a small second network (facemark.pipeline.eyes), so
    shut eyes close; other layouts keep their own lids.
    Raises facemark.options.OptionError (a ValueError naming the option) for an option out of range.
    """

    def __init__(self, model=None, detector: str | FaceDetector = DEFAULT_DETECTOR, refine: bool = True,
                 threads: int | None = None, backend: str = "auto", flip: bool = False, min_face: float | None = None,
                 find_turned: bool = True, trust: bool = True, min_trust: float | None = None, *,
                 allow_truncated: bool = False, refine_eyes: bool = True, options: LandmarkerOptions | None = None):
        from facemark.detection import create_detector

        if options is None:
            options = LandmarkerOptions(model, detector, refine, threads, backend, flip, min_face, find_turned,
                                        trust, min_trust, allow_truncated, refine_eyes)
        self.options = options
        self.min_face = options.min_face
        self.trust = options.trust
        # the floor applies with trust off too (the score is computed either way; only the Face leaves it out)
        self.min_trust = options.trust_floor
        self.find_turned = options.find_turned
        threads = options.thread_count
        self.network = load_network(options.model, backend=options.backend, threads=threads)
        self.scheme = self.network.scheme
        # a detector made here sees the copy the size policy makes and looks for what it asks; one given keeps
        # its own settings
        detector = options.detector
        self._sized = isinstance(detector, str)
        self.detector = create_detector(detector, threads=threads, whole_image=True) if self._sized else detector
        refine, flip = options.refine, options.flip
        self.refine = refine
        self.flip = flip
        self.passes = LandmarkPasses(self.network, refine=refine, flip=flip)
        self.crop_size = self.network.config.input_size
        # the lids placed again on eye patches of their own: face88's eyes only (other layouts keep theirs)
        self.eyes = EyeRefinerNetwork(threads=threads) if options.refine_eyes and self.scheme.name == "face88" else None

    @classmethod
    def from_options(cls, options: LandmarkerOptions) -> Landmarker:
        """A Landmarker built with `options` (validated when they were made)."""
        return cls(options=options)

    def detect(self, image, *, bgr: bool = False) -> list[Face]:
        """Faces by descending score. `image`: a path, a PIL image, a facemark.images.ImageReader (a file already
        opened; its decode is kept for the caller) or an H×W×3 uint8 array, RGB unless
        `bgr=True` (as OpenCV gives it); other arrays are converted by facemark.images.load_image (gray, RGBA,
        uint16, float). An RGB uint8 array is used as it is (not copied); a file or PIL image larger than
        size_policy.LARGE_IMAGE_SIDE is never decoded whole into an array. Boxes and points are in image pixels,
        origin at the centre of the top-left pixel; a box may reach outside the image (a face cut by its edge).
        Raises facemark.images.ImageError for an unreadable image."""
        if bgr:
            image = from_bgr(image)  # a grey H×W frame has no channel order: it is not mirrored
        if isinstance(image, np.ndarray):
            rgb = image if _is_rgb(image) else load_image(image)
        else:
            reader = image
            if not isinstance(reader, ImageReader):
                reader = ImageReader(image, allow_truncated=self.options.allow_truncated)
            if max(reader.size) > size_policy.LARGE_IMAGE_SIDE:
                return self._detect_large(reader)
            rgb = reader.array()
        height, width = rgb.shape[:2]
        copy = self._detector_copy(rgb)
        if copy is None:
            return []
        small, s, look = copy
        crop = functools.partial(crop_image, rgb)
        found = self._find(small, s, look, (0,))
        faces = self._landmarks(crop, found, (width, height))
        if self.find_turned and not any(f.upright for f in faces):
            # no face surely upright: the detector may take a face lying on its side for a bigger, wrong one,
            # upright; look in the image's quarter turns too, and keep one face where both ways found it
            faces = _one_per_face(faces, self._landmarks(crop, self._find(small, s, look, QUARTER_TURNS),
                                                         (width, height)))
        kept = self._kept([f.face(self.scheme, (width, height), rgb, self.trust) for f in faces], faces)
        return self._with_refined_eyes(_cut_from(rgb), kept)

    def refine_eyes(self, rgb: np.ndarray, points: list[np.ndarray]) -> list[np.ndarray]:
        """Faces' (P, 2) points in image pixels of an RGB uint8 image with their lids placed again on eye patches
        (facemark.pipeline.eyes); the points as they are when the eye refiner is off or the layout is not face88."""
        return self._refined(_cut_from(rgb), points)

    def _refined(self, cut, points: list[np.ndarray]) -> list[np.ndarray]:
        """`refine_eyes` with the eye patches' squares cut by `cut` (transforms -> crops)."""
        if self.eyes is None or not points:
            return points
        return refine_lids(cut, points, self.scheme, self.eyes)

    def _with_refined_eyes(self, cut, faces: list[Face]) -> list[Face]:
        for face, points in zip(faces, self._refined(cut, [f.points for f in faces])):
            face.points = points
        return faces

    def candidates(self, rgb: np.ndarray) -> list[Candidate]:
        """The detector's faces in an RGB uint8 H×W×3 array, best score first, each with its first crop (scaled
        for `min_face`, padded; when none is found upright and `find_turned`, those of the image's quarter
        turns)."""
        copy = self._detector_copy(rgb)
        return [] if copy is None else self._find(*copy)

    def landmarks_for_candidates(self, rgb: np.ndarray,
                                 found: list[Candidate]) -> list[tuple[np.ndarray, float] | None]:
        """Per candidate (from `candidates`), (points, trust) as `detect` gives its face: the passes, then the four
        ways up for a face not surely upright; None where `detect` leaves it out (its trust under the floor that
        applies to it). What a video's tracks start and restart from, so that they start as photos do."""
        crop = functools.partial(crop_image, rgb)
        faces = self._landmarks(crop, found, (rgb.shape[1], rgb.shape[0]))
        passing = [self._passes_floor(f) for f in faces]
        refined = iter(self.refine_eyes(rgb, [f.points for f, ok in zip(faces, passing) if ok]))
        return [(next(refined), f.trust) if ok else None for f, ok in zip(faces, passing)]

    def landmarks_for_boxes(self, rgb: np.ndarray, boxes) -> list[np.ndarray]:
        """Points for faces whose landmark boxes (≈ the upright box around their points, image pixels) are
        known; all in one batch, refined where the passes say it pays."""
        framing = self.network.config.face_framing
        return self.landmarks_for_transforms(
            rgb, [face_box_crop_transform(b, self.crop_size, self.network.config.margin, framing) for b in boxes])

    def landmarks_for_transforms(self, rgb: np.ndarray, transforms: list[CropTransform]) -> list[np.ndarray]:
        """(P, 2) points in image pixels for faces whose first crops are known (e.g. `Candidate.transform`), lids
        placed by the eye refiner as `detect`'s."""
        return self.refine_eyes(rgb, self.passes.run(functools.partial(crop_image, rgb), transforms).points)

    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """Points in crop pixels for a batch of (N, S, S, 3) uint8 crops."""
        return predict_crops(self.network, crops, flip=self.flip)

    def one_batch(self, crops: np.ndarray, transforms: list[CropTransform],
                  image_size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], list[float]]:
        """(points (P, 2) image pixels, trust) of each of (N, S, S, 3) uint8 crops cut by `transforms` from an image of
        `image_size` (width, height): one batch with their mirrors, as a photo's first batch
        (facemark.pipeline.passes.LandmarkPasses.one_batch). Video tracking follows faces with it."""
        return self.passes.one_batch(crops, transforms, image_size)

    def trust_scores(self, rgb: np.ndarray, points: list[np.ndarray]) -> list[float]:
        """Trust in [0, 1] of each face's (P, 2) points in an RGB uint8 image (facemark.pipeline.trust): the network run
        once more on a crop framed on the points, and on that crop mirrored, both compared with the points."""
        return self.passes.trust_scores(functools.partial(crop_image, rgb), points, (rgb.shape[1], rgb.shape[0]))

    # ------------------------------------------------------------------------------------------ the steps

    def _look(self, width: int, height: int, reduced: bool = False) -> tuple[float, Look | None]:
        return size_policy.detector_look(self.detector, width, height, self.min_face, reduced=reduced,
                                         sized=self._sized)

    def _detector_copy(self, rgb: np.ndarray) -> tuple[np.ndarray, float, Look | None] | None:
        """(the detector's copy of `rgb`, brightened when dark; its scale s: full = (small + 0.5) * s - 0.5; what the
        detector looks for in it), as the size policy says; None for an image too thin to search."""
        height, width = rgb.shape[:2]
        if size_policy.too_thin(width, height):
            return None
        s, look = self._look(width, height)
        small, s = size_policy.scaled_for_detector(rgb, s)
        # a photo taken with too little light: brightened, as the network's crops are
        return lift_dark(small), s, look

    def _find(self, small: np.ndarray, s: float, look: Look | None,
              turns: tuple[int, ...] | None = None) -> list[Candidate]:
        """Candidates in `small` (the image scaled by 1/s) in image pixels, the detector looking for `look`; turns:
        the quarter turns to look in; None: upright, then, when nothing is found there and `find_turned`, the
        other three."""
        pad = round(size_policy.BORDER_PAD * min(small.shape[:2]))

        def find(turns):
            return find_candidates(self.detector, small, s, pad, turns, self.crop_size, self.network.config.margin,
                                   look, self.network.config.face_framing)

        if turns is not None:
            return find(turns)
        found = find((0,))
        if not found and self.find_turned:
            found = find(QUARTER_TURNS)
        return found

    def _landmarks(self, crop: Cropper, found: list[Candidate], image_size: tuple[int, int]) -> list[_Found]:
        """Each candidate's points and trust (facemark.pipeline.passes); a face not surely upright is tried the four ways
        up (facemark.pipeline.orientation; one found only for reaching beyond the edge, from EDGE_FIRST_TRUST), and
        its trust measured on its final points."""
        edge_only = [c.detection.beyond_edge for c in found]
        result = self.passes.run(crop, [c.transform for c in found], image_size, edge_only)
        faces = [_Found(c, p, t, surely_upright(g, t))
                 for c, p, t, g in zip(found, result.points, result.trusts, result.mirror_gaps)]
        doubtful = [f for f in faces if not f.upright
                    and (not f.candidate.detection.beyond_edge or f.trust >= EDGE_FIRST_TRUST)]
        if doubtful:
            turned = four_ways_up(self.passes, crop, [f.candidate.transform for f in doubtful], image_size)
            trusts = self.passes.trust_scores(crop, [p for p, _ in turned], image_size)
            for f, (points, gap), trust in zip(doubtful, turned, trusts):
                f.points, f.trust, f.upright = points, trust, surely_upright(gap, trust)
        return faces

    def _kept(self, faces: list[Face], found: list[_Found]) -> list[Face]:
        """One face per face found twice; faces found only in tiles (TILED_MIN_TRUST), only in turned copies or
        not surely upright (UNSURE_MIN_TRUST) only when trusted; every face at least `min_trust` (0: every face,
        no floor at all). The floors come first: a face under its floor never hides one that passes."""
        passing = [i for i, f in enumerate(found) if self._passes_floor(f)]
        keep = [passing[j] for j in _distinct_points([faces[i].points for i in passing],
                                                     [faces[i].score for i in passing])]
        nested = _distinct_points([faces[i].points for i in keep], [faces[i].trust for i in keep], "min", NESTED_SHARE)
        keep = {keep[j] for j in nested}
        return [face for i, face in enumerate(faces) if i in keep]

    def _passes_floor(self, f: _Found) -> bool:
        """Whether a face's trust reaches its floor: `min_trust`, and UNSURE_MIN_TRUST for a face not surely
        upright or found only in a turned copy, TILED_MIN_TRUST for one found only in a tile (0: no floor)."""
        if self.min_trust <= 0:
            return True
        unsure = not f.upright or (f.candidate.turn and not f.found_upright)
        return f.trust >= max(UNSURE_MIN_TRUST if unsure else 0.0,
                              TILED_MIN_TRUST if f.candidate.detection.tiled else 0.0, self.min_trust)

    def _detect_large(self, reader: ImageReader) -> list[Face]:
        """The huge-image path (facemark.pipeline.large_images): the detector on a shrunk decode, each face cut from the
        smallest decode that keeps it sharp."""
        width, height = reader.size
        if size_policy.too_thin(width, height):
            return []
        s, look = self._look(width, height, reduced=True)
        small, s = reader.downscaled(max(12, math.floor(max(width, height) / s)))
        found = self._find(lift_dark(small), s, look)
        del small
        faces: list[_Found | None] = [None] * len(found)
        for indices, crop in croppers_by_decode(reader, [c.transform for c in found], self.crop_size):
            for i, f in zip(indices, self._landmarks(crop, [found[i] for i in indices], reader.size)):
                faces[i] = f
        kept = self._kept([f.face(self.scheme, reader.size, None, self.trust) for f in faces], faces)
        return self._with_refined_eyes(functools.partial(cut_from_decodes, reader), kept)


class _Found:
    """A candidate with its landmarks: points (P, 2) in image pixels, trust, and whether it is surely upright."""

    def __init__(self, candidate: Candidate, points: np.ndarray, trust: float, upright: bool):
        self.candidate, self.points, self.trust, self.upright = candidate, points, trust, upright
        self.found_upright = candidate.turn == 0  # found in the upright image (a turned face: there too)

    def face(self, scheme, image_size, image, with_trust: bool) -> Face:
        d = self.candidate.detection
        return Face(d.box, d.score, self.points, scheme, self.trust if with_trust else None, image_size, image)


def _one_per_face(upright: list[_Found], turned: list[_Found]) -> list[_Found]:
    """One face found both upright and in a turned copy (or a bigger false face around it, upright): the surely
    upright one, then the better score; overlap over the smaller points' box; best score first. A turned face
    kept where an upright one was found is marked `found_upright` (only faces found in turned copies alone need
    UNSURE_MIN_TRUST)."""
    faces = upright + turned
    keep = _distinct_points([f.points for f in faces],
                            [float(f.upright) + f.candidate.detection.score for f in faces], "min")
    for i in keep:
        if faces[i].candidate.turn and upright:
            boxes = np.array([_points_box(f.points) for f in upright])
            faces[i].found_upright = bool(
                (box_overlap(np.asarray(_points_box(faces[i].points)), boxes, "min") > DUPLICATE_IOU).any())
    keep.sort(key=lambda i: -faces[i].candidate.detection.score)
    return [faces[i] for i in keep]


def _points_box(points: np.ndarray) -> list[float]:
    return [*np.nanmin(points, axis=0), *np.nanmax(points, axis=0)]


def _distinct_points(points: list[np.ndarray], priority: list[float], mode: str = "union",
                     threshold: float = DUPLICATE_IOU) -> list[int]:
    """Indices (in their order) of the shapes whose points' boxes overlap no shape of higher priority by more
    than `threshold` (intersection over union, or over the smaller box: facemark.detection.nms.box_overlap);
    shapes with fewer than two finite points are kept."""
    usable = [i for i, p in enumerate(points) if np.isfinite(p).all(axis=1).sum() >= 2]
    if len(usable) < 2:
        return list(range(len(points)))
    boxes = np.array([[*np.nanmin(points[i], axis=0), *np.nanmax(points[i], axis=0)] for i in usable])
    kept = {usable[j] for j in nms(boxes, np.array([priority[i] for i in usable], np.float64), threshold, mode)}
    return [i for i in range(len(points)) if i in kept or i not in usable]


def _cut_from(rgb: np.ndarray):
    """Crop transforms -> their crops of `rgb` (facemark.pipeline.eyes's `Cut`)."""
    return lambda transforms: [crop_image(rgb, t) for t in transforms]


def _is_rgb(image: np.ndarray) -> bool:
    return image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0
