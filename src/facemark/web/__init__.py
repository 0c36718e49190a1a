"""facemark in the browser: `facemark web` serves the page in the repository's `web/` folder (built by `make web`)
with the package's own ONNX files, and the headers that let onnxruntime-web use threads (docs/web.md)."""

from facemark.web.server import make_server, serve

__all__ = ["make_server", "serve"]
