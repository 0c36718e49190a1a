"""Head pose from landmarks: a mean 3-D face, a pinhole camera and OpenCV's `solvePnP`. Geometry only, no network.

    pose = head_pose(points, image_size=(640, 480))      # or face.pose
    pose.yaw, pose.pitch, pose.roll                      # degrees
    pose.rotation, pose.translation                      # 3×3 model -> camera, (3,) millimetres

The 3-D model (`facemark/weights/face88_mean_face_3d.json`) is the average of MediaPipe Face Mesh's 3-D
vertices (x, y and relative z) over frontal CelebA faces, through face88's mesh mapping, made symmetric
(`scripts/make_mean_face.py` derives it). Its axes are those of the camera for a frontal face: x to the image's
right, y down, z away from the camera; origin at the midpoint of the outer eye corners; millimetres, with the
outer eye corners 90 mm apart.

Camera: a pinhole at the image centre ((W - 1) / 2, (H - 1) / 2 in pixel-centre coordinates), square pixels,
no distortion, focal length from a field of view across the image's longer side (`DEFAULT_FOV_DEG`, 60°: a
webcam or a phone's main camera spans about 60-70°). Give the real one (`fov_deg`, or a full `camera_matrix`)
when it is known; the angles depend on it little, the distance (translation z) in proportion.

Angles (OpenCV's camera axes; R = Rz(roll) · Ry(-yaw) · Rx(-pitch)), all 0 for a face looking straight into
the camera with its eyes level:
- yaw > 0: the nose points toward the image's right (the subject turns to their own left);
- pitch > 0: the nose points up (chin raised);
- roll > 0: the face is turned clockwise in the image (its right-hand eye, as seen, lower than the left one).

Only points that hold still on a face are used: the upper face sides (the profile's top five points on each
side), the eye corners, the eyebrows, the nose and the mouth corners, so a blink, speech or an open jaw leave
the pose alone. An ibug68 shape is solved from the iBUG points face88 shares among those.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemark.layouts import FACE88, FACE88_ANCHORS, IBUG68_ANCHORS, Scheme

MODEL_FILE = Path(__file__).parents[1] / "weights" / "face88_mean_face_3d.json"
DEFAULT_FOV_DEG = 60.0
EYE_CORNER_DISTANCE_MM = 90.0  # adult outer eye-corner (ex-ex) width, about 88-92 mm (Farkas 1994)
# Without the image's size (a Face built by hand), the camera is centred on the face and its image taken to be
# this many times the face's box: a face that fills about a third of the picture.
FACE_SHARE_OF_IMAGE = 3.0


class PoseError(ValueError):
    """Points a head pose cannot be computed from; one line saying why."""


def _rigid_face88() -> np.ndarray:
    """face88 points that do not move with the eyelids, the lips or the jaw (offsets follow face88.md's order)."""
    s = FACE88.region_slice
    profile, mouth = s("face_profile"), s("mouth")
    picked = [*range(profile.start, profile.start + 5), *range(profile.stop - 5, profile.stop)]
    for eye in ("left_eye", "right_eye"):
        picked += [s(eye).start, s(eye).start + 4]  # the two corners
    picked += [*range(s("left_eyebrow").start, s("right_eyebrow").stop), *range(s("nose").start, s("nose").stop)]
    picked += [mouth.start, mouth.start + 6]  # the mouth corners
    return np.array(sorted(picked))


RIGID_FACE88 = _rigid_face88()


@functools.lru_cache(maxsize=1)
def mean_face_3d() -> np.ndarray:
    """The (88, 3) mean face88 model in millimetres (read once from MODEL_FILE)."""
    record = json.loads(MODEL_FILE.read_text())
    points = np.asarray(record["points"], np.float64)
    if points.shape != (FACE88.num_points, 3):
        raise PoseError(f"{MODEL_FILE}: expected {FACE88.num_points}×3 points, got {points.shape}")
    points.setflags(write=False)
    return points


@dataclass(frozen=True)
class HeadPose:
    yaw: float  # degrees; > 0: the nose points toward the image's right
    pitch: float  # degrees; > 0: the nose points up
    roll: float  # degrees; > 0: the face turned clockwise in the image
    rotation: np.ndarray  # (3, 3) model -> camera coordinates (OpenCV: x right, y down, z forward)
    translation: np.ndarray  # (3,) the model's origin (between the outer eye corners) in the camera frame, mm
    camera_matrix: np.ndarray  # (3, 3) the pinhole camera used, pixels
    reprojection_error: float  # mean distance of the model's projected points from the landmarks, pixels

    @property
    def rotation_vector(self) -> np.ndarray:
        """Rodrigues vector (3,) of `rotation`, radians, as cv2.solvePnP returns it."""
        import cv2

        return cv2.Rodrigues(self.rotation)[0].ravel()

    def to_dict(self) -> dict:
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2)}


