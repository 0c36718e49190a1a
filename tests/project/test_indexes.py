"""`docs/`, `benchmarks/` and `scripts/` each open with an index (their README.md) that names every page, benchmark
and script in them, so a reader finds "where is X" from the index alone."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("folder,patterns", [
    ("docs", ["*.md"]),
    ("benchmarks", ["*.py", "*.sh"]),
    ("scripts", ["*.py"]),
])
def test_index_names_every_file(folder, patterns):
    index = (REPO / folder / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for pattern in patterns for p in (REPO / folder).glob(pattern) if p.name != "README.md")
    missing = [name for name in files if name not in index]
    assert not missing, f"{folder}/README.md does not name: {', '.join(missing)}"
