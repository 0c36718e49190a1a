"""The first hour of a new user (issue 13): nothing lost, nothing overwritten, errors that say what is wrong
(and come before any model loads), and the things a user would otherwise have to guess.

Videos with odd frame sizes are made with the ffmpeg `facemark video` uses (OpenCV's own writer rounds the
size down to even); images are the sample astronaut, scaled.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facemark import cli
from cli_runs import run_cli

REPO = Path(__file__).resolve().parents[2]
ASTRONAUT = REPO / "examples" / "astronaut.png"


def one_line_error(err: str, verb: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"facemark {verb}: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a landmark model or the training loop is loaded: the errors must come first."""
    import facemark.landmarker
    import facemark.train.training
    import facemark.train.weights

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments and inputs were checked")

    monkeypatch.setattr(facemark.landmarker.Landmarker, "__init__", loaded)
    monkeypatch.setattr(facemark.train.weights, "load_weights", loaded)
    monkeypatch.setattr(facemark.train.training, "train", loaded)


@pytest.fixture(scope="module")
def landmarker():
    from facemark.landmarker import Landmarker

    return Landmarker(threads=1)


def small_face(side: int = 160) -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------------------- odd-sized video


def ffmpeg_or_skip() -> str:
    from facemark.cli.video import find_ffmpeg

    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        pytest.skip("no ffmpeg (the `video` extra, part of `test`)")
    return ffmpeg


