"""Aligned face chips (facemark.geometry.chips, Face.chip, `facemark chips`): the five points land on the template within
0.5 px in the cut pixels themselves, the transform maps both ways, and bad arguments give one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from facemark.geometry.chips import (ARCFACE_112, ChipError, aligned_chip, five_points, similarity_2d, template_points)
from facemark.cli import main
from facemark.layouts import FACE88

from blobs import blob_centre, blob_image, face88_with_five  # benchmarks/blobs.py, shared with benchmarks/chips.py


@pytest.mark.parametrize("template,size", [("arcface", 112), ("arcface", 224), ("square", 112), ("square", 150)])
@pytest.mark.parametrize("angle,scale,shift", [(0.0, 1.0, (100, 60)), (17.0, 1.7, (140.3, 80.6)),
                                               (-35.0, 2.4, (90.2, 20.9))])
def test_template_points_land_within_half_a_pixel(template, size, angle, scale, shift):
    target = template_points(template, size)
    # a face whose five points are an exact similarity image of the template, drawn as blobs in an image
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    five = (target * (112 / size)) @ (scale * rot).T + shift
    image = blob_image(five)
    chip = aligned_chip(image, face88_with_five(five), FACE88, size=size, template=template)
    assert chip.image.shape == (size, size, 3)
    assert chip.residual < 1e-6
    found = np.array([blob_centre(chip.image, t, radius=max(4, size // 20)) for t in target])
    assert np.abs(found - target).max() < 0.5  # in the chip's own pixels: the warp's convention is right
    # the transform maps points both ways
    assert np.allclose(chip.to_chip(five), target, atol=1e-6)
    assert np.allclose(chip.to_image(chip.to_chip(five)), five, atol=1e-9)


def test_arcface_template_is_insightface_at_112():
    assert np.allclose(template_points("arcface", 112), ARCFACE_112)
    square = template_points("square", 112, margin=0.25)
    centre = 55.5
    assert np.allclose(square - centre, (ARCFACE_112 - centre) / 1.25)


def test_similarity_has_no_shear_and_fits_least_squares():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    dst = src * [1.0, 1.3] + rng.normal(0, 2, (5, 2))  # not a similarity
    m = similarity_2d(src, dst)
    a = m[:, :2]
    assert a[0, 0] == pytest.approx(a[1, 1]) and a[0, 1] == pytest.approx(-a[1, 0])  # rotation × scale
    best = np.linalg.norm(src @ a.T + m[:, 2] - dst)
    for _ in range(50):  # no nearby similarity fits better
        d = rng.normal(0, 1e-3, 4)
        a2 = np.array([[a[0, 0] + d[0], a[0, 1] + d[1]], [-(a[0, 1] + d[1]), a[0, 0] + d[0]]])
        assert np.linalg.norm(src @ a2.T + m[:, 2] + d[2:] - dst) >= best - 1e-9


def test_real_face_chip(landmarker, astronaut):
    face = landmarker.detect(astronaut)[0]
    chip = face.chip()
    assert chip.image.shape == (112, 112, 3) and chip.image.dtype == np.uint8
    five = five_points(face.points, face.scheme)
    assert np.linalg.norm(chip.to_chip(five) - chip.template, axis=1).max() < 8  # a real face fits it well
    assert chip.to_chip(five)[0, 0] < chip.to_chip(five)[1, 0]  # image-left eye stays on the left
    # the eyes are darker than the skin between them in the chip: the face really is where the template says
    grey = chip.image.mean(axis=2)
    eyes = np.mean([grey[int(round(y)), int(round(x))] for x, y in chip.template[:2]])
    assert eyes < grey[52, 56]
    big = face.chip(size=224, template="square")
    assert big.image.shape == (224, 224, 3)
    assert np.allclose(face.chip(astronaut).matrix, chip.matrix)


def test_bad_arguments():
    five = template_points()
    points = face88_with_five(five)
    image = np.zeros((120, 120, 3), np.uint8)
    with pytest.raises(ChipError, match="unknown chip template"):
        aligned_chip(image, points, FACE88, template="ffhq")
    with pytest.raises(ChipError, match="chip size"):
        aligned_chip(image, points, FACE88, size=4)
    with pytest.raises(ChipError, match="H×W×3 uint8"):
        aligned_chip(image[..., 0], points, FACE88)
    with pytest.raises(ChipError, match="coincide"):
        aligned_chip(image, np.zeros((88, 2)), FACE88)
    with pytest.raises(ChipError, match="expected \\(88, 2\\)"):
        aligned_chip(image, points[:5], FACE88)


def test_chips_command(tmp_path, capsys):
    from locations import ASTRONAUT

    out = tmp_path / "chips"
    assert main(["chips", str(ASTRONAUT), "--out", str(out), "--quiet", "--threads", "1"]) == 0
    records = [json.loads(line) for line in (out / "chips.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["error"] is None and len(records[0]["faces"]) == 1
    face = records[0]["faces"][0]
    from PIL import Image

    chip = np.asarray(Image.open(out / face["chip"]))
    assert chip.shape == (112, 112, 3)
    assert np.array(face["matrix"]).shape == (2, 3) and 0 <= face["trust"] <= 1
    # --min-trust above every face's trust: no chip, counted
    assert main(["chips", str(ASTRONAUT), "--out", str(tmp_path / "none"), "--quiet", "--min-trust", "1"]) == 0
    assert not list((tmp_path / "none").glob("*.png"))
    assert "under --min-trust" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--size", "4"], "--size must be from 8 to 4096"),
    (["--min-trust", "1.5"], "--min-trust must be a number from 0 to 1"),
    (["--margin", "-1"], "--margin must be from 0 to 10"),
])
def test_chips_command_usage_errors(tmp_path, capsys, args, message):
    from locations import ASTRONAUT

    assert main(["chips", str(ASTRONAUT), "--out", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_chips_command_missing_input(tmp_path, capsys):
    assert main(["chips", str(tmp_path / "nope.png"), "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip()
    assert "no such file or folder" in err and len(err.splitlines()) == 1
