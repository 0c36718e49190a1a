"""The landmark network at run time: an ONNX file run by onnxruntime, numpy in and out, no torch.

    network = load_network("face88")                  # a built-in name, an .onnx file (or, with torch, a .pt)
    points = predict_crops(network, crops)             # (N, S, S, 3) uint8 crops -> (N, P, 2) crop pixels

The graph is the network alone: input "crops" (N, 3, S, S) float32 in [-1, 1], output "points" (N, P, 2) in
the network's [-1, 1] crop units, N dynamic. Cropping and the mapping back to the image stay in Python
(facemark.pipeline.crops). The model config (scheme, margin, input size, ...) travels as JSON in the file's
metadata_props, so an .onnx file alone rebuilds everything `Landmarker` needs; other programs find
`input_size`, `margin` and `scheme` there too. Files are written by `facemark export` (facemark.train.export).

The built-in models ship twice in `facemark/weights/`: as `<name>.onnx` for this runtime and as `<name>.pt`, the
torch weights that training starts from (facemark.train.weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from facemark.extras import install_hint
from facemark.images import lift_dark
from facemark.pipeline.crops import normalise_crop
from facemark.layouts import FACE88, Scheme

FORMAT = "facemark-landmarks-onnx"
VERSION = 1
INPUT_NAME, OUTPUT_NAME = "crops", "points"
BACKENDS = ("auto", "onnx", "torch")
BUILTIN_DIR = Path(__file__).parent / "weights"
WEIGHTS_ENTRY_POINTS = "facemark.weights"  # pyproject.toml's entry points: the loader of .pt files
BUILTIN_MODELS = ("face88", "ibug68")  # <name>.onnx (runtime) and <name>.pt (training) in BUILTIN_DIR


@dataclass
class ModelConfig:
    """What a landmark network is: travels with its weights (.pt) and in its ONNX metadata."""

    arch: str = "mobilenet"
    alpha: float = 0.5  # width multiplier: channels = round(alpha × MobileNet's)
    rho: float = 1.0  # resolution multiplier: input side = round(160 × rho)
    shallow: bool = False  # drop the five 512-channel 1×1-stride blocks (faster, less capacity)
    # "flatten": regress from the stride-32 map, its layout kept (where a feature is matters); "gap": average it
    # away; "heatmap": one heatmap per point at stride 8 from a small feature pyramid, decoded by soft-argmax
    head: str = "heatmap"
    head_channels: int = 64  # 1×1 conv width before flattening; the pyramid's width for "heatmap"
    scheme: dict = field(default_factory=FACE88.to_dict)  # the point layout the head predicts
    margin: float = 1.25  # the framing it was trained on: crop side = margin × side of the points' box
    # the same framing seen from a face detector's box (its landmark box, ≈ the box of face88's points), for a
    # layout of your own whose points' box is not the face's: [side, dx, dy], crop side = side × box side, crop
    # centre = box centre + (dx, dy) × box side (turned with the face). None: the box is the points' box
    face_framing: list[float] | None = None
    # pretrained backbones (arch "dlib_resnet"): how many of their last stages train too; 0 keeps all frozen
    unfreeze: int = 0

    @property
    def input_size(self) -> int:
        return round(160 * self.rho)

    @property
    def num_points(self) -> int:
        return Scheme.from_dict(self.scheme).num_points


class WeightsError(ValueError):
    """A model file (weights or ONNX) that cannot be used; the message says why in one line."""


class OnnxModelError(WeightsError):
    """An .onnx file that cannot be used as a facemark landmark network."""


def to_pixels(y: np.ndarray, input_size: int) -> np.ndarray:
    """[-1, 1] crop coordinates -> crop pixels of an input_size crop (pixel-centre convention: the centre of the
    top-left pixel is 0, the crop's edges are -0.5 and input_size - 0.5)."""
    return (y + 1) * (input_size / 2) - 0.5


def resolve_model_path(model: str | Path | None, suffix: str = ".onnx") -> Path:
    """A built-in model name ("face88", the default) -> its file with `suffix` (.onnx or .pt); a path -> itself."""
    model = "face88" if model is None else model
    if str(model) in BUILTIN_MODELS:
        return BUILTIN_DIR / f"{model}{suffix}"
    return Path(model)


class LandmarkNetwork:
    """An exported landmark network run by onnxruntime.

    `model`: an .onnx file written by `facemark export` (or its bytes). `threads`: onnxruntime intra-op threads
    (None: onnxruntime's default, one per physical core). Calls take a float32 array (N, 3, S, S) in [-1, 1]
    and return (N, P, 2) float32 points in [-1, 1] crop coordinates. Raises OnnxModelError for a missing,
    damaged or foreign file.
    """

    def __init__(self, model: str | Path | bytes, *, threads: int | None = None):
        self.path = None if isinstance(model, bytes) else Path(model)
        name = "ONNX model" if self.path is None else str(self.path)
        if self.path is not None and not self.path.is_file():
            raise OnnxModelError(f"no ONNX model file {self.path} (built-in models: {', '.join(BUILTIN_MODELS)})")
        self.session = onnx_session(model if self.path is None else self.path, threads, name)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("facemark_format") != FORMAT:
            raise OnnxModelError(f"{name} is an ONNX model but not a facemark landmark network "
                                 f"(no '{FORMAT}' metadata; write it with `facemark export`)")
        if meta.get("facemark_version") != str(VERSION):
            raise OnnxModelError(f"{name}: facemark ONNX version {meta.get('facemark_version')} is not supported")
        try:
            self.config = ModelConfig(**json.loads(meta["facemark_config"]))
            self.scheme = Scheme.from_dict(self.config.scheme)
        except (KeyError, TypeError, ValueError) as e:
            raise OnnxModelError(f"{name}: invalid model config in its metadata ({e})") from None
        try:
            self.metrics = json.loads(meta.get("facemark_metrics", "{}"))
        except ValueError:
            self.metrics = {}
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        size = self.config.input_size
        if ([i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]
                or list(inputs[0].shape[1:]) != [3, size, size]):
            raise OnnxModelError(f"{name}: graph does not take ({INPUT_NAME}: N×3×{size}×{size}) as its config says")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) normalised crops -> (N, P, 2) points in [-1, 1] crop coordinates."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        size = self.config.input_size
        if x.ndim != 4 or x.shape[1:] != (3, size, size):
            raise ValueError(f"the landmark network takes (N, 3, {size}, {size}) crops, got shape {x.shape}")
        (points,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: x})
        return points

    def to_pixels(self, y: np.ndarray) -> np.ndarray:
        """[-1, 1] crop coordinates -> pixels of the network's input crop."""
        return to_pixels(y, self.config.input_size)

    def __repr__(self) -> str:
        where = self.path if self.path is not None else "in memory"
        return f"LandmarkNetwork({where}, {self.config.arch}, {self.config.input_size} px, {self.scheme.name})"


