"""Head pose accuracy (facemark.geometry.pose): on views with a known rotation, and against MediaPipe's facial
transformation matrix on real video.

    python benchmarks/head_pose.py                    # both parts; writes benchmarks/results/head_pose.md

1. Known rotation ("warped"). Faces of `--images` (300-W HELEN training crops by default) are re-rendered
   turned by a known rotation Q: MediaPipe Face Mesh's 478 vertices (x, y in pixels, relative z at the scale of
   x) are the face's surface, a grid of points on a plane at the face contour's mean depth carries the
   background, all are rotated about the mesh centroid and projected orthographically, and the image is warped
   triangle by triangle (Delaunay triangles of the original view, painted far to near). facemark's pose of the
   original view (R0) and of the warped one (R1) must differ by Q: the error is the angle of the rotation
   R1 R0^T Q^T (geodesic), and per axis the yaw/pitch/roll of R1 against those of Q R0.
2. MediaPipe ("video"). On the shared clips, facemark's pose of each frame against the pose in MediaPipe's own
   facial transformation matrix (its FaceGeometry pipeline: the C++ calculator inside the mediapipe wheel,
   run on Face Mesh's landmarks, with its metadata file `benchmarks/data/...pbtxt` from the MediaPipe
   repository, Apache-2.0). Both use MediaPipe's camera (vertical field of view 63°, centred). The two face
   models define "frontal" each their own way, so MediaPipe's rotation is taken into facemark's model frame by
   the fixed rotation between the two models (a Procrustes fit of facemark's mean face onto MediaPipe's
   canonical face at the 88 shared vertices), never fitted on the clips.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GLOG_minloglevel", "2")

from facemark.images import load_image  # noqa: E402
from facemark.geometry.pose import (angles_to_rotation, camera_matrix, head_pose, mean_face_3d,  # noqa: E402
                           rotation_angle_between, rotation_to_angles, similarity_3d)
from facemark.labels.teachers import MEDIAPIPE_TO_FACE88, import_mediapipe  # noqa: E402
from report import write_report  # noqa: E402

METADATA = REPO / "benchmarks" / "data" / "mediapipe_geometry_pipeline_metadata_landmarks.pbtxt"
SHARED = REPO.parent / "shared" / "data"
FLIP_YZ = np.diag([1.0, -1.0, -1.0])  # OpenGL axes (y up, z toward the viewer) <-> OpenCV's (y down, z forward)


# ------------------------------------------------------------------------------------- MediaPipe's geometry

class MediaPipeGeometry:
    """Face Mesh landmarks and MediaPipe's facial transformation matrix, frame by frame (one face)."""

    def __init__(self, tracking: bool, workdir: Path):
        mp = import_mediapipe()
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import packet_creator, packet_getter
        from mediapipe.python._framework_bindings import calculator_graph, image_frame, resource_util
        from mediapipe.tasks.cc.vision.face_geometry.proto import face_geometry_graph_options_pb2  # noqa: F401
        from mediapipe.tasks.cc.vision.face_geometry.proto import geometry_pipeline_metadata_pb2

        metadata = geometry_pipeline_metadata_pb2.GeometryPipelineMetadata()
        text_format.Parse(METADATA.read_text(), metadata)
        self.metadata = metadata
        binary = workdir / "geometry_pipeline_metadata_landmarks.binarypb"
        binary.write_bytes(metadata.SerializeToString())
        root = Path(mp.__file__).parent
        resource_util.set_resource_dir(str(root.parent))
        config = calculator_pb2.CalculatorGraphConfig()
        config.ParseFromString((root / "modules/face_landmark/face_landmark_front_cpu.binarypb").read_bytes())
        config.type = ""
        text_format.Merge(f'''
            node {{ calculator: "ImagePropertiesCalculator" input_stream: "IMAGE:image" output_stream: "SIZE:fm_size" }}
            node {{ calculator: "mediapipe.tasks.vision.face_geometry.FaceGeometryFromLandmarksGraph"
              input_stream: "IMAGE_SIZE:fm_size" input_stream: "FACE_LANDMARKS:multi_face_landmarks"
              output_stream: "FACE_GEOMETRY:multi_face_geometry"
              node_options {{ [type.googleapis.com/mediapipe.tasks.vision.face_geometry.proto.FaceGeometryGraphOptions] {{
                geometry_pipeline_options {{ metadata_file {{ file_name: "{binary}" }} }} }} }} }}
            output_stream: "multi_face_geometry"''', config)
        self._packet_creator, self._image_frame = packet_creator, image_frame
        self._graph = calculator_graph.CalculatorGraph(graph_config=config)
        self._out: dict[str, list] = {"geometry": [], "landmarks": []}
        self._graph.observe_output_stream(
            "multi_face_geometry", lambda s, p: self._out["geometry"].append(packet_getter.get_proto_list(p)))
        self._graph.observe_output_stream(
            "multi_face_landmarks", lambda s, p: self._out["landmarks"].append(packet_getter.get_proto_list(p)))
        self._graph.start_run(input_side_packets={
            "num_faces": packet_creator.create_int(1), "with_attention": packet_creator.create_bool(True),
            "use_prev_landmarks": packet_creator.create_bool(tracking)})
        self._t = 0

    def process(self, rgb: np.ndarray):
        """(478×3 mesh in pixels (x·W, y·H, z·W), 4×4 transformation matrix) or (None, None)."""
        for v in self._out.values():
            v.clear()
        self._t += 1
        frame = self._packet_creator.create_image_frame(image_format=self._image_frame.ImageFormat.SRGB,
                                                        data=np.ascontiguousarray(rgb))
        self._graph.add_packet_to_input_stream("image", frame.at(self._t))
        self._graph.wait_until_idle()
        if not self._out["geometry"] or not self._out["geometry"][0] or not self._out["landmarks"]:
            return None, None
        h, w = rgb.shape[:2]
        lm = self._out["landmarks"][0][0].landmark
        mesh = np.array([(p.x * w - 0.5, p.y * h - 0.5, p.z * w) for p in lm], np.float64)
        data = self._out["geometry"][0][0].pose_transform_matrix
        matrix = np.array(data.packed_data, np.float64).reshape(data.cols, data.rows).T  # column-major
        return mesh, matrix

    def canonical_vertices(self) -> np.ndarray:
        """MediaPipe's canonical face (468×3, cm, OpenGL axes) from the metadata's vertex buffer (x y z u v)."""
        buf = np.array(self.metadata.canonical_mesh.vertex_buffer, np.float64).reshape(-1, 5)
        return buf[:, :3]

    def close(self):
        self._graph.close()


