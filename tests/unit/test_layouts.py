import numpy as np
import pytest

from facemark.layouts import FACE88, IBUG68, IBUG68_TO_FACE88, Scheme, get_scheme

MIRROR_REGIONS = {"left_eye": "right_eye", "left_eyebrow": "right_eyebrow"}


@pytest.mark.parametrize("scheme", [FACE88, IBUG68])
def test_flip_is_an_involution(scheme):
    flip = np.array(scheme.flip)
    assert sorted(flip) == list(range(scheme.num_points))
    assert (flip[flip] == np.arange(scheme.num_points)).all()


@pytest.mark.parametrize("scheme", [FACE88, IBUG68])
def test_flip_maps_left_regions_to_right_regions(scheme):
    flip = np.array(scheme.flip)
    for left, right in MIRROR_REGIONS.items():
        assert sorted(flip[scheme.region_indices(left)]) == list(scheme.region_indices(right))
    # the symmetric regions map onto themselves
    for region in ("face_profile", "mouth", "nose"):
        assert sorted(flip[scheme.region_indices(region)]) == list(scheme.region_indices(region))
    a, b = scheme.normaliser
    assert flip[a] == b


def test_face88_layout_matches_the_spec():
    assert FACE88.num_points == 88
    assert [(n, FACE88.region_slice(n).start, FACE88.region_slice(n).stop) for n in FACE88.region_names] == [
        ("face_profile", 0, 21), ("left_eye", 21, 29), ("right_eye", 29, 37), ("left_eyebrow", 37, 45),
        ("right_eyebrow", 45, 53), ("mouth", 53, 75), ("nose", 75, 88)]
    fixed = [i for i in range(88) if FACE88.flip[i] == i]
    assert fixed == [10, 56, 62, 67, 72, 75, 76, 77, 78, 83]
    assert FACE88.normaliser == (21, 33)


def test_ibug_correspondence_respects_the_mirror():
    # a shared point's mirror in one layout corresponds to its mirror in the other
    assert len(IBUG68_TO_FACE88) == 34
    for ibug, f88 in IBUG68_TO_FACE88.items():
        mirrored = IBUG68.flip[ibug]
        if mirrored in IBUG68_TO_FACE88:
            assert IBUG68_TO_FACE88[mirrored] == FACE88.flip[f88]


def test_flip_points_twice_is_identity_and_moves_x():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, size=(88, 2))
    flipped = FACE88.flip_points(pts, width=101)
    assert np.allclose(flipped[10, 0], 100 - pts[10, 0])
    assert np.allclose(FACE88.flip_points(flipped, width=101), pts)


def test_scheme_round_trips_through_dict_and_rejects_bad_flip():
    assert Scheme.from_dict(FACE88.to_dict()) == FACE88
    assert get_scheme("ibug68") is IBUG68
    with pytest.raises(ValueError, match="unknown scheme"):
        get_scheme("face99")
    with pytest.raises(ValueError, match="involution"):
        Scheme("bad", (("a", 3),), flip=(1, 2, 0), normaliser=(0, 1))
    with pytest.raises(KeyError, match="no region"):
        FACE88.region_slice("ears")
