"""The result type: `Face`, one face's box, score, landmarks and trust, with the answers geometry gives from its
points (head pose, eye and mouth openness, an aligned chip) as thin calls into facemark.geometry.pose, .measures, .chips."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facemark.layouts import Scheme
from facemark.pipeline.crops import inside_image


@dataclass(repr=False)
class Face:
    """One face: its detector box and score, and its landmarks in image pixels.

    Left and right are the image's: "left_eye" is the eye on the image's left, which is the subject's right
    eye (as in the 300-W / iBUG convention)."""

    box: tuple[float, float, float, float]  # detector box x0, y0, x1, y1 (image pixels, pixel-centre convention)
    score: float  # detector confidence
    points: np.ndarray  # (P, 2) float image pixels, 0-based, pixel-centre convention
    scheme: Scheme
    # how far the points can be believed, in [0, 1] (facemark.pipeline.trust); None when the Landmarker computed none
    trust: float | None = None
    image_size: tuple[int, int] | None = None  # (width, height) of the image the face is in: the pose's camera
    # the RGB array the face was found in (a reference, not a copy), for `chip()`; None for a huge image file
    image: np.ndarray | None = field(default=None, compare=False)

    @property
    def outside(self) -> np.ndarray:
        """(P,) bool: the points outside the image (a face cut by its edge): guessed from the rest of the face, not
        seen. A point is inside when it lies within the image's pixels, edges included (-0.5 .. size - 0.5);
        all False when the image size is unknown."""
        if self.image_size is None:
            return np.zeros(len(self.points), bool)
        return ~inside_image(self.points, self.image_size)

    def region(self, name: str) -> np.ndarray:
        """Points of one region, e.g. face.region("left_eye") (the eye on the image's left)."""
        return self.points[self.scheme.region_slice(name)]

    # --- answers from the points: thin calls into facemark.geometry.pose, .measures, .chips (geometry, no network) ---

    @property
    def pose(self):
        """Head pose (facemark.geometry.pose.HeadPose: yaw, pitch, roll in degrees, rotation, translation in mm) with the
        default camera (60° across the image's longer side). Raises facemark.geometry.pose.PoseError (a ValueError)."""
        return self.head_pose()

    def head_pose(self, fov_deg: float | None = None, camera: np.ndarray | None = None):
        """`pose` with another field of view (degrees across the image's longer side) or a full 3×3 camera."""
        from facemark.geometry.pose import DEFAULT_FOV_DEG, head_pose

        return head_pose(self.points, self.scheme, image_size=self.image_size, camera=camera,
                         fov_deg=DEFAULT_FOV_DEG if fov_deg is None else fov_deg)

    @property
    def eye_openness(self) -> tuple[float, float]:
        """Eye aspect ratio of (image-left eye, image-right eye): ~0.2-0.4 open, ~0.05 closed (facemark.geometry.openness)."""
        from facemark.geometry.openness import eye_openness

        left, right = eye_openness(self.points, self.scheme)
        return float(left), float(right)

    @property
    def mouth_openness(self) -> float:
        """Inner-lip gap over mouth width: 0 closed, ~0.3-0.6 wide open (facemark.geometry.openness)."""
        from facemark.geometry.openness import mouth_openness

        return float(mouth_openness(self.points, self.scheme))

    def chip(self, image: np.ndarray | None = None, *, size: int = 112, template: str = "arcface",
             margin: float = 0.25):
        """The face aligned onto a template (facemark.geometry.chips.AlignedChip: .image, .matrix image->chip, .to_chip,
        .to_image). `image`: the H×W×3 uint8 array the points are in; by default the one the face was found in.
        template: "arcface" (insightface's 112×112, scaled to `size`) or "square" (the same shrunk by
        1 / (1 + margin)). Raises facemark.geometry.chips.ChipError (a ValueError)."""
        from facemark.geometry.chips import ChipError, aligned_chip

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
        outside = np.flatnonzero(self.outside)
        if len(outside):
            d["outside"] = [int(i) for i in outside]  # indices of points outside the image: guesses
        return d