def model_frame_offset(geometry: MediaPipeGeometry) -> np.ndarray:
    """The fixed rotation C with R_facemark = R_mediapipe(OpenCV axes) · C: facemark's mean face fitted onto
    MediaPipe's canonical face (OpenCV axes) at the 88 face88 vertices."""
    canonical = geometry.canonical_vertices()[MEDIAPIPE_TO_FACE88] @ FLIP_YZ
    _, rotation, _ = similarity_3d(mean_face_3d(), canonical)
    return rotation


def mediapipe_rotation(matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return FLIP_YZ @ matrix[:3, :3] @ FLIP_YZ @ offset


# ------------------------------------------------------------------------------------------- warped views

def render_rotated(rgb: np.ndarray, mesh: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`rgb` with the face (mesh: N×3 pixels) and a background plane turned by rotation q about the mesh
    centroid, orthographic projection, warped per Delaunay triangle, far triangles first."""
    import cv2
    from scipy.spatial import Delaunay

    h, w = rgb.shape[:2]
    face = mesh[:468]
    centre = face.mean(axis=0)
    xs, ys = np.linspace(-0.5, w - 0.5, 9), np.linspace(-0.5, h - 0.5, 9)
    grid = np.array([(x, y) for x in xs for y in ys])
    hull = Delaunay(face[:, :2])
    grid = grid[hull.find_simplex(grid) < 0]  # background points outside the face only
    plane_z = np.percentile(face[:, 2], 90)  # the face's far edge: the background sits behind it
    points = np.vstack([face, np.column_stack([grid, np.full(len(grid), plane_z)])])
    moved = (points - centre) @ q.T + centre
    triangles = Delaunay(points[:, :2]).simplices
    depth = moved[triangles, 2].mean(axis=1)
    out = np.zeros_like(rgb)
    for tri in triangles[np.argsort(-depth)]:  # far (large z) first
        src, dst = points[tri, :2].astype(np.float32), moved[tri, :2].astype(np.float32)
        x0, y0 = np.floor(dst.min(axis=0)).astype(int)
        x1, y1 = np.ceil(dst.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        m = cv2.getAffineTransform(src, dst - np.float32([x0, y0]))
        patch = cv2.warpAffine(rgb, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round((dst - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        out[y0:y1, x0:x1][mask > 0] = patch[mask > 0]
    return out


def warped_part(landmarker, images: list[Path], per_face: int, seed: int, workdir: Path, progress: bool) -> dict:
    rng = np.random.default_rng(seed)
    geometry = MediaPipeGeometry(tracking=False, workdir=workdir)
    errors, axis_errors, used = [], [], 0
    reference = []  # MediaPipe's own points through the same solver: how turned the renders look to another tool
    try:
        for k, path in enumerate(images):
            rgb = load_image(path)
            mesh, _ = geometry.process(rgb)
            faces = landmarker.detect(rgb)
            if mesh is None or not faces:
                continue
            r0 = faces[0].pose.rotation
            size = (rgb.shape[1], rgb.shape[0])
            m0 = head_pose(mesh[MEDIAPIPE_TO_FACE88, :2], image_size=size).rotation
            used += 1
            for _ in range(per_face):
                yaw, pitch, roll = rng.uniform(-35, 35), rng.uniform(-20, 20), rng.uniform(-25, 25)
                q = angles_to_rotation(yaw, pitch, roll)
                view = render_rotated(rgb, mesh, q)
                seen, _ = geometry.process(view)
                if seen is not None:
                    m1 = head_pose(seen[MEDIAPIPE_TO_FACE88, :2], image_size=size).rotation
                    reference.append(rotation_angle_between(m1 @ m0.T, q))
                found = landmarker.detect(view)
                if not found:
                    errors.append(np.nan)
                    continue
                best = min(found, key=lambda f: np.linalg.norm(np.mean(f.points, axis=0)
                                                                - np.mean(faces[0].points, axis=0)))
                r1 = best.pose.rotation
                errors.append(rotation_angle_between(r1 @ r0.T, q))
                axis_errors.append(np.abs(np.subtract(rotation_to_angles(r1), rotation_to_angles(q @ r0))))
            if progress and (k + 1) % 10 == 0:
                print(f"  warped: {k + 1}/{len(images)} faces", file=sys.stderr, flush=True)
    finally:
        geometry.close()
    e = np.array(errors)
    a = np.array(axis_errors)
    return {"faces": used, "views": len(e), "missed": int(np.isnan(e).sum()), "mean": float(np.nanmean(e)),
            "median": float(np.nanmedian(e)), "p90": float(np.nanpercentile(e, 90)),
            "mediapipe": float(np.mean(reference)) if reference else math.nan,
            "yaw": float(a[:, 0].mean()), "pitch": float(a[:, 1].mean()), "roll": float(a[:, 2].mean())}


def video_part(landmarker, videos: list[Path], workdir: Path, progress: bool) -> list[dict]:
    import cv2

    rows = []
    for video in videos:
        geometry = MediaPipeGeometry(tracking=True, workdir=workdir)
        offset = model_frame_offset(geometry)
        capture = cv2.VideoCapture(str(video))
        errors, axis = [], []
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                h, w = rgb.shape[:2]
                _, matrix = geometry.process(rgb)
                faces = landmarker.detect(rgb)
                if matrix is None or not faces:
                    continue
                # MediaPipe's camera: 63° vertically, centred
                fov = math.degrees(2 * math.atan(math.tan(math.radians(31.5)) * max(w, h) / h))
                ours = faces[0].head_pose(camera=camera_matrix((w, h), fov)).rotation
                theirs = mediapipe_rotation(matrix, offset)
                errors.append(rotation_angle_between(ours, theirs))
                axis.append(np.abs(np.subtract(rotation_to_angles(ours), rotation_to_angles(theirs))))
        finally:
            capture.release()
            geometry.close()
        e, a = np.array(errors), np.array(axis)
        rows.append({"video": video.name, "frames": len(e), "mean": float(e.mean()), "median": float(np.median(e)),
                     "p90": float(np.percentile(e, 90)), "yaw": float(a[:, 0].mean()),
                     "pitch": float(a[:, 1].mean()), "roll": float(a[:, 2].mean())})
        if progress:
            print(f"  video {video.name}: {rows[-1]['mean']:.2f}° over {len(e)} frames", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="facemark weights (default: the built-in face88)")
    parser.add_argument("--images", default=str(SHARED / "300w" / "helen_train"), help="faces to turn")
    parser.add_argument("--faces", type=int, default=40, help="faces taken from --images (evenly spaced)")
    parser.add_argument("--views", type=int, default=8, help="random rotations per face")
    parser.add_argument("--videos", nargs="*", default=sorted(str(p) for p in (SHARED / "videos").glob("*.mp4")))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "head_pose.md"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    import tempfile

    import torch

    from facemark.landmarker import Landmarker

    torch.set_num_threads(args.threads)
    landmarker = Landmarker(args.model, threads=args.threads, trust=False)
    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = files[:: max(1, len(files) // args.faces)][: args.faces]
    with tempfile.TemporaryDirectory() as tmp:
        warped = warped_part(landmarker, images, args.views, args.seed, Path(tmp), not args.quiet)
        videos = video_part(landmarker, [Path(v) for v in args.videos], Path(tmp), not args.quiet)

    lines = [f"Model: {args.model or 'face88'}; method: the benchmark's docstring.", "",
             "## 1. Known rotation: faces re-rendered turned by a known rotation", "",
             f"{warped['faces']} faces of `{Path(args.images).name}`, {args.views} random rotations each (yaw ±35°, "
             f"pitch ±20°, roll ±25°), {warped['views']} views, {warped['missed']} without a face found. Error: "
             "the angle between facemark's change of pose and the rotation applied.", "",
             "| views | mean angle error | median | 90th pct | mean abs yaw err | pitch | roll |",
             "|---|---|---|---|---|---|---|",
             f"| {warped['views'] - warped['missed']} | **{warped['mean']:.2f}°** | {warped['median']:.2f}° | "
             f"{warped['p90']:.2f}° | {warped['yaw']:.2f}° | {warped['pitch']:.2f}° | {warped['roll']:.2f}° |", "",
             f"For scale: MediaPipe Face Mesh's own face88 points on the same views, through the same solver and "
             f"model, miss the applied rotation by {warped['mediapipe']:.2f}° on average. The renders turn a mesh "
             "whose depth is MediaPipe's estimate, with flat hair and background: both tools see them less turned "
             "than the rotation applied (on yaw sweeps both read about 0.7-0.8 of it), so this error is an upper "
             "bound set partly by the renderer.", "",
             "## 2. Against MediaPipe's facial transformation matrix, shared clips", "",
             "| clip | frames | mean angle error | median | 90th pct | mean abs yaw diff | pitch | roll |",
             "|---|---|---|---|---|---|---|---|"]
    for r in videos:
        lines.append(f"| {r['video']} | {r['frames']} | **{r['mean']:.2f}°** | {r['median']:.2f}° | {r['p90']:.2f}° | "
                     f"{r['yaw']:.2f}° | {r['pitch']:.2f}° | {r['roll']:.2f}° |")
    if videos:
        total = sum(r["frames"] for r in videos)
        mean = sum(r["mean"] * r["frames"] for r in videos) / total
        lines += ["", f"All {total} frames: mean angle between the two poses **{mean:.2f}°**."]
    lines += ["", "Target: mean error ≤ 5°."]
    write_report(args.out, "Head pose accuracy (`facemark.geometry.pose`)", lines)


if __name__ == "__main__":
    main()
