"""In CI (`CI=true`) a test that would skip for a missing dependency or data fails, naming what is missing."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"

SUITE = {
    "test_missing_module.py": '''
import pytest
def test_needs_an_extra():
    pytest.importorskip("facemark_no_such_extra")
''',
    "test_whole_module.py": '''
import pytest
pytest.importorskip("facemark_no_such_module")
def test_never_runs():
    pass
''',
    "test_marked.py": '''
import pytest
@pytest.mark.skipif(True, reason="no ffmpeg on PATH and no imageio-ffmpeg package")
def test_needs_ffmpeg():
    pass
def test_runs():
    assert 1 + 1 == 2
''',
    "test_data.py": '''
def test_needs_shared_data(shared_data):
    assert shared_data.is_dir()
''',
}


def _run(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "FACEMARK_REQUIRE_SHARED")}
    if ci is not None:
        env["CI"] = ci
    # a module that fails its collection would stop the session before the others run
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           "--continue-on-collection-errors"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_skips_fail_in_ci_and_name_what_is_missing(tmp_path):
    # the real conftest, in a folder with no ../shared/data beside it
    folder = tmp_path / "repo" / "tests"
    folder.mkdir(parents=True)
    shutil.copy(CONFTEST, folder / "conftest.py")
    shutil.copy(CONFTEST.with_name("locations.py"), folder / "locations.py")
    for name, text in SUITE.items():
        (folder / name).write_text(text)

    local = _run(folder, None)
    assert local.returncode == 0, local.stdout
    assert local.stdout.splitlines()[-1].startswith("1 passed, 4 skipped"), local.stdout

    ci = _run(folder, "true")
    assert ci.returncode == 1, ci.stdout
    # a skip in the test body fails it; one in its setup (a skipif mark, the shared_data fixture) or in the
    # module's import errors it
    assert ci.stdout.splitlines()[-1].startswith("1 failed, 1 passed, 3 errors"), ci.stdout
    for missing in ("could not import 'facemark_no_such_extra'", "could not import 'facemark_no_such_module'",
                    "no ffmpeg on PATH and no imageio-ffmpeg",
                    f"shared data folder {tmp_path / 'shared' / 'data'} is absent"):
        assert f"CI=true forbids skipping; missing here: {missing}" in ci.stdout, missing
