"""Training cache: crops and points agree with the crop transform, splits never share an identity."""

import json

import numpy as np
import pytest
from PIL import Image

from facemark.labels.annotations import LabelRecord
from facemark.labels.cache import (CONTEXT, build_cache, context_transform, identity_of, is_validation_identity,
                              open_cache)
from facemark.pipeline.crops import (DEFAULT_MARGIN, DEFAULT_SIZE, box_from_points, crop_image,
                                    square_crop_transform)
from facemark.layouts import FACE88

# 4 identities × 2 pictures; with val_fraction 0.5 identity "1" is held out and "2"-"4" are not
# (checked below, so that the split test cannot pass on an empty split)
NAMES = ["1_a.png", "1_b.png", "2_a.png", "2_b.png", "3_a.png", "3_b.png", "4_a.png", "4_b.png"]
SHIFTS = [(0, 0), (-40, 25), (55, -30), (-70, -50), (30, 60), (80, 10), (-20, 90), (100, -60)]
VAL_FRACTION = 0.5


def _shifted(rgb, dx, dy):
    """The image content moved by (dx, dy) pixels on a black canvas of the same size."""
    h, w = rgb.shape[:2]
    out = np.zeros_like(rgb)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        rgb[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


@pytest.fixture(scope="module")
def faces(astronaut_labels, tmp_path_factory):
    """(folder, labels file, {name: (image, points)}) for the 8 generated pictures."""
    rgb, points = astronaut_labels
    folder = tmp_path_factory.mktemp("cache_images")
    truth = {}
    lines = []
    for name, (dx, dy) in zip(NAMES, SHIFTS):
        image = _shifted(rgb, dx, dy)
        p = np.asarray(points) + [dx, dy]
        Image.fromarray(image).save(folder / name)
        truth[name] = (image, p)
        lines.append(LabelRecord(image=name, points=p, source="test", width=512, height=512).to_json())
    lines.append(LabelRecord(image="0_noface.png", error="no face found by the teacher").to_json())
    labels = folder / "labels.jsonl"
    labels.write_text("\n".join(lines) + "\n")
    # the points as the file holds them (rounded to 1e-3): what the cache must reproduce
    truth = {name: (image, np.round(p, 3)) for name, (image, p) in truth.items()}
    return folder, labels, truth


@pytest.fixture(scope="module")
def cache(faces, tmp_path_factory):
    folder, labels, _ = faces
    out = tmp_path_factory.mktemp("cache") / "c"
    meta = build_cache(labels, folder, out, val_fraction=VAL_FRACTION, progress=False)
    return out, meta


def test_cache_files_shapes_and_dtypes(cache):
    out, meta = cache
    assert sorted(p.name for p in out.iterdir()) == ["crops.npy", "meta.json", "points.npy", "val.npy"]
    context = round(DEFAULT_SIZE * CONTEXT)
    crops, points, val = (np.load(out / f) for f in ("crops.npy", "points.npy", "val.npy"))
    assert crops.shape == (8, context, context, 3) and crops.dtype == np.uint8
    assert points.shape == (8, FACE88.num_points, 2) and points.dtype == np.float32
    assert val.shape == (8,) and val.dtype == np.bool_
    assert meta == json.loads((out / "meta.json").read_text())
    assert meta["count"] == 8 and meta["images"] == NAMES  # the record without points is left out
    assert meta["train_count"] + meta["val_count"] == 8 and meta["val_count"] == int(val.sum())
    assert meta["size"] == DEFAULT_SIZE and meta["margin"] == DEFAULT_MARGIN and meta["skipped"] == []


def test_open_cache_reads_it_back(cache, faces):
    out, meta = cache
    _, _, truth = faces
    c = open_cache(out)
    assert isinstance(c.crops, np.memmap)
    assert c.names == NAMES and c.scheme == FACE88
    assert (c.size, c.margin, c.context_size) == (DEFAULT_SIZE, DEFAULT_MARGIN, round(DEFAULT_SIZE * CONTEXT))
    np.testing.assert_array_equal(c.crops, np.load(out / "crops.npy"))
    # stored points are context-crop coordinates of the labels
    for k, name in enumerate(NAMES):
        _, p = truth[name]
        expected = context_transform(box_from_points(p), DEFAULT_SIZE, DEFAULT_MARGIN).to_crop(p)
        np.testing.assert_allclose(c.points[k], expected, atol=1e-3)
    assert len(c.indices("all")) == 8
    with pytest.raises(ValueError, match="unknown split"):
        c.indices("test")


def test_splits_never_share_an_identity(cache):
    out, meta = cache
    c = open_cache(out)
    train, val = c.indices("train"), c.indices("val")
    assert len(train) > 0 and len(val) > 0, "test setup: both splits must be non-empty"
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(8))
    train_ids = {identity_of(c.names[i]) for i in train}
    val_ids = {identity_of(c.names[i]) for i in val}
    assert not train_ids & val_ids
    assert meta["val_identities"] == len(val_ids)
    for name, held_out in zip(c.names, c.val):
        assert held_out == is_validation_identity(identity_of(name), VAL_FRACTION)


def test_split_is_stable_across_builds(faces, cache, tmp_path):
    folder, labels, _ = faces
    build_cache(labels, folder, tmp_path / "again", val_fraction=VAL_FRACTION, progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "again" / "val.npy"), np.load(cache[0] / "val.npy"))