def odd_clip(path: Path, width: int, height: int, frames: int = 4) -> Path:
    """A lossless clip of any frame size (FFV1 in Matroska): the astronaut's face on a grey frame."""
    face = np.asarray(small_face(min(width, height)))
    frame = np.full((height, width, 3), 90, np.uint8)
    x0 = (width - face.shape[1]) // 2
    frame[:face.shape[0], x0:x0 + face.shape[1]] = face
    data = np.stack([frame] * frames).tobytes()
    subprocess.run([ffmpeg_or_skip(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{width}x{height}", "-framerate", "25", "-i", "-", "-c:v", "ffv1", str(path)],
                   input=data, check=True)
    capture = cv2.VideoCapture(str(path))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (width, height)
    capture.release()
    return path


MPEG4_PART2 = {"mp4v", "fmp4"}  # how OpenCV's FFmpeg names the 'mp4v' codec when it reads it back


def props(path: Path) -> tuple[int, int, int, str]:
    """(frames decoded, width, height, codec fourcc) of a video file."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    size = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1").lower()
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames, size[0], size[1], fourcc


@pytest.mark.parametrize("width, height", [(321, 241), (853, 480)])
def test_odd_sized_video_gives_a_padded_drawing_and_all_the_points(tmp_path, capsys, width, height):
    clip = odd_clip(tmp_path / "odd.mkv", width, height)
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    code, _, err = run_cli(["video", clip, "--out", out, "--json", js, "--quiet", "--threads", "1"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in js.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2, 3]
    for record in records:
        (face,) = record["faces"]
        points = np.array(face["points"])
        assert points.shape == (88, 2)
        assert (points >= 0).all() and (points[:, 0] < width).all() and (points[:, 1] < height).all()
    assert props(out)[:3] == (4, width + width % 2, height + height % 2)
    assert "padded" in err and f"{width}×{height}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl", "o.mp4", "odd.mkv"]


def test_odd_sized_video_without_ffmpeg_is_padded_for_mp4v(tmp_path, monkeypatch, landmarker):
    import facemark.cli.video

    clip = odd_clip(tmp_path / "odd.mkv", 321, 241, frames=3)
    monkeypatch.setattr(facemark.cli.video, "find_ffmpeg", lambda: None)
    summary = facemark.cli.video.run_video(landmarker, clip, tmp_path / "o.mp4", progress=False)
    assert summary.codec == "mp4v" and (summary.width, summary.height) == (321, 241)
    assert props(tmp_path / "o.mp4")[:3] == (3, 322, 242) and props(tmp_path / "o.mp4")[3] in MPEG4_PART2
    assert any("padded" in n for n in summary.notices)
    assert any("mp4v" in n and "no audio" in n for n in summary.notices)


def test_drawn_video_is_h264_when_ffmpeg_has_it(tmp_path, landmarker):
    from facemark.cli.video import run_video

    clip = odd_clip(tmp_path / "even.mkv", 256, 192, frames=3)
    summary = run_video(landmarker, clip, tmp_path / "o.mp4", progress=False)
    assert summary.codec == "h264" and summary.notices == []
    assert props(tmp_path / "o.mp4") == (3, 256, 192, "h264")


def test_ffmpeg_without_libx264_falls_back_to_mp4v_and_says_so(tmp_path, monkeypatch, landmarker):
    import facemark.cli.video

    clip = odd_clip(tmp_path / "even.mkv", 256, 192, frames=2)
    monkeypatch.setattr(facemark.cli.video, "_has_libx264", lambda ffmpeg: False)
    summary = facemark.cli.video.run_video(landmarker, clip, tmp_path / "o.mp4", progress=False)
    assert summary.codec == "mp4v" and props(tmp_path / "o.mp4")[:3] == (2, 256, 192)
    assert props(tmp_path / "o.mp4")[3] in MPEG4_PART2
    assert len(summary.notices) == 1 and "no libx264" in summary.notices[0]


def test_a_failing_video_encoder_keeps_the_points(tmp_path, monkeypatch, capsys):
    import facemark.cli.video

    clip = odd_clip(tmp_path / "clip.mkv", 256, 192, frames=3)
    monkeypatch.setattr(facemark.cli.video, "H264_ARGS", ["-c:v", "no_such_encoder"])
    out_dir = tmp_path / "out"
    code, _, err = run_cli(["video", clip, "--out", out_dir / "o.mp4", "--json", out_dir / "o.jsonl", "--quiet",
                            "--threads", "1"], capsys)
    assert code == 1
    line = one_line_error(err, "video")
    assert "o.mp4" in line and "the points are in" in line
    records = [json.loads(line) for line in (out_dir / "o.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(len(r["faces"]) == 1 for r in records)
    assert os.listdir(out_dir) == ["o.jsonl"]  # no video, no temporary left


def test_a_frame_that_cannot_be_drawn_keeps_its_points_and_the_video(tmp_path, monkeypatch, landmarker):
    import facemark.cli.video

    clip = odd_clip(tmp_path / "clip.mkv", 256, 192, frames=3)
    real = facemark.cli.video.draw_faces
    calls = []

    def draw_faces(bgr, faces, scheme):
        calls.append(1)
        if len(calls) == 2:
            raise cv2.error("drawing failed")
        return real(bgr, faces, scheme)

    monkeypatch.setattr(facemark.cli.video, "draw_faces", draw_faces)
    summary = facemark.cli.video.run_video(landmarker, clip, tmp_path / "o.mp4", json_path=tmp_path / "o.jsonl",
                                       progress=False)
    assert props(tmp_path / "o.mp4")[0] == 3
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(len(r["faces"]) == 1 for r in records)
    assert [n for n in summary.notices if "frame 1" in n and "could not be drawn" in n]


# ------------------------------------------------------------------------------ same names in predict


@pytest.fixture
def albums(tmp_path, monkeypatch):
    """The issue's four inputs with two names: a/IMG_0001.jpg, b/IMG_0001.jpg, c/x.jpg, c/x.png."""
    monkeypatch.chdir(tmp_path)
    face = small_face()
    for name in ["albums/a/IMG_0001.jpg", "albums/b/IMG_0001.jpg", "albums/c/x.jpg", "albums/c/x.png"]:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        face.save(name)
    return Path("albums")


def drawings(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


MIRRORED = ["a/IMG_0001_landmarks.png", "b/IMG_0001_landmarks.png", "c/x.png_landmarks.png", "c/x_landmarks.png"]


@pytest.mark.parametrize("workers", [1, 2])
def test_same_named_inputs_never_overwrite_each_other(albums, capsys, workers):
    code, _, err = run_cli(["predict", albums, "--draw", "--out", "drawn", "--json", "p.jsonl", "--quiet",
                            "--threads", "1", "--workers", workers], capsys)
    assert code == 0, err
    assert drawings(Path("drawn")) == MIRRORED
    assert all(Image.open(Path("drawn") / name).size == (160, 160) for name in MIRRORED)
    assert len(Path("p.jsonl").read_text().splitlines()) == 4


def test_folders_given_one_by_one_are_mirrored_below_their_common_folder(albums, capsys):
    code, _, err = run_cli(["predict", albums / "a", albums / "b", albums / "c" / "x.jpg", "albums/c/*.png",
                            "--draw", "--out", "drawn", "--json", "p.jsonl", "--quiet", "--threads", "1"], capsys)
    assert code == 0, err
    assert drawings(Path("drawn")) == MIRRORED


def test_drawing_names_are_unique_whatever_the_case_and_the_order(tmp_path):
    from facemark.cli.predict import DrawingNames

    (tmp_path / "in").mkdir()
    names = DrawingNames(tmp_path / "d", [tmp_path / "in"])
    given = [names(tmp_path / "in" / n) for n in ["x.jpg", "x.png", "X.JPG", "x.jpg_landmarks.png", "x.gif"]]
    assert len({str(p).casefold() for p in given}) == 5
    assert [p.parent for p in given] == [tmp_path / "d"] * 5


def test_a_drawing_that_cannot_be_written_keeps_the_points(albums, capsys):
    Path("drawn/a/IMG_0001_landmarks.png").mkdir(parents=True)  # a folder where the drawing should go
    code, _, err = run_cli(["predict", albums, "--draw", "--out", "drawn", "--json", "p.jsonl", "--quiet",
                            "--threads", "1"], capsys)
    assert code == 1
    failures = [line for line in err.splitlines() if "cannot write the drawing" in line]
    assert len(failures) == 1 and "IMG_0001" in failures[0]
    records = [json.loads(line) for line in Path("p.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["error"] is None and len(r["faces"]) == 1 for r in records)


# --------------------------------------------------------------------------------- errors that mislead


def test_a_video_given_to_predict_says_it_is_a_video(tmp_path, capsys, no_model):
    mp4 = tmp_path / "holiday.mp4"
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 128, np.uint8))
    writer.release()
    code, _, err = run_cli(["predict", mp4, "--json", tmp_path / "o.jsonl", "--quiet"], capsys)
    assert code == 1
    (record,) = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert "video" in record["error"] and "facemark video" in record["error"] and "HEIC" not in record["error"]
    assert "facemark video" in err


def test_an_image_given_to_video_says_it_is_an_image(tmp_path, capsys, no_model):
    image = tmp_path / "face.png"
    small_face(64).save(image)
    code, _, err = run_cli(["video", image, "--out", tmp_path / "o.mp4", "--quiet"], capsys)
    assert code == 1
    line = one_line_error(err, "video")
    assert "is an image" in line and "facemark predict" in line
    assert not (tmp_path / "o.mp4").exists()


def test_export_into_a_folder_is_a_clear_usage_error(tmp_path, capsys, no_model):
    folder = tmp_path / "models"
    folder.mkdir()
    for target in [f"{folder}/", str(folder)]:
        code, _, err = run_cli(["export", "--onnx", target], capsys)
        assert code == 2
        line = one_line_error(err, "export")
        assert "is a folder" in line and "Errno" not in line and ".tmp" not in line
    assert os.listdir(folder) == []


def test_export_onnx_names_the_file_not_its_temporary(tmp_path):
    pytest.importorskip("onnx")
    from facemark.train.export import export_onnx
    from facemark.train.weights import load_weights

    network = load_weights("face88")
    (tmp_path / "models").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        export_onnx(network, tmp_path / "models")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError) as info:
        export_onnx(network, tmp_path / "afile" / "face88.onnx")
    assert str(info.value).startswith(f"cannot write {tmp_path / 'afile' / 'face88.onnx'}: ")
    assert ".tmp" not in str(info.value)


def test_train_on_a_missing_folder_says_it_does_not_exist(tmp_path, capsys, no_model):
    code, _, err = run_cli(["train", "--data", tmp_path / "nosuch", "--out", tmp_path / "run"], capsys)
    assert code == 2
    line = one_line_error(err, "train")
    assert "no such folder" in line and "meta.json" not in line
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(["train", "--data", tmp_path / "file", "--out", tmp_path / "run"], capsys)
    assert code == 2 and "is a file" in one_line_error(err, "train")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["train", "--data", tmp_path / "empty", "--out", tmp_path / "run"], capsys)
    assert code == 1 and "not a facemark cache" in one_line_error(err, "train")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [
    ["predict", ASTRONAUT, "--model", "face89"],
    ["video", "clip.mp4", "--model", "face89"],
    ["eval", "--model", "face89", "--data", "."],
    ["export", "--onnx", "x.onnx", "--model", "face89"],
    ["predict", ASTRONAUT, "--model", "."],  # a folder
])
def test_an_unknown_model_is_a_usage_error(argv, capsys, no_model):
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    line = one_line_error(err, argv[0])
    assert "face88, ibug68" in line or "is a folder" in line


