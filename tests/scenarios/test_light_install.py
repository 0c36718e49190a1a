"""The user install has no torch (issue 12, part 7): the runtime never imports it, nor onnx, matplotlib or
mediapipe, and predict, video and the API work without them.

Each check runs in a fresh Python in which those packages cannot be imported (an import finder refuses them),
so the test holds on the developer install, which has them all. The real light install (`pip install .` in
its own virtual environment, numpy 2) is checked by `make light-check`, which CI runs after the tests.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import facemark

REPO = Path(__file__).resolve().parents[2]
ASTRONAUT = REPO / "examples" / "astronaut.png"
# what only the extras bring: train (torch, onnx, matplotlib), plot (matplotlib), label/teacher (mediapipe, dlib),
# ray (Ray Data)
EXTRAS_ONLY = ("torch", "onnx", "matplotlib", "mediapipe", "dlib", "jax", "ray")
# modules that need an extra by design: the torch package, the Ray entry
NEEDS_AN_EXTRA = ("facemark.train", "facemark.ray")

BLOCKER = f"""
import sys
class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: the light install)", name=name)
sys.meta_path.insert(0, _Refuse())
"""


def run_light(code: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python without the extras' packages; a failure shows its stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", BLOCKER + code, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)
    return done


def runtime_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(facemark.__path__, "facemark.")]
    return [n for n in names if not n.startswith(NEEDS_AN_EXTRA)]


def test_runtime_modules_import_without_the_extras():
    modules = runtime_modules()
    assert {"facemark.landmarker", "facemark.network", "facemark.cli.predict", "facemark.cli.video", "facemark.cli",
            "facemark.detection.blazeface.detector", "facemark.detection.mtcnn.detector", "facemark.geometry.pose",
            "facemark.geometry.chips"} <= set(modules)
    done = run_light("import importlib, sys\n"
                     "for name in sys.argv[1:]: importlib.import_module(name)\n"
                     "print(sorted(m for m in sys.modules if m.split('.')[0] in " + repr(EXTRAS_ONLY) + "))",
                     *modules)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_api_finds_the_sample_face_without_torch():
    done = run_light("import sys, json, facemark\n"
                     "faces = facemark.Landmarker().detect(sys.argv[1])\n"
                     "ibug = facemark.Landmarker(model='ibug68').detect(sys.argv[1])\n"
                     "mtcnn = facemark.Landmarker(detector='mtcnn').detect(sys.argv[1])\n"
                     "f = faces[0]\n"
                     "print(json.dumps({'n': len(faces), 'points': f.points.tolist(), 'trust': f.trust,\n"
                     "                  'yaw': f.pose.yaw, 'chip': list(f.chip().image.shape),\n"
                     "                  'ibug': len(ibug[0].points), 'mtcnn': len(mtcnn),\n"
                     "                  'torch': 'torch' in sys.modules}))", ASTRONAUT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n"] == 1 and result["ibug"] == 68 and result["mtcnn"] == 1 and not result["torch"]
    assert len(result["points"]) == 88 and 0 < result["trust"] <= 1
    assert abs(result["yaw"]) < 45 and result["chip"] == [112, 112, 3]


def test_the_light_api_gives_the_torch_networks_points():
    """The shipped .onnx and the torch .pt weights give the same points through the whole pipeline."""
    from facemark.landmarker import Landmarker

    code = ("import sys, json, facemark\n"
            "print(json.dumps(facemark.Landmarker(threads=1).detect(sys.argv[1])[0].points.tolist()))")
    done = run_light(code, ASTRONAUT)
    assert done.returncode == 0, done.stderr
    import numpy as np

    light = np.array(json.loads(done.stdout))
    torch_points = Landmarker(threads=1, backend="torch").detect(ASTRONAUT)[0].points
    assert np.abs(light - torch_points).max() < 0.05  # pixels of the 512-px image


def test_cli_predict_and_video_without_torch(tmp_path):
    import cv2
    import numpy as np

    clip = tmp_path / "clip.mp4"
    frame = cv2.resize(cv2.imread(str(ASTRONAUT)), (256, 256))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    for k in range(6):
        writer.write(np.roll(frame, 2 * k, axis=1))
    writer.release()
    cli = "import sys; from facemark.cli import main; sys.exit(main(sys.argv[1:]))"
    done = run_light(cli, "predict", ASTRONAUT, "--json", tmp_path / "points.jsonl", "--draw", "--out", tmp_path,
                     "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "points.jsonl").read_text())
    assert len(record["faces"]) == 1 and len(record["faces"][0]["points"]) == 88
    assert list(tmp_path.glob("astronaut*.png")), "no drawing written"
    done = run_light(cli, "video", clip, "--json", tmp_path / "clip.jsonl", "--quiet")
    assert done.returncode == 0, done.stderr
    frames = [json.loads(line) for line in (tmp_path / "clip.jsonl").read_text().splitlines()]
    assert len(frames) == 6 and all(len(f["faces"]) == 1 for f in frames)


@pytest.mark.parametrize("argv, extra", [
    (["train", "--data", ".", "--out", "run"], "facemark[train]"),
    (["eval", "--data", "."], "facemark[train]"),
    (["export", "--onnx", "x.onnx"], "facemark[train]"),
    (["predict", str(ASTRONAUT), "--model", str(REPO / "src/facemark/weights/face88.pt")], "facemark[train]"),
    (["video", "missing.mp4", "--plot", "p.png"], "facemark[plot]"),
    (["predict", str(ASTRONAUT), "--ray"], "facemark[ray]"),
    (["label", str(ASTRONAUT.parent), "--out", "labels.jsonl", "--ray"], "facemark[ray]"),
])
def test_what_needs_an_extra_says_which_in_one_line(argv, extra, tmp_path):
    done = run_light("import sys; from facemark.cli import main; sys.exit(main(sys.argv[1:]))", *argv, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert extra in lines[0] and "Traceback" not in done.stderr
