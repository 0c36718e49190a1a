"""Convert MediaPipe's BlazeFace face detectors (.tflite) to ONNX, once, for facemark's runtime.

    python scripts/convert_blazeface.py                       # both models from the installed mediapipe wheel
    python scripts/convert_blazeface.py --check               # and compare with TFLite's own interpreter

Reads `face_detection_short_range.tflite` and `face_detection_full_range_sparse.tflite` from the installed
mediapipe 0.10.21 wheel (Apache-2.0, Google; see facemark/detection/blazeface/LICENSE-weights.md) and writes
`facemark/detection/blazeface/blazeface_{short,full}.onnx`. Nothing else is needed at run time: the detector
runs the ONNX files on onnxruntime with numpy.

The .tflite file is a FlatBuffer (schema: tensorflow/lite/schema/schema.fbs). It is read here with the
`flatbuffers` package's generic `Table` accessor (installed with mediapipe), field by field, so no generated
schema code or TensorFlow is needed. Only what these two models use is supported (an unknown operator or
option is refused by name):
CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PAD, MAX_POOL_2D, RESHAPE, CONCATENATION, RESIZE_BILINEAR, DEPTH_TO_SPACE;
DEQUANTIZE (float16 weights) and DENSIFY (the full-range model's sparse weights) act on constants only and are
evaluated here.

The ONNX graph takes the TFLite input as it is, `image`: N×H×W×3 float32 RGB in [-1, 1] (N free), works in
NCHW inside (one transpose at the input, one before each reshape to the anchor list, so the anchor order
is TFLite's), and returns `regressors` N×A×16 (box centre offset, size, then six keypoints, in input
pixels relative to each anchor) and `classificators` N×A×1 (score logits), A = 896 (short range) or 2304
(full range). Weights are stored as float16, exactly as in the .tflite, and cast to float32 in the graph
(onnxruntime folds the cast when the session starts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "src" / "facemark" / "detection" / "blazeface"
MODELS = {  # output name -> file name inside mediapipe/modules/face_detection/
    "blazeface_short.onnx": "face_detection_short_range.tflite",
    "blazeface_full.onnx": "face_detection_full_range_sparse.tflite",
}
OPSET = 13

# TFLite's BuiltinOperator codes (schema.fbs) for the operators these models use
ADD, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, DEPTH_TO_SPACE, DEQUANTIZE = 0, 2, 3, 4, 5, 6
MAX_POOL_2D, RELU, RESHAPE, RESIZE_BILINEAR, PAD, DENSIFY = 17, 19, 22, 23, 34, 124
# TensorType codes -> numpy dtypes
TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
ACTIVATIONS = {0: None, 1: "Relu", 3: "Relu6"}  # fused_activation_function codes we can express
SAME, VALID = 0, 1  # Padding


# ------------------------------------------------------------------------------------ FlatBuffer reading


class Table:
    """One FlatBuffer table: fields by their index in the schema (the vtable slot is 4 + 2 * index)."""

    def __init__(self, buf: bytearray, pos: int):
        from flatbuffers.table import Table as FbTable
        self._t, self._buf = FbTable(buf, pos), buf

    def _slot(self, index: int) -> int:
        return self._t.Offset(4 + 2 * index)

    def has(self, index: int) -> bool:
        return self._slot(index) != 0

    def scalar(self, index: int, kind: str, default=0):
        """A scalar field; `kind`: a numpy type code ('<i4', 'i1', '<u4', '<f4', ...)."""
        slot = self._slot(index)
        if not slot:
            return default
        return np.frombuffer(self._buf, dtype=kind, count=1, offset=self._t.Pos + slot)[0].item()

    def table(self, index: int) -> Table | None:
        slot = self._slot(index)
        return Table(self._buf, self._t.Indirect(self._t.Pos + slot)) if slot else None

    def tables(self, index: int) -> list[Table]:
        slot = self._slot(index)
        if not slot:
            return []
        start, count = self._t.Vector(slot), self._t.VectorLen(slot)
        return [Table(self._buf, self._t.Indirect(start + 4 * k)) for k in range(count)]

    def array(self, index: int, dtype) -> np.ndarray:
        """A vector of scalars as a (copied) numpy array; empty when the field is absent."""
        slot = self._slot(index)
        if not slot:
            return np.zeros(0, dtype)
        return np.frombuffer(self._buf, dtype=dtype, count=self._t.VectorLen(slot),
                             offset=self._t.Vector(slot)).copy()

    def string(self, index: int) -> str:
        slot = self._slot(index)
        return self._t.String(self._t.Pos + slot).decode() if slot else ""


class TfliteModel:
    """The parts of a .tflite model this converter reads: one subgraph's tensors, operators and buffers."""

    def __init__(self, path: Path):
        buf = bytearray(path.read_bytes())
        if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
            raise ValueError(f"{path} is not a TFLite model (no TFL3 identifier)")
        root = Table(buf, int(np.frombuffer(buf, "<u4", 1, 0)[0]))
        # Model: 1 operator_codes, 2 subgraphs, 4 buffers. OperatorCode: 0 deprecated_builtin_code (byte),
        # 3 builtin_code (int32; the larger of the two is the real code, as TFLite itself reads it)
        self.opcodes = [max(c.scalar(0, "i1"), c.scalar(3, "<i4")) for c in root.tables(1)]
        subgraphs = root.tables(2)
        if len(subgraphs) != 1:
            raise ValueError(f"{path}: expected one subgraph, found {len(subgraphs)}")
        graph = subgraphs[0]
        self.buffers = [b.array(0, np.uint8) for b in root.tables(4)]
        # SubGraph: 0 tensors, 1 inputs, 2 outputs, 3 operators
        self.tensors = graph.tables(0)
        self.inputs = graph.array(1, "<i4").tolist()
        self.outputs = graph.array(2, "<i4").tolist()
        self.operators = graph.tables(3)

    # Tensor: 0 shape, 1 type, 2 buffer, 3 name, 6 sparsity
    def shape(self, i: int) -> list[int]:
        return self.tensors[i].array(0, "<i4").tolist()

    def name(self, i: int) -> str:
        return self.tensors[i].string(3)

    def constant(self, i: int) -> np.ndarray | None:
        """The tensor's stored value (None when it is computed at run time); sparse ones still packed."""
        tensor = self.tensors[i]
        data = self.buffers[tensor.scalar(2, "<u4")]
        if len(data) == 0:
            return None
        dtype = TENSOR_TYPES.get(tensor.scalar(1, "i1"))
        if dtype is None:
            raise ValueError(f"tensor {self.name(i)!r}: unsupported type code {tensor.scalar(1, 'i1')}")
        values = data.view(dtype)
        return values if tensor.has(6) else values.reshape(self.shape(i))


