"""Reading a .tflite file once into a plain view: operators, tensors, weights, quantization, metadata.

A .tflite file is a FlatBuffer in the TFLite schema, which LiteRT ships as generated Python code
(`ai_edge_litert.schema_py_generated`). `load_model` reads a file into a `Model`: the operators in
execution order, every tensor with its shape, type, size in bytes, quantization and whether it is
a constant (stored in the model: ROM) or an activation (computed at run time: RAM). The estimates,
the graph picture, the challenge check, submit.py and the grader all read models through it.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DTYPE_BYTES = {"float32": 4, "int32": 4, "int8": 1, "uint8": 1, "int16": 2, "int64": 8, "float16": 2, "bool": 1}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


def read_tflite(tflite_path):
    """The bytes of a .tflite file; a clear error for a missing file or one that is not TFLite."""
    path = Path(tflite_path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file {path}. Convert the model first (convert.convert).")
    content = path.read_bytes()
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TFLite model (no TFL3 flatbuffer identifier).")
    return content


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple
    dtype: str
    bytes: int
    is_constant: bool  # True: stored in the model (ROM); False: an activation buffer (RAM)
    quantization: tuple = None  # (scale, zero_point) of a per-tensor quantized tensor, else None
    buffer: int = 0  # index of the file's buffer holding a constant's data (tensors may share one)
    stored_bytes: int = 0  # bytes of data that buffer holds in the file (0 for an activation)

    def __str__(self):
        kind = "constant" if self.is_constant else "activation"
        return f"#{self.index} {self.dtype}{list(self.shape)} {self.bytes} B {kind} ({self.name})"


@dataclass
class Operator:
    index: int
    type: str  # e.g. "CONV_2D"
    inputs: list  # of Tensor, in the operator's order (data, weights, bias)
    outputs: list
    options: dict = field(default_factory=dict)  # strides, padding, depth_multiplier, activation

    def __str__(self):
        options = ", ".join(f"{k}={v}" for k, v in self.options.items())
        ins = ", ".join(f"#{t.index}" for t in self.inputs)
        outs = ", ".join(f"#{t.index}" for t in self.outputs)
        return f"{self.index}: {self.type}({ins}) -> {outs}" + (f"  [{options}]" if options else "")


@dataclass
class Model:
    path: Path
    file_size: int
    tensors: list
    operators: list
    inputs: list  # of Tensor
    outputs: list
    metadata: dict = field(default_factory=dict)  # name -> bytes, e.g. the kit's provenance record
    content: bytes = field(default=b"", repr=False)  # the file itself, for the interpreters

    def __str__(self):
        lines = [f"{self.path.name}: {self.file_size} bytes, {len(self.operators)} operators"]
        lines += ["operators:"] + [f"  {op}" for op in self.operators]
        lines += ["tensors:"] + [f"  {t}" for t in self.tensors]
        return "\n".join(lines)


def load_model(tflite_path):
    """Reads a .tflite file into a Model; a Model given instead is returned as it is.

    Raises FileNotFoundError or ValueError naming the file when it is missing, not TFLite, damaged,
    or has more than one subgraph.
    """
    if isinstance(tflite_path, Model):
        return tflite_path
    from ai_edge_litert import schema_py_generated as schema

    path = Path(tflite_path)
    content = read_tflite(path)
    try:
        model = schema.ModelT.InitFromPackedBuf(content, 0)
        graph = model.subgraphs[0] if model.subgraphs else None
    except Exception as error:  # the generated reader raises struct/index errors on damaged files
        raise ValueError(f"{path} is damaged: its TFLite flatbuffer cannot be read ({type(error).__name__}). "
                         "Convert the model again.") from error
    if graph is None or len(model.subgraphs) != 1:
        count = len(model.subgraphs or [])
        raise ValueError(f"{path} has {count} subgraphs; the kit handles models with exactly one.")
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    operator_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def buffer_data(index):
        """The bytes stored in a buffer of the file (empty for an activation's buffer)."""
        data = model.buffers[index].data if 0 <= index < len(model.buffers or []) else None
        return b"" if data is None else bytes(bytearray(data))

    tensors = []
    for index, t in enumerate(graph.tensors):
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        dtype = type_names.get(t.type, f"type{t.type}")
        size = int(np.prod(shape, dtype=np.int64)) * DTYPE_BYTES.get(dtype, 1)
        stored = len(buffer_data(t.buffer))
        tensors.append(Tensor(index, t.name.decode(errors="replace") if t.name else "", shape, dtype, size,
                              stored > 0, _quantization(t.quantization), int(t.buffer), stored))

    operators = []
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        name = operator_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        operators.append(Operator(
            index, name,
            [tensors[i] for i in op.inputs if i >= 0],
            [tensors[i] for i in op.outputs if i >= 0],
            _options(op.builtinOptions),
        ))
    metadata = {m.name.decode(errors="replace"): buffer_data(m.buffer) for m in (model.metadata or [])}
    return Model(path, len(content), tensors, operators,
                 [tensors[i] for i in graph.inputs], [tensors[i] for i in graph.outputs], metadata, content)


def _quantization(parameters):
    """(scale, zero_point) of a tensor quantized with one scale; None for float or per-channel ones."""
    if parameters is None or parameters.scale is None or len(parameters.scale) != 1:
        return None
    return float(parameters.scale[0]), int(parameters.zeroPoint[0])


def _options(builtin_options):
    """The options a student needs, with readable names."""
    if builtin_options is None:
        return {}
    raw = vars(builtin_options)
    options = {}
    if "strideH" in raw:
        options["strides"] = (raw["strideH"], raw["strideW"])
    if "padding" in raw:
        options["padding"] = {0: "SAME", 1: "VALID"}.get(raw["padding"], raw["padding"])
    if "depthMultiplier" in raw:
        options["depth_multiplier"] = raw["depthMultiplier"]
    if "filterHeight" in raw:
        options["pool_size"] = (raw["filterHeight"], raw["filterWidth"])
    if "fusedActivationFunction" in raw:
        options["activation"] = ACTIVATIONS.get(raw["fusedActivationFunction"], raw["fusedActivationFunction"])
    return options
