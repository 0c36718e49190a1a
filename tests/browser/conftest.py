"""Browser fixtures: the page served by `facemark web` on a free port, Debian's Chromium driven by Playwright
(headless; Playwright's own browser download is never used), and Chromium's fake camera fed from a shared video.

Skips (mandatory in CI, tests/conftest.py) when Playwright, /usr/bin/chromium or the built page (`make web`) is
missing. Every page fails its test on a page error or a console error. Screenshots go to out/browser/.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
# generous: the suite shares two cores with other work; the tests wait by polling the page, never by sleeping
LOAD_TIMEOUT_MS = 180_000
RESULT_TIMEOUT_MS = 120_000


def chromium_path() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def page_url():
    """The page's URL, served by facemark.web on a free port for the whole session."""
    if not (REPO / "web" / "vendor" / "ort" / "ort.wasm.min.mjs").is_file():
        pytest.skip("the page is not built (web/vendor/ort is absent): run `make web`")
    from facemark.web.server import make_server

    server = make_server("127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def playwright():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install 'facemark[web]'")
    if chromium_path() is None:
        pytest.skip("no Chromium at /usr/bin/chromium: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        yield p


def launch(playwright, extra_args=()):
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                      args=CHROMIUM_ARGS + list(extra_args))


class Watched:
    """A page whose page errors and console errors are collected (`check` fails the test on any)."""

    def __init__(self, context, url: str):
        self.context = context
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console error: {m.text}"))
        self.page.goto(url)
        self.page.wait_for_function("window.facemarkReady === true || document.getElementById('status')"
                                    ".textContent.startsWith('error')", timeout=LOAD_TIMEOUT_MS)
        self.check()

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def browser(playwright):
    b = launch(playwright)
    yield b
    b.close()


@pytest.fixture
def web(browser, page_url):
    """The page, loaded and ready (its networks loaded), in a fresh browser context."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    watched = Watched(context, page_url)
    yield watched
    context.close()
    watched.check()


@pytest.fixture(scope="module")
def fake_camera_clip(shared_data, tmp_path_factory) -> Path:
    """A 640×480 30-fps Y4M clip (150 frames, looped by Chromium) of a shared talking-face video."""
    from facemark.web.fake_camera import write_y4m

    return write_y4m(shared_data / "videos" / "d12.mp4", tmp_path_factory.mktemp("camera") / "clip.y4m")


@pytest.fixture(scope="module")
def camera_web(playwright, page_url, fake_camera_clip):
    """The page in a Chromium whose webcam is the fake camera playing `fake_camera_clip`."""
    b = launch(playwright, ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                            f"--use-file-for-fake-video-capture={fake_camera_clip}"])
    context = b.new_context(viewport={"width": 1280, "height": 720}, permissions=["camera"])
    watched = Watched(context, page_url)
    yield watched
    context.close()
    b.close()
    watched.check()