def densify(model: TfliteModel, i: int, values: np.ndarray) -> np.ndarray:
    """A sparse constant's dense value (TFLite's SparsityParameters: dense and CSR dimensions, no blocks)."""
    sparsity = model.tensors[i].table(6)  # 0 traversal_order, 1 block_map, 2 dim_metadata
    order = sparsity.array(0, "<i4").tolist()
    if len(sparsity.array(1, "<i4")):
        raise ValueError(f"tensor {model.name(i)!r}: block-sparse weights are not supported")
    shape = model.shape(i)
    if order != list(range(len(shape))):
        raise ValueError(f"tensor {model.name(i)!r}: traversal order {order} is not supported")
    dims = []
    for meta in sparsity.tables(2):  # DimensionMetadata: 0 format, 1 dense_size, 3 segments, 5 indices
        if meta.scalar(0, "i1") == 0:
            dims.append(("dense", meta.scalar(1, "<i4")))
        else:  # SPARSE_CSR; each index vector is a union table (Int32/Uint16/Uint8Vector) with field 0 values
            kinds = {1: "<i4", 2: "<u2", 3: "u1"}
            segments = meta.table(3).array(0, kinds[meta.scalar(2, "u1")]).astype(np.int64)
            indices = meta.table(5).array(0, kinds[meta.scalar(4, "u1")]).astype(np.int64)
            dims.append(("csr", segments, indices))
    dense = np.zeros(int(np.prod(shape)), values.dtype)
    # Walk the dimensions in order. `positions` are the flat dense offsets reached so far and `cursors` the
    # index of each into the next sparse level's segments (a dense level multiplies both by its size).
    positions, cursors = np.zeros(1, np.int64), np.zeros(1, np.int64)
    for d, dim in enumerate(dims):
        if dim[0] == "dense":
            size = dim[1]
            positions = (positions[:, None] * shape[d] + np.arange(size)).reshape(-1)
            cursors = (cursors[:, None] * size + np.arange(size)).reshape(-1)
        else:
            segments, indices = dim[1], dim[2]
            counts = segments[cursors + 1] - segments[cursors]
            starts = np.repeat(segments[cursors], counts)
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            taken = starts + within
            positions = np.repeat(positions, counts) * shape[d] + indices[taken]
            cursors = taken
    if len(positions) != len(values):
        raise ValueError(f"tensor {model.name(i)!r}: {len(values)} stored values for {len(positions)} positions")
    dense[positions] = values
    return dense.reshape(shape)


