"""facemark.extras: the one place that names the optional parts and how to install them."""

import re
from pathlib import Path

import pytest

from facemark.extras import EXTRAS, MISSING_DLIB, MISSING_MEDIAPIPE, install_hint

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared_extras() -> set[str]:
    text = PYPROJECT.read_text()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([a-z][a-z0-9_-]*)\s*=", section, flags=re.M))


def test_every_named_extra_is_declared_in_pyproject():
    assert set(EXTRAS) <= declared_extras()


def test_install_hint_names_the_extra_and_refuses_unknown_ones():
    assert install_hint("train") == "pip install 'facemark[train]'"
    with pytest.raises(KeyError, match="no extra 'gpu'"):
        install_hint("gpu")


def test_missing_messages_are_one_line_with_the_command():
    for message, extra in ((MISSING_MEDIAPIPE, "label"), (MISSING_DLIB, "teacher")):
        assert "\n" not in message
        assert install_hint(extra) in message