def test_unknown_init_model_is_a_usage_error(tiny_cache, tmp_path, capsys, no_model):
    code, _, err = run_cli(["train", "--data", tiny_cache, "--out", tmp_path / "run", "--init", "face89"], capsys)
    assert code == 2 and "--init face89" in one_line_error(err, "train")


def test_the_builtin_model_names_the_cli_checks_are_the_library_s():
    from facemark.network import BUILTIN_MODELS

    assert cli._builtin_models() == sorted(BUILTIN_MODELS)


def test_predict_outputs_that_cannot_be_used_are_usage_errors(tmp_path, capsys, no_model):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(["predict", ASTRONAUT, "--draw", "--out", tmp_path / "afile"], capsys)
    assert code == 2 and "need a folder" in one_line_error(err, "predict")
    code, _, err = run_cli(["predict", ASTRONAUT, "--json", tmp_path], capsys)
    assert code == 2 and "is a folder" in one_line_error(err, "predict")


def test_bad_inputs_are_refused_before_the_model_loads(tmp_path, capsys, no_model):
    (tmp_path / "broken.jpg").write_text("not an image")
    assert run_cli(["predict", tmp_path / "nosuch.jpg"], capsys)[0] == 1
    assert run_cli(["predict", tmp_path / "empty_glob_*.jpg"], capsys)[0] == 1
    code, out, err = run_cli(["predict", tmp_path / "broken.jpg", "--quiet"], capsys)  # nothing readable
    assert code == 1 and json.loads(out)["error"] and "broken.jpg" in err
    assert run_cli(["video", tmp_path / "nosuch.mp4"], capsys)[0] == 1
    assert run_cli(["video", tmp_path / "broken.jpg", "--out", tmp_path / "o.avi"], capsys)[0] == 1
    assert run_cli(["eval", "--data", tmp_path / "nosuch"], capsys)[0] == 2