def onnx_session(model: Path | bytes, threads: int | None, name: str):
    """An onnxruntime CPU session for an .onnx file or its bytes; `threads`: intra-op threads (None: onnxruntime's
    default). Raises OnnxModelError for a file onnxruntime cannot read."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1  # a single chain of ops: nothing to run side by side
    # no busy-waiting between calls: the face detector runs on the same cores right after the network,
    # and spinning onnxruntime threads would steal them (measured: whole-image time doubled)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # onnxruntime's own warnings would repeat our one-line errors
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own kinds for a damaged file; all mean the same to a user
        raise OnnxModelError(f"{name} is not a readable ONNX model ({type(e).__name__})") from None


def predict_crops(network, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
    """(N, P, 2) float64 points in crop pixels for (N, S, S, 3) uint8 crops of any S (resized to the network's
    input, antialiased, when S differs).

    `network`: a LandmarkNetwork, or anything with its `config`, `scheme` and numpy call (the torch network's
    adapter, facemark.train.model.TorchLandmarkNetwork). flip: also predict the mirrored crops (one batch of
    2N), mirror those points back through the scheme's left/right permutation and average: about 4% lower NME
    for twice the network time."""
    crops = np.asarray(crops)
    s, n = crops.shape[1], network.config.input_size
    if s != n:
        crops = np.stack([np.asarray(Image.fromarray(c).resize((n, n), Image.Resampling.BILINEAR)) for c in crops])
    x = normalise_crop(lift_dark(crops))
    if flip:
        x = np.concatenate([x, x[..., ::-1]])
    pred = network.to_pixels(np.asarray(network(x), np.float64))
    if flip:
        k = len(crops)
        mirrored = pred[k:, list(network.scheme.flip)]
        mirrored[..., 0] = n - 1 - mirrored[..., 0]
        pred = (pred[:k] + mirrored) / 2
    return pred if s == n else (pred + 0.5) * (s / n) - 0.5


def weights_loader():
    """The loader of torch weights files, `loader(path, backend=, threads=) -> network`, which the `train` extra
    registers under the entry point group "facemark.weights" (name "pt"); None when torch or onnx is missing.
    The runtime never imports the training side itself."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=WEIGHTS_ENTRY_POINTS):
        if entry.name == "pt":
            try:
                return entry.load()
            except ImportError:
                return None
    return None


def load_network(model: str | Path | None = None, *, backend: str = "auto", threads: int | None = None):
    """The landmark network of a built-in name, an .onnx file or (with the `train` extra) a torch weights file.

    backend: "auto" or "onnx": onnxruntime (a built-in name takes its .onnx file; a weights file is exported
    in memory, a few tenths of a second); "torch": the torch network itself (weights files and built-in names;
    needs the `train` extra). `threads`: onnxruntime's intra-op threads; torch's are process-wide
    (torch.set_num_threads), left to the caller. Raises ValueError for an unknown backend, WeightsError for a
    file that cannot be used (or a weights file without torch installed)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    builtin = model is None or str(model) in BUILTIN_MODELS
    path = resolve_model_path(model, ".pt" if backend == "torch" and builtin else ".onnx")
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise ValueError(f"{path} is an ONNX model: run it with backend 'onnx' or 'auto'")
        return LandmarkNetwork(path, threads=threads)
    network_from_weights = weights_loader()
    if network_from_weights is None:  # torch (or onnx) missing: say what to do, in one line
        if builtin and backend == "torch":  # the built-in models ship as ONNX already: nothing to export
            raise WeightsError(f"backend 'torch' needs {install_hint('train')}; the built-in models run on "
                               "onnxruntime without it (backend 'auto' or 'onnx', the default)") from None
        if not path.is_file():
            raise WeightsError(f"no model file {path} (built-in models: {', '.join(BUILTIN_MODELS)})") from None
        raise WeightsError(f"{path} is a torch weights file: running it needs {install_hint('train')}, or export it "
                           "to ONNX with `facemark export` where torch is installed") from None
    return network_from_weights(path, backend=backend, threads=threads)