# --------------------------------------------------------------------------------------- ONNX building


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class OnnxBuilder:
    def __init__(self, model: TfliteModel):
        from onnx import helper
        self.helper, self.model = helper, model
        self.nodes, self.initializers = [], []
        self.constants: dict[int, np.ndarray] = {}  # tensor index -> value known at conversion time
        self.names: dict[int, str] = {}  # tensor index -> ONNX value name (4-D ones in NCHW)
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or self.fresh(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attrs))
        return output

    def weight(self, value: np.ndarray, hint: str) -> str:
        """A float32 constant, stored as float16 when that is exact (these weights come from float16)."""
        from onnx import numpy_helper
        name = self.fresh(hint)
        value = np.asarray(value, np.float32)
        half = value.astype(np.float16)
        if np.array_equal(half.astype(np.float32), value):
            self.initializers.append(numpy_helper.from_array(half, name + "_f16"))
            return self.node("Cast", [name + "_f16"], name, to=1)  # 1: FLOAT
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def int64s(self, values, hint: str) -> str:
        from onnx import numpy_helper
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    def floats(self, values, hint: str) -> str:
        from onnx import numpy_helper
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(values, np.float32), name))
        return name

    def activation(self, name: str, code: int, what: str) -> str:
        if code not in ACTIVATIONS:
            raise ValueError(f"{what}: fused activation code {code} is not supported")
        if ACTIVATIONS[code] == "Relu":
            return self.node("Relu", [name])
        if ACTIVATIONS[code] == "Relu6":
            return self.node("Clip", [name, self.floats(0.0, "lo"), self.floats(6.0, "hi")])
        return name

    def convert(self, graph_name: str):
        model = self.model
        (image,) = model.inputs
        height, width = model.shape(image)[1:3]
        self.names[image] = self.node("Transpose", ["image"], "image_nchw", perm=[0, 3, 1, 2])
        for k, op in enumerate(model.operators):
            code = model.opcodes[op.scalar(0, "<u4")]
            inputs, outputs = op.array(1, "<i4").tolist(), op.array(2, "<i4").tolist()
            options = op.table(4)
            self.operator(code, inputs, outputs[0], options, f"operator {k} (code {code})")
        graph_outputs = []
        for i, name in zip(model.outputs, ("regressors", "classificators")):
            self.node("Identity", [self.names[i]], name)
            count, size = model.shape(i)[1:]
            graph_outputs.append(self.helper.make_tensor_value_info(name, 1, ["batch", count, size]))
        inputs = [self.helper.make_tensor_value_info("image", 1, ["batch", height, width, 3])]
        graph = self.helper.make_graph(self.nodes, graph_name, inputs, graph_outputs, self.initializers)
        onnx_model = self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", OPSET)],
                                            producer_name="facemark scripts/convert_blazeface.py")
        onnx_model.ir_version = 8  # readable by onnxruntime >= 1.14
        return onnx_model

    def operator(self, code: int, inputs: list[int], out: int, options, what: str) -> None:
        model = self.model
        if code in (DEQUANTIZE, DENSIFY):  # constants only: evaluate now
            (source,) = inputs
            value = self.constants.get(source)
            if value is None:
                stored = model.constant(source)
                if stored is None:
                    raise ValueError(f"{what}: operates on a run-time tensor, which is not supported")
                value = densify(model, source, stored) if code == DENSIFY else stored
            self.constants[out] = value.astype(np.float32) if code == DEQUANTIZE else value
            return

        def const(i: int) -> np.ndarray:
            value = self.constants.get(i)
            value = model.constant(i) if value is None else value
            if value is None:
                raise ValueError(f"{what}: expected a constant input {model.name(i)!r}")
            return value

        x = self.names.get(inputs[0])
        if x is None:
            raise ValueError(f"{what}: its input {model.name(inputs[0])!r} is not computed by the graph")
        in_shape, out_shape = model.shape(inputs[0]), model.shape(out)
        if code in (CONV_2D, DEPTHWISE_CONV_2D):
            kernel, bias = const(inputs[1]), const(inputs[2])
            if code == CONV_2D:  # Conv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 activation, 4-5 dilation
                act, dil = options.scalar(3, "i1"), (options.scalar(5, "<i4", 1), options.scalar(4, "<i4", 1))
                w, group = kernel.transpose(0, 3, 1, 2), 1  # OHWI -> OIHW
            else:  # DepthwiseConv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 multiplier, 4 act, 5-6 dilation
                act, dil = options.scalar(4, "i1"), (options.scalar(6, "<i4", 1), options.scalar(5, "<i4", 1))
                w, group = kernel.transpose(3, 0, 1, 2), in_shape[3]  # 1HW(C*m) -> (C*m)1HW
            stride = (options.scalar(2, "<i4", 1), options.scalar(1, "<i4", 1))
            kh, kw = w.shape[2:]
            if options.scalar(0, "i1") == SAME:
                t, b = same_pads(in_shape[1], kh, stride[0], dil[0])
                left, r = same_pads(in_shape[2], kw, stride[1], dil[1])
            else:
                t = b = left = r = 0
            y = self.node("Conv", [x, self.weight(w, "w"), self.weight(bias, "b")], kernel_shape=[kh, kw],
                          strides=list(stride), dilations=list(dil), pads=[t, left, b, r], group=group)
            y = self.activation(y, act, what)
        elif code == ADD:
            other = self.names.get(inputs[1])
            if other is None or model.shape(inputs[1]) != in_shape:
                raise ValueError(f"{what}: only the sum of two computed tensors of one shape is supported")
            y = self.activation(self.node("Add", [x, other]), options.scalar(0, "i1") if options else 0, what)
        elif code == RELU:
            y = self.node("Relu", [x])
        elif code == PAD:
            pads = const(inputs[1]).astype(np.int64)  # NHWC rows of (before, after)
            if len(in_shape) != 4 or (len(inputs) > 2 and np.any(const(inputs[2]))):
                raise ValueError(f"{what}: only zero padding of a 4-D tensor is supported")
            nchw = pads[[0, 3, 1, 2]]
            y = self.node("Pad", [x, self.int64s(np.concatenate([nchw[:, 0], nchw[:, 1]]), "pads")])
        elif code == MAX_POOL_2D:  # Pool2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 filter_w, 4 filter_h, 5 act
            stride = (options.scalar(2, "<i4"), options.scalar(1, "<i4"))
            kh, kw = options.scalar(4, "<i4"), options.scalar(3, "<i4")
            if options.scalar(0, "i1") == SAME:
                (t, b), (left, r) = same_pads(in_shape[1], kh, stride[0]), same_pads(in_shape[2], kw, stride[1])
            else:
                t = b = left = r = 0
            if t or b or left or r:  # TF pads a max pool with -inf, ONNX's pads too, but say so if ever needed
                raise ValueError(f"{what}: a padded max pool is not supported")
            y = self.node("MaxPool", [x], kernel_shape=[kh, kw], strides=list(stride))
            y = self.activation(y, options.scalar(5, "i1"), what)
        elif code == RESHAPE:
            shape = [int(v) for v in (const(inputs[1]) if len(inputs) > 1 else options.array(0, "<i4"))]
            if len(in_shape) == 4:  # back to TFLite's NHWC so the flattening order is its own
                x = self.node("Transpose", [x], perm=[0, 2, 3, 1])
            if shape[0] != 1:
                raise ValueError(f"{what}: only reshapes that keep a leading batch dimension are supported")
            y = self.node("Reshape", [x, self.int64s([0, *shape[1:]], "shape")])  # 0: keep the batch size
            if len(out_shape) == 4:
                y = self.node("Transpose", [y], perm=[0, 3, 1, 2])
        elif code == CONCATENATION:  # ConcatenationOptions: 0 axis, 1 activation
            axis = options.scalar(0, "<i4")
            axis = axis % len(in_shape)
            if len(in_shape) == 4:
                axis = [0, 2, 3, 1][axis]
            y = self.node("Concat", [self.names[i] for i in inputs], axis=axis)
            y = self.activation(y, options.scalar(1, "i1"), what)
        elif code == RESIZE_BILINEAR:  # ResizeBilinearOptions: 2 align_corners, 3 half_pixel_centers
            mode = ("align_corners" if options.scalar(2, "u1") else
                    "half_pixel" if options.scalar(3, "u1") else "asymmetric")
            scales = [1.0, 1.0, out_shape[1] / in_shape[1], out_shape[2] / in_shape[2]]
            y = self.node("Resize", [x, "", self.floats(scales, "scales")], mode="linear",
                          coordinate_transformation_mode=mode)
        elif code == DEPTH_TO_SPACE:  # DepthToSpaceOptions: 0 block_size; TF's channel order is ONNX's DCR
            y = self.node("DepthToSpace", [x], blocksize=options.scalar(0, "<i4"), mode="DCR")
        else:
            raise ValueError(f"{what}: TFLite operator code {code} is not supported by this converter")
        self.names[out] = y


