"""Reliability, round 5: a JPEG cut short can be read on request; `video` leaves out faces under `--min-trust`.

1. a JPEG file whose last bytes are missing is refused (one line; the batch goes on), unless `--allow-truncated`
   (`LandmarkerOptions.allow_truncated`, `ImageReader(allow_truncated=True)`) asks to read it as far as its data
   goes: the rest is grey, the record says `"truncated": true`, a notice says so, and nothing global changes;
2. `facemark video --min-trust T` means what it means for `predict`: no face under T in the JSON or the drawing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from facemark.images import ImageError, ImageReader, load_image
from locations import ASTRONAUT
from cli_runs import read_jsonl, run_cli


# ------------------------------------------------------------ 1. a JPEG cut short, read on request


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> dict[str, Path]:
    """The sample image as an intact baseline JPEG ("intact"), the same file without its last 1% of bytes
    ("cut"), a progressive JPEG cut after half its bytes ("progressive_cut"), and the sample PNG ("png")."""
    folder = tmp_path_factory.mktemp("jpegs")
    rgb = Image.open(ASTRONAUT).convert("RGB")
    rgb.save(folder / "intact.jpg", quality=90)
    data = (folder / "intact.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) - len(data) // 100])
    rgb.save(folder / "progressive.jpg", quality=90, progressive=True)
    data = (folder / "progressive.jpg").read_bytes()
    (folder / "progressive_cut.jpg").write_bytes(data[: len(data) // 2])
    shutil.copy(ASTRONAUT, folder / "sample.png")
    return {"intact": folder / "intact.jpg", "cut": folder / "cut.jpg",
            "progressive_cut": folder / "progressive_cut.jpg", "png": folder / "sample.png"}


def test_a_cut_jpeg_is_refused_by_default_in_one_line_and_the_batch_goes_on(jpegs, tmp_path, capsys):
    out = tmp_path / "points.jsonl"
    code, _, err = run_cli(["predict", jpegs["intact"], jpegs["cut"], jpegs["png"], "--json", out, "--quiet"],
                           capsys)
    assert code == 1
    records = {Path(r["image"]).name: r for r in read_jsonl(out)}
    assert records["cut.jpg"]["error"].startswith(f"cannot read image '{jpegs['cut']}': truncated or corrupt image "
                                                  "data")
    assert records["cut.jpg"]["error"].endswith("read as far as its data goes with --allow-truncated "
                                                "(allow_truncated=True)")  # the error says how to read it anyway
    assert records["cut.jpg"]["faces"] == [] and "truncated" not in records["cut.jpg"]
    assert len(records["intact.jpg"]["faces"]) == 1 and len(records["sample.png"]["faces"]) == 1
    problems = [line for line in err.splitlines() if "cut.jpg" in line]
    assert problems == [f"facemark predict: {records['cut.jpg']['error']}"]
    assert "Traceback" not in err


def _points(record: dict) -> np.ndarray:
    assert len(record["faces"]) == 1, record
    return np.array(record["faces"][0]["points"])


def test_allow_truncated_reads_a_cut_jpeg_as_far_as_it_goes_and_says_so(jpegs, tmp_path, capsys):
    out = tmp_path / "points.jsonl"
    code, _, err = run_cli(["predict", jpegs["intact"], jpegs["cut"], jpegs["png"], "--json", out, "--quiet",
                            "--allow-truncated"], capsys)
    assert code == 0, err
    records = {Path(r["image"]).name: r for r in read_jsonl(out)}
    cut, intact = records["cut.jpg"], records["intact.jpg"]
    assert cut["error"] is None and cut["truncated"] is True
    assert (cut["width"], cut["height"]) == (512, 512)
    assert "truncated" not in intact and "truncated" not in records["sample.png"]  # whole files: as before
    error = np.linalg.norm(_points(cut) - _points(intact), axis=1).mean()
    assert error < 2.0, error
    notices = [line for line in err.splitlines() if "cut.jpg" in line]
    assert notices == [f"facemark predict: {jpegs['cut']}: a truncated JPEG (the file ends before the image does), "
                       "read as far as its data goes; the rest of the picture is grey"]
    assert err.splitlines()[-1].startswith("3 images, 3 faces, 0 failed")


def test_chips_refuse_a_cut_jpeg_by_default_and_read_it_on_request(jpegs, tmp_path, capsys):
    code, _, err = run_cli(["chips", jpegs["cut"], jpegs["png"], "--out", tmp_path / "refused", "--quiet"], capsys)
    assert code == 1
    records = {Path(r["image"]).name: r for r in read_jsonl(tmp_path / "refused" / "chips.jsonl")}
    assert "truncated or corrupt image data" in records["cut.jpg"]["error"]
    assert len(records["sample.png"]["faces"]) == 1
    assert f"facemark chips: {jpegs['cut']}: cannot read image" in err

    code, _, err = run_cli(["chips", jpegs["cut"], jpegs["png"], "--out", tmp_path / "read", "--quiet",
                            "--allow-truncated"], capsys)
    assert code == 0, err
    records = {Path(r["image"]).name: r for r in read_jsonl(tmp_path / "read" / "chips.jsonl")}
    assert records["cut.jpg"]["error"] is None and records["cut.jpg"]["truncated"] is True
    assert "truncated" not in records["sample.png"]
    assert (tmp_path / "read" / records["cut.jpg"]["faces"][0]["chip"]).is_file()
    assert f"facemark chips: {jpegs['cut']}: a truncated JPEG" in err


@pytest.mark.parametrize("verb", ["predict", "chips"])
def test_help_names_allow_truncated(verb, capsys):
    code, out, _ = run_cli([verb, "--help"], capsys)
    assert code == 0 and "--allow-truncated" in out


def test_the_reader_fills_what_is_missing_with_grey_and_keeps_what_is_there(jpegs):
    with pytest.raises(ImageError, match="truncated or corrupt image data"):
        ImageReader(jpegs["cut"]).array()
    reader = ImageReader(jpegs["cut"], allow_truncated=True)
    assert reader.truncated is False  # not known before the pixels are decoded
    cut = reader.array()
    assert reader.truncated is True
    intact = load_image(jpegs["intact"])
    assert cut.shape == intact.shape
    rows = np.abs(cut.astype(int) - intact).max(axis=(1, 2))
    lost = np.flatnonzero(rows > 0)
    assert 0 < len(lost) <= 32 and lost[-1] == 511  # the last rows of 8×8 blocks, no more
    assert np.array_equal(cut[: lost[0]], intact[: lost[0]])
    assert (cut[-8:, -64:] == 128).all()  # the part after the cut is grey
    # a reduced decode (libjpeg's draft, the huge-image path) reads it too, and a second reader as well
    small, scale = ImageReader(jpegs["cut"], allow_truncated=True).downscaled(128)
    assert small.shape == (128, 128, 3) and scale == 4.0
    assert np.abs(small[:100].astype(int) - load_image(jpegs["intact"], max_side=128)[:100]).mean() < 2
    part = ImageReader(jpegs["cut"], allow_truncated=True).region((0, 0, 64, 64), 2)
    assert part.shape == (64, 64, 3)


def test_a_cut_progressive_jpeg_is_the_whole_picture_at_the_detail_its_data_reaches(jpegs):
    reader = ImageReader(jpegs["progressive_cut"], allow_truncated=True)
    rgb = reader.array()
    assert reader.truncated
    assert np.abs(rgb.astype(int) - load_image(jpegs["intact"])).mean() < 10


def test_allow_truncated_changes_nothing_for_other_readers(jpegs):
    ImageReader(jpegs["cut"], allow_truncated=True).array()
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with Image.open(jpegs["cut"]) as img, pytest.raises(OSError, match="truncated"):
        img.load()  # Pillow itself still refuses the file
    reader = ImageReader(jpegs["intact"], allow_truncated=True)
    assert np.array_equal(reader.array(), load_image(jpegs["intact"])) and reader.truncated is False


def test_what_is_not_a_cut_jpeg_with_pixels_is_still_an_error(jpegs, tmp_path):
    data = jpegs["intact"].read_bytes()
    png = tmp_path / "cut.png"
    png.write_bytes(jpegs["png"].read_bytes()[:-2000])
    text = tmp_path / "page.jpg"
    text.write_text("<html>not found</html>")
    sos = data.index(b"\xff\xda")
    header_only = tmp_path / "header_only.jpg"  # ends right after the first scan's header: no pixel data
    header_only.write_bytes(data[: sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")])
    for path, reason in [(png, "truncated or corrupt image data (file ends inside the 'IDAT' chunk)"),
                         (text, "not an image file (looks like text"),
                         (header_only, "truncated or corrupt image data (the file ends before its first pixel data)")]:
        with pytest.raises(ImageError) as err:
            ImageReader(path, allow_truncated=True).array()
        assert str(err.value).startswith(f"cannot read image {str(path)!r}: {reason}")
        assert "\n" not in str(err.value) and "--allow-truncated" not in str(err.value)  # the flag cannot help them


def test_the_landmarker_option_reads_a_cut_jpeg_given_by_its_path(landmarker, jpegs):
    from facemark.landmarker import Landmarker
    from facemark.options import LandmarkerOptions

    with pytest.raises(ImageError, match="truncated"):
        landmarker.detect(jpegs["cut"])
    options = LandmarkerOptions(allow_truncated=1)
    assert options.allow_truncated is True and LandmarkerOptions().allow_truncated is False
    faces = Landmarker.from_options(options.replace(threads=1)).detect(jpegs["cut"])
    intact = landmarker.detect(jpegs["intact"])
    assert len(faces) == 1
    assert np.linalg.norm(faces[0].points - intact[0].points, axis=1).mean() < 2.0


# ------------------------------------------------------------ 2. video --min-trust


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut) -> Path:
    """8 frames of the sample face, 256×256, with fresh noise in each so that trust varies a little."""
    import cv2

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    face = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA).astype(np.float64)
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
    for _ in range(8):
        frame = np.clip(face + rng.normal(0, 12, face.shape), 0, 255).astype(np.uint8)
        writer.write(frame[..., ::-1])
    writer.release()
    return path


def _frames(path: Path) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame.astype(np.int16))
    capture.release()
    return frames


def _video(clip: Path, tmp_path: Path, name: str, capsys, *more) -> tuple[list[dict], list[np.ndarray]]:
    code, _, err = run_cli(["video", clip, "--out", tmp_path / f"{name}.mp4", "--json", tmp_path / f"{name}.jsonl",
                            "--quiet", *more], capsys)
    assert code == 0, err
    return ([f for r in read_jsonl(tmp_path / f"{name}.jsonl") for f in r["faces"]],
            _frames(tmp_path / f"{name}.mp4"))


def test_video_min_trust_leaves_faces_under_it_out_of_the_json_and_the_drawing(clip, tmp_path, capsys):
    faces, drawn = _video(clip, tmp_path, "default", capsys)
    trusts = sorted(f["trust"] for f in faces)
    assert len(faces) == 8 and trusts[0] >= 0.15, trusts

    strict, strict_drawn = _video(clip, tmp_path, "strict", capsys, "--min-trust", "0.99")
    assert len(strict) < len(faces) and all(f["trust"] >= 0.99 for f in strict), [f["trust"] for f in strict]
    # the drawn video shows no points where the JSON has no face: its frames are the input's (but for the
    # codec's noise), while the default's have the points drawn on them
    source = _frames(clip)
    assert len(strict_drawn) == len(drawn) == len(source) == 8
    differences = [np.abs(d - s).max(axis=2) for d, s in zip(drawn, source)]
    assert all((d > 60).sum() > 200 for d in differences)  # the points drawn
    if not strict:
        assert all((np.abs(d - s).max(axis=2) > 60).sum() < 20 for d, s in zip(strict_drawn, source))

    # just above the least trusted face of the default run: that one goes, faces above it can stay
    floor = round(trusts[0] + 0.01, 4)
    kept, _ = _video(clip, tmp_path, "floor", capsys, "--min-trust", floor)
    assert 0 < len(kept) < len(faces) and all(f["trust"] >= floor for f in kept), ([f["trust"] for f in kept], floor)


def test_video_min_trust_is_checked_as_predicts_is(clip, tmp_path, capsys):
    code, _, video_err = run_cli(["video", clip, "--json", tmp_path / "x.jsonl", "--min-trust", "1.5"], capsys)
    assert code == 2
    code, _, predict_err = run_cli(["predict", ASTRONAUT, "--min-trust", "1.5"], capsys)
    assert code == 2
    assert video_err == "facemark video: error: --min-trust must be a number from 0 to 1, got 1.5\n"
    assert predict_err == video_err.replace("video", "predict")
    assert not (tmp_path / "x.jsonl").exists()


def test_video_help_names_min_trust(capsys):
    code, out, _ = run_cli(["video", "--help"], capsys)
    assert code == 0 and "--min-trust T" in out