@pytest.mark.parametrize("name, identity", [
    ("1_a.png", "1"), ("sub/10006_187272.jpg", "10006"), ("einstein.jpg", "einstein"), ("a_b_c.png", "a"),
    ("utk/26_1_3_20170119180056735.jpg.chip.jpg", "26_1_3_20170119180056735.jpg"),
])
def test_identity_of(name, identity):
    assert identity_of(name) == identity


def test_network_view_points_follow_the_crop_transform(cache, faces):
    _, _, truth = faces
    c = open_cache(cache[0])
    for k, name in enumerate(c.names):
        crop, points = c.network_view(k)
        assert crop.shape == (DEFAULT_SIZE, DEFAULT_SIZE, 3) and crop.dtype == np.uint8
        _, p = truth[name]
        net = square_crop_transform(box_from_points(p), DEFAULT_SIZE, DEFAULT_MARGIN)
        np.testing.assert_allclose(points, net.to_crop(p), atol=1e-3)
        # and back to the image
        np.testing.assert_allclose(net.to_image(points), p, atol=1e-2)
        # the margin leaves every point inside the network crop
        assert points.min() > 0 and points.max() < DEFAULT_SIZE - 1


def test_network_view_pixels_are_the_face_crop(cache, faces):
    _, _, truth = faces
    c = open_cache(cache[0])
    crops, _ = c.network_view(np.arange(len(c.names)))  # batch form
    assert crops.shape == (8, DEFAULT_SIZE, DEFAULT_SIZE, 3)
    for k, name in enumerate(c.names):
        image, p = truth[name]
        direct = crop_image(image, square_crop_transform(box_from_points(p), DEFAULT_SIZE, DEFAULT_MARGIN))
        diff = np.abs(crops[k].astype(np.int16) - direct.astype(np.int16))
        # both resample the same square at the same scale; a quarter-pixel misalignment already costs ~2
        assert diff.mean() < 1, f"{name}: mean difference {diff.mean():.2f}"
        # not trivially equal because both are black: the crop shows the face
        assert crops[k].std() > 20
    # the same face, moved in the image, gives (almost) the same crop
    diff = np.abs(crops[0].astype(np.int16) - crops[3].astype(np.int16))
    assert diff.mean() < 3


def test_unreadable_images_are_skipped(faces, tmp_path):
    folder, labels, truth = faces
    mixed = tmp_path / "mixed.jsonl"
    gone = LabelRecord(image="5_gone.png", points=truth["2_a.png"][1]).to_json()
    lines = labels.read_text().splitlines()
    mixed.write_text("\n".join(lines[:2] + [gone] + lines[2:]) + "\n")
    meta = build_cache(mixed, folder, tmp_path / "c", val_fraction=VAL_FRACTION, progress=False)
    assert meta["count"] == 8 and meta["images"] == NAMES
    assert len(meta["skipped"]) == 1 and "5_gone.png" in meta["skipped"][0]
    c = open_cache(tmp_path / "c")
    assert c.crops.shape[0] == 8 and c.points.shape[0] == 8 and c.val.shape[0] == 8
    assert not (tmp_path / "c" / "crops.npy.tmp").exists()
    # rows line up with names after the gap
    for k, name in enumerate(NAMES):
        _, p = truth[name]
        np.testing.assert_allclose(c.points[k],
                                   context_transform(box_from_points(p), DEFAULT_SIZE, DEFAULT_MARGIN).to_crop(p), atol=1e-3)


def test_build_cache_refuses_files_without_faces(tmp_path):
    labels = tmp_path / "empty.jsonl"
    labels.write_text(LabelRecord(image="a.png", error="no face").to_json() + "\n")
    with pytest.raises(ValueError, match="no usable labelled faces"):
        build_cache(labels, tmp_path, tmp_path / "c", progress=False)


def test_build_cache_refuses_mixed_schemes(faces, tmp_path):
    folder, labels, _ = faces
    mixed = tmp_path / "mixed.jsonl"
    ibug = LabelRecord(image="9_x.png", scheme="ibug68", points=np.full((68, 2), 50.0)).to_json()
    mixed.write_text(labels.read_text() + ibug + "\n")
    with pytest.raises(ValueError, match="mixes schemes"):
        build_cache(mixed, folder, tmp_path / "c", progress=False)


def test_open_cache_on_a_plain_folder(tmp_path):
    with pytest.raises(ValueError, match="not a facemark cache"):
        open_cache(tmp_path)


@pytest.mark.parametrize("size", [128, 112, 96])
def test_any_crop_size_gives_a_usable_cache(faces, tmp_path, size):
    folder, labels, truth = faces
    meta = build_cache(labels, folder, tmp_path / "c", size=size, val_fraction=VAL_FRACTION, progress=False)
    opened = open_cache(tmp_path / "c")
    crops, points = opened.network_view(np.arange(meta["count"]))
    assert crops.shape[1:] == (size, size, 3)
    name = opened.names[0]
    expected = square_crop_transform(box_from_points(truth[name][1]), size, opened.margin).to_crop(truth[name][1])
    assert np.abs(points[0] - expected).max() < 1e-3


def test_build_cache_rejects_nonsense_sizes(faces, tmp_path):
    folder, labels, _ = faces
    with pytest.raises(ValueError, match="size"):
        build_cache(labels, folder, tmp_path / "c", size=0, progress=False)