def convert(tflite_path: Path, out_path: Path):
    """Convert one .tflite file; returns the ONNX model (also written to out_path)."""
    import onnx
    model = OnnxBuilder(TfliteModel(tflite_path)).convert(out_path.stem)
    onnx.checker.check_model(model, full_check=True)
    out_path.write_bytes(model.SerializeToString())
    return model


def check_against_tflite(tflite_path: Path, onnx_path: Path, trials: int = 3) -> float:
    """Largest absolute difference between the TFLite interpreter's outputs and ours on random inputs.

    Needs `tflite_runtime` (or TensorFlow); used while converting, never at run time."""
    import onnxruntime
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite import Interpreter  # type: ignore
    interpreter = Interpreter(str(tflite_path))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(trials):
        x = rng.uniform(-1, 1, source["shape"]).astype(np.float32)
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        theirs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
        ours = session.run(None, {"image": x})
        for a, b in zip(sorted(theirs.values(), key=lambda v: -v.shape[-1]), ours):
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


def mediapipe_folder() -> Path:
    try:
        import mediapipe
    except ImportError:
        raise SystemExit("error: mediapipe is not installed (pip install 'facemark[label]'); it holds the "
                         "BlazeFace .tflite files") from None
    return Path(mediapipe.__file__).parent / "modules" / "face_detection"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None,
                        help="folder holding the .tflite files (default: the installed mediapipe's)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="compare outputs with the TFLite interpreter")
    args = parser.parse_args()
    source = args.source or mediapipe_folder()
    for out_name, tflite_name in MODELS.items():
        tflite_path = source / tflite_name
        if not tflite_path.is_file():
            raise SystemExit(f"error: {tflite_path} not found")
        out_path = args.out / out_name
        try:
            model = convert(tflite_path, out_path)
        except ValueError as e:
            raise SystemExit(f"error: {tflite_path.name}: {e}") from None
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"{tflite_path.name} -> {out_path} ({out_path.stat().st_size / 1e3:.0f} kB; {len(model.graph.node)} "
              f"nodes: {', '.join(ops)})")
        if args.check:
            worst = check_against_tflite(tflite_path, out_path)
            print(f"  largest difference from the TFLite interpreter: {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