def camera_matrix(image_size: tuple[int, int], fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """Pinhole intrinsics (3, 3) for an image of (width, height) pixels with `fov_deg` across its longer side;
    principal point at the image centre, pixel-centre coordinates."""
    width, height = (float(v) for v in image_size)
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise PoseError(f"image size must be two positive numbers, got {image_size}")
    if not 1.0 <= fov_deg <= 170.0:
        raise PoseError(f"field of view must be between 1 and 170 degrees, got {fov_deg}")
    f = (max(width, height) / 2) / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], np.float64)


def head_pose(points: np.ndarray, scheme: Scheme | str = FACE88, *, image_size: tuple[int, int] | None = None,
              fov_deg: float = DEFAULT_FOV_DEG, camera: np.ndarray | None = None) -> HeadPose:
    """Head pose from (P, 2) landmarks in pixels (pixel-centre convention), face88 or ibug68.

    image_size: (width, height) of the image the points are in; without it, the camera is centred on the face
    (an image FACE_SHARE_OF_IMAGE times the face's box). camera: a full (3, 3) intrinsic matrix, overriding
    `image_size` and `fov_deg`. Raises PoseError for another layout, a wrong shape, or non-finite points."""
    import cv2

    from facemark.layouts import get_scheme

    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    p = np.asarray(points, np.float64)
    if p.shape != (scheme.num_points, 2):
        raise PoseError(f"expected ({scheme.num_points}, 2) {scheme.name} points, got {p.shape}")
    if scheme.name == "face88":
        image_pts, model_pts = p[RIGID_FACE88], mean_face_3d()[RIGID_FACE88]
    elif scheme.name == "ibug68":
        shared = np.isin(FACE88_ANCHORS, RIGID_FACE88)
        image_pts, model_pts = p[IBUG68_ANCHORS[shared]], mean_face_3d()[FACE88_ANCHORS[shared]]
    else:
        raise PoseError(f"head pose needs face88 or ibug68 points, not {scheme.name}")
    if not np.isfinite(image_pts).all():
        raise PoseError("head pose needs finite points (some are NaN or infinite)")
    if camera is None:
        if image_size is None:
            x0, y0 = image_pts.min(axis=0)
            x1, y1 = image_pts.max(axis=0)
            side = FACE_SHARE_OF_IMAGE * max(x1 - x0, y1 - y0, 1.0)
            camera = camera_matrix((side, side), fov_deg)
            camera[:2, 2] = ((x0 + x1) / 2, (y0 + y1) / 2)
        else:
            camera = camera_matrix(image_size, fov_deg)
    camera = np.asarray(camera, np.float64)
    if camera.shape != (3, 3) or not np.isfinite(camera).all():
        raise PoseError(f"camera must be a finite 3×3 matrix, got shape {camera.shape}")
    obj = np.ascontiguousarray(model_pts.reshape(-1, 1, 3))
    img = np.ascontiguousarray(image_pts.reshape(-1, 1, 2))
    # SQPnP finds the global least-squares optimum without a starting guess (Terzakis & Lourakis, ECCV 2020);
    # Levenberg-Marquardt then polishes it on the reprojection error
    ok, rvec, tvec = cv2.solvePnP(obj, img, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise PoseError("solvePnP found no pose for these points")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera, None, rvec, tvec)
    rotation = cv2.Rodrigues(rvec)[0]
    if tvec[2, 0] < 0:  # the mirror solution behind the camera: never a real face
        raise PoseError("solvePnP put the face behind the camera; the points are not a face")
    projected = cv2.projectPoints(obj, rvec, tvec, camera, None)[0].reshape(-1, 2)
    yaw, pitch, roll = rotation_to_angles(rotation)
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, rotation=rotation, translation=tvec.ravel(),
                    camera_matrix=camera,
                    reprojection_error=float(np.linalg.norm(projected - image_pts, axis=1).mean()))


def rotation_to_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a (3, 3) rotation R = Rz(roll) · Ry(-yaw) · Rx(-pitch) (module docstring)."""
    r = np.asarray(rotation, np.float64)
    b = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    a = math.atan2(r[2, 1], r[2, 2])
    c = math.atan2(r[1, 0], r[0, 0])
    return -math.degrees(b), -math.degrees(a), math.degrees(c)


def angles_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The (3, 3) rotation of (yaw, pitch, roll) degrees; inverse of `rotation_to_angles`."""
    a, b, c = math.radians(-pitch), math.radians(-yaw), math.radians(roll)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotation_angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """Geodesic angle in degrees between two rotations (the single rotation taking one onto the other)."""
    cos = (np.trace(np.asarray(a) @ np.asarray(b).T) - 1) / 2
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def similarity_3d(source: np.ndarray, target: np.ndarray, *, allow_scale: bool = True
                  ) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (scale s, rotation R, shift t) with s · source @ R.T + t ≈ target, for (N, 3)
    point sets (Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
    PAMI 1991); a proper rotation, never a reflection."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / (a ** 2).sum(axis=1).mean()) if allow_scale else 1.0
    return scale, rotation, mu_d - scale * mu_s @ rotation.T
