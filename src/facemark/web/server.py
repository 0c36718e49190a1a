"""The server of the browser page: the standard library's http.server, nothing to install.

What it serves, all from this machine (the page works offline once served):
- `/` and the page's files: the repository's `web/` folder (`index.html`, `src/`, and `vendor/ort/`, the
  onnxruntime-web files that `make web` copies from npm; they are not in git);
- `/models/<name>.onnx`: the package's built-in networks (BlazeFace's two detectors, face88, ibug68, the eye refiner), the very
  files the Python runtime runs, and YuNet (the default look's crowd faces) with its input's sides marked free
  as the Python runtime marks them (facemark.detection.yunet.detector.dynamic_model_bytes);
- `/models/<name>.json`: a landmark network's config (point layout, margin, input size), read from its ONNX
  metadata, so the page needs no copy of it.

Every answer carries Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy: the page is then cross-origin
isolated, which onnxruntime-web needs for WebAssembly threads (SharedArrayBuffer).
"""

from __future__ import annotations

import http.server
import json
import socketserver
import sys
import threading
import webbrowser
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

PACKAGE = Path(__file__).resolve().parents[1]
# src/facemark/web/server.py -> the checkout's root, which holds web/ (a source checkout or an editable install)
DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "web"
LANDMARK_MODELS = ("face88", "ibug68")
DETECTOR_MODELS = ("blazeface_full", "blazeface_short")
EYE_MODELS = ("eyes",)  # the eye refiner (facemark.pipeline.eyes)
CROWD_MODEL = "face_detection_yunet_2023mar"  # YuNet: the default look's crowd faces (served with free input sides)
# what `make web` leaves in web/vendor/ort; the page cannot start without it
ORT_ENTRY = Path("vendor") / "ort" / "ort.wasm.min.mjs"
# the page's own files; anything else under web/ (node_modules, package.json) is not served
SERVED = ("index.html", "style.css", "src/", "vendor/ort/")
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript",
         ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
         ".onnx": "application/octet-stream", ".png": "image/png", ".map": "application/json"}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class WebSetupError(RuntimeError):
    """The page cannot be served (its built files are missing); the message says what to run, in one line."""


@lru_cache(maxsize=None)
def model_files() -> dict[str, Path]:
    """name -> the package's .onnx file, for the landmark networks and BlazeFace's two detectors (found by name
    anywhere in the package, wherever its modules live)."""
    wanted = set(LANDMARK_MODELS + DETECTOR_MODELS + EYE_MODELS)
    found = {p.stem: p for p in PACKAGE.rglob("*.onnx") if p.stem in wanted}
    missing = wanted - set(found)
    if missing:
        raise WebSetupError(f"the package lacks {', '.join(sorted(missing))}.onnx")
    return found


@lru_cache(maxsize=None)
def model_config(name: str) -> bytes:
    """A landmark network's config as JSON (scheme, margin, input_size), from its ONNX file's metadata."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model_files()[name]), providers=["CPUExecutionProvider"])
    config = json.loads(session.get_modelmeta().custom_metadata_map["facemark_config"])
    (crops,) = session.get_inputs()
    return json.dumps({"name": name, "scheme": config["scheme"], "margin": config["margin"],
                       "input_size": int(crops.shape[2])}).encode()


class PageHandler(http.server.BaseHTTPRequestHandler):
    root: Path = DEFAULT_ROOT
    quiet = False
    server_version = "facemark-web"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path).lstrip("/") or "index.html"
        content = self._content(path)
        if content is None:
            self.send_error(404, "not found")
            return
        data, suffix = content
        self.send_response(200)
        self.send_header("Content-Type", TYPES.get(suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _content(self, path: str) -> tuple[bytes, str] | None:
        if path.startswith("models/"):
            name, _, suffix = path.removeprefix("models/").rpartition(".")
            if suffix == "onnx" and name == CROWD_MODEL:
                from facemark.detection.yunet.detector import dynamic_model_bytes

                return dynamic_model_bytes(), ".onnx"  # its input's sides marked free, as Python runs it
            if suffix == "onnx" and name in model_files():
                return model_files()[name].read_bytes(), ".onnx"
            if suffix == "json" and name in LANDMARK_MODELS:
                return model_config(name), ".json"
            return None
        if ".." in path.split("/") or not any(path == s or (s.endswith("/") and path.startswith(s)) for s in SERVED):
            return None
        file = self.root / path
        return (file.read_bytes(), file.suffix) if file.is_file() else None

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(host: str = "127.0.0.1", port: int = 8088, root: str | Path | None = None,
                quiet: bool = False) -> http.server.HTTPServer:
    """An HTTP server of the page (not started: `serve_forever()`); port 0 picks a free one
    (`server.server_address`). Raises WebSetupError when the page's files are not built (`make web`)."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    if not (root / "index.html").is_file():
        raise WebSetupError(f"no page in {root}: `facemark web` serves the web/ folder of a facemark checkout")
    if not (root / ORT_ENTRY).is_file():
        raise WebSetupError(f"{root / ORT_ENTRY} is missing: run `make web` (npm ci and the copy of "
                            "onnxruntime-web's files) in the checkout first")
    model_files()
    handler = type("Handler", (PageHandler,), {"root": root, "quiet": quiet})
    return _Server((host, port), handler)


def serve(host: str = "127.0.0.1", port: int = 8088, open_browser: bool = True, root: str | Path | None = None,
          quiet: bool = False) -> None:
    """Serve the page until interrupted; open it in the default browser unless `open_browser` is False."""
    server = make_server(host, port, root, quiet)
    url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0', '') else host}:{server.server_address[1]}/"
    print(f"facemark web: serving {url} (Ctrl-C stops)", file=sys.stderr)
    if open_browser:
        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