def test_json_on_stdout_appends_where_the_shell_appends(tmp_path):
    (tmp_path / "broken.jpg").write_text("not an image")
    log = tmp_path / "all.jsonl"
    log.write_text('{"earlier": true}\n')
    with log.open("a") as stdout:
        subprocess.run([sys.executable, "-m", "facemark", "predict", str(tmp_path / "broken.jpg"), "--quiet"],
                       stdout=stdout, stderr=subprocess.DEVNULL, cwd=tmp_path, timeout=120)
    lines = log.read_text().splitlines()
    assert json.loads(lines[0]) == {"earlier": True} and "broken.jpg" in json.loads(lines[1])["image"]


# ----------------------------------------------------------------------------------- things to guess


def test_version(capsys):
    from facemark import __version__

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"facemark {__version__}"


@pytest.mark.parametrize("verb", ["clean", "convert", "cache", "train", "eval", "predict", "export", "video"])
def test_every_option_has_help_and_shows_its_default(verb):
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "verb"]
    verb_parser = sub.choices[verb]
    formatter = verb_parser._get_formatter()
    for action in verb_parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"{verb} {action.option_strings[0]} has no help text"
        if action.default is not None and action.default is not False:
            assert "default" in formatter._get_help_string(action), f"{verb} {action.option_strings[0]}"
    text = verb_parser.format_help()
    if verb == "train":
        for shown in ["(default: mobilenet)", "(default: 60)", "(default: 64)", "(default: wing)", "(default: 0)"]:
            assert shown in " ".join(text.split()), shown
    if verb in ("predict", "video"):
        assert "(default: blazeface)" in " ".join(text.split())


def test_eval_writes_beside_the_weights_and_says_where(tiny_cache, tmp_path, monkeypatch, capsys):
    from facemark.network import BUILTIN_DIR

    run = tmp_path / "runs" / "face88"
    run.mkdir(parents=True)
    shutil.copyfile(BUILTIN_DIR / "face88.pt", run / "best.pt")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["eval", "--model", run / "best.pt", "--data", tiny_cache, "--quiet"], capsys)
    assert code == 0, err
    written = run / "best_eval"
    assert sorted(p.name for p in written.iterdir()) == ["ced.png", "metrics.json", "worst.png"]
    assert str(written) in out
    assert not (tmp_path / "eval").exists()
    code, out, err = run_cli(["eval", "--model", run / "best.pt", "--data", tiny_cache, "--quiet", "--json",
                              "--out", tmp_path / "here"], capsys)
    assert code == 0 and "nme" in json.loads(out)  # stdout is the JSON alone
    assert str(tmp_path / "here") in err and (tmp_path / "here" / "metrics.json").is_file()


def test_face_has_a_short_repr(landmarker):
    (face,) = landmarker.detect(ASTRONAUT)
    text = repr(face)
    assert "\n" not in text and len(text) < 100
    assert re.fullmatch(r"Face\(box=\([\d., ]+\), score=[01]\.\d{3}, 88 face88 points\)", text), text


