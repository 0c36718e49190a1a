"""facemark.options: LandmarkerOptions validated once, OptionError's messages for the API and the command line."""

import pickle

import numpy as np
import pytest

from facemark.options import DEFAULT_MIN_TRUST, DEFAULT_THREADS, LandmarkerOptions, OptionError


def test_defaults_resolve_to_the_documented_values():
    options = LandmarkerOptions()
    assert options.thread_count == DEFAULT_THREADS
    assert options.trust_floor == DEFAULT_MIN_TRUST
    assert options.min_face is None


@pytest.mark.parametrize("field, value, words", [
    ("min_face", 4, "a number of pixels from 8 to 100000"),
    ("min_face", float("nan"), "a number of pixels"),
    ("min_face", True, "a number of pixels"),
    ("min_face", "40", "a number of pixels"),
    ("min_trust", 1.5, "a number from 0 to 1"),
    ("threads", 0, "a positive integer"),
    ("threads", 2.0, "a positive integer"),
    ("detector", "haar", "one of"),
    ("backend", "tensorflow", "one of auto, onnx, torch"),
])
def test_a_value_out_of_range_names_its_field(field, value, words):
    with pytest.raises(OptionError) as err:
        LandmarkerOptions(**{field: value})
    assert err.value.field == field
    assert str(err.value).startswith(f"{field} must be ")
    assert words in str(err.value)
    assert err.value.for_flag().startswith(f"--{field.replace('_', '-')} must be ")


def test_min_trust_needs_trust():
    with pytest.raises(OptionError, match="trust is off"):
        LandmarkerOptions(trust=False, min_trust=0.3)
    assert LandmarkerOptions(trust=False, min_trust=0).trust_floor == 0.0


def test_numbers_are_normalised_and_replace_validates_again():
    options = LandmarkerOptions(min_face=np.int64(40), min_trust=np.float32(0.25))
    assert type(options.min_face) is float and options.min_face == 40.0
    assert type(options.min_trust) is float
    worker = options.replace(threads=1)
    assert worker.threads == 1 and worker.min_face == 40.0 and options.threads is None
    with pytest.raises(OptionError):
        options.replace(min_face=2)


def test_options_travel_to_worker_processes():
    options = LandmarkerOptions(min_face=40, refine=False)
    assert pickle.loads(pickle.dumps(options)) == options


def test_flag_message_shows_whole_numbers_plainly():
    with pytest.raises(OptionError) as err:
        LandmarkerOptions(min_face=2.0)
    assert err.value.for_flag() == "--min-face must be a number of pixels from 8 to 100000, got 2"