@pytest.mark.parametrize("model", ["face88", "ibug68"])
def test_left_eye_is_on_the_image_s_left_as_the_docs_say(model):
    from facemark.landmarker import Face, Landmarker

    (face,) = Landmarker(model, threads=1).detect(ASTRONAUT)
    assert face.region("left_eye")[:, 0].mean() < face.region("right_eye")[:, 0].mean()
    assert "image's left" in Face.__doc__ and "subject's right" in Face.__doc__
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "the eye on the image's left (the subject's right)" in readme


def test_readme_says_how_to_get_facemark_on_path():
    readme = (REPO / "README.md").read_text()
    assert "source .venv/bin/activate" in readme and "pip install ." in readme


def test_training_curves_have_plain_tick_labels(tmp_path, monkeypatch):
    import matplotlib.figure

    from facemark.train.training import LOG_FIELDS, _write_curves

    log = tmp_path / "log.csv"
    rows = [[e, 1e-3, 40 / e, 38 / e + 1, 0.0335 - 0.0002 * e, 1.2, 10] for e in range(1, 6)]
    log.write_text(",".join(LOG_FIELDS) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    figures = []
    real_savefig = matplotlib.figure.Figure.savefig

    def savefig(self, *args, **kwargs):
        figures.append(self)
        return real_savefig(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    _write_curves(log, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").is_file() and len(figures) == 1
    labels = [t.get_text() for ax in figures[0].axes for minor in (False, True)
              for t in ax.get_yticklabels(minor=minor) if t.get_text()]
    nme_labels = [t.get_text() for t in figures[0].axes[1].get_yticklabels(minor=True) if t.get_text()]
    assert labels and nme_labels  # the NME axis (3.2-3.4 %) is labelled within its decade
    for label in labels:
        assert re.fullmatch(r"\d+(\.\d+)?", label), labels  # 33 or 3.3, never 3.3×10¹ (mathtext)


# ------------------------------------------------------------------------------------- the ONNX contract


def onnx_example() -> str:
    text = (REPO / "docs" / "onnx.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_onnx_example_uses_onnxruntime_and_numpy_only():
    imported = set()
    for node in ast.walk(ast.parse(onnx_example())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"numpy", "onnxruntime"}
    assert len(onnx_example().strip().splitlines()) <= 45


def test_the_onnx_example_reproduces_landmarker(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from facemark.landmarker import Landmarker
    from facemark.train.export import export_onnx
    from facemark.images import load_image
    from facemark.pipeline.crops import crop_image, square_crop_transform
    from facemark.train.weights import load_weights

    export_onnx(load_weights("face88"), tmp_path / "face88.onnx")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(onnx_example(), "docs/onnx.md", "exec"), namespace)
    landmarker = Landmarker(str(tmp_path / "face88.onnx"), backend="onnx", threads=1)
    assert namespace["S"] == landmarker.network.config.input_size == 128
    rgb = load_image(ASTRONAUT)
    faces = landmarker.detect(rgb)
    assert len(faces) == 1
    margin = landmarker.network.config.margin
    for image in (rgb, np.ascontiguousarray(rgb[:, 170:])):  # the second: a face cut by the image's edge
        (face,) = landmarker.detect(image)
        # one pass on a given box is exactly the network on facemark's own crop of that box
        box = face.box
        t = square_crop_transform(box, 128, margin)
        ours = t.to_image(landmarker.predict_crops(crop_image(image, t)[None])[0])
        assert np.abs(namespace["run"](image, box) - ours).max() < 0.1
        # the two upright passes land near Landmarker's points, which also turns the last crop level by the
        # roll of the eyes (docs/onnx.md says so): within a pixel on this near-upright face
        points = namespace["landmarks"](image, landmarker.detector.landmark_box(face.box))
        assert points.shape == (88, 2)
        assert np.abs(points - face.points).max() < 2.0
        assert np.abs(points - face.points).mean() < 0.5


def test_a_folder_named_facemark_in_the_working_directory_does_not_shadow_the_package(tmp_path):
    """The src/ layout: running Python beside a clone named `facemark` (a folder without __init__.py, as the
    repository root is) still imports the installed package, not the folder."""
    clone = tmp_path / "facemark"
    clone.mkdir()
    (clone / "README.md").write_text("a checkout\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", "import facemark; from facemark import Landmarker; "
                           "print(facemark.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(str(Path("facemark", "__init__.py")))
    assert not proc.stdout.strip().startswith(str(clone))
