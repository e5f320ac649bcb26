"""ROM, RAM and compute (MAC) estimates of a .tflite model, and the truth to compare them with.

`estimate_model_rom`, `estimate_model_ram` and `estimate_model_macs` hand plain numbers from the
model's view (`load_model`, from tflite_file.py) to a set of formulas: the student's in
student/estimate.py unless others are passed (the grader passes the reference ones). The
student's file is imported only when an estimate is asked for, never by `import estimate`.

The truth: `measure_model_ram` runs the model under TFLite-Micro and reads its arena usage, and
`plan_memory` is a reference memory planner for any graph (branches and several inputs too):
TFLite-Micro's greedy strategy, and an exact optimum for small graphs.
"""

import itertools
import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

# The model view lives in tflite_file.py; the lab's notebook calls it as estimate.load_model.
from tflite_file import Model, Operator, Tensor, load_model  # noqa: F401

NOT_IMPLEMENTED = "not implemented yet"
# How each operator counts toward the MACs: the layers with weights by the MAC formulas (the
# student's, or the reference ones the grader passes); elementwise arithmetic one operation per
# output value; the rest moves, pools or normalizes values without weights and counts none, as the
# lab defines MACs. An operator in none of these has no count: the challenge refuses it.
WEIGHT_OPERATORS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
ELEMENTWISE_OPERATORS = ("ADD", "SUB", "MUL")
NO_MAC_OPERATORS = ("RESHAPE", "SOFTMAX", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "RELU", "RELU6", "QUANTIZE",
                    "DEQUANTIZE")
NO_MAC_RULE = "no MAC rule"
TFLM_BUFFER_ALIGNMENT = 16  # TFLite-Micro aligns every arena buffer to 16 bytes


# --- The student's formulas applied to the model ------------------------------------------------


def weight_tensors(m):
    """The constant weight and bias tensors of the FULLY_CONNECTED and convolution operators."""
    return [t for op in m.operators if op.type in WEIGHT_OPERATORS for t in op.inputs[1:] if t.is_constant]


def rom_bytes(m):
    """Bytes of every constant the file stores for the graph, each buffer once: weights, biases, the
    shapes of RESHAPE, anything an operator reads from flash. The challenge's ROM."""
    return sum({t.buffer: t.stored_bytes for t in m.tensors if t.is_constant}.values())


def student_formulas():
    """The student's formulas (student/estimate.py), imported when an estimate is first asked for."""
    import student.estimate

    return student.estimate


def estimate_model_rom(m, formulas=None):
    """Bytes of weights and biases by the formulas' estimate_rom, or None while not implemented."""
    formulas = formulas or student_formulas()
    return formulas.estimate_rom([(list(t.shape), t.dtype) for t in weight_tensors(m)])


def other_constant_bytes(m):
    """Bytes of the constants that are not weights or biases (e.g. the shapes of RESHAPE)."""
    counted = {t.index for t in weight_tensors(m)}
    return sum(t.bytes for t in m.tensors if t.is_constant and t.index not in counted)


def ram_layers(m):
    """(input_bytes, output_bytes) of each operator's activation tensors, in execution order."""
    return [(sum(t.bytes for t in op.inputs if not t.is_constant), sum(t.bytes for t in op.outputs))
            for op in m.operators]


def estimate_model_ram(m, formulas=None):
    """(best_case, worst_case) bytes by the formulas' estimate_ram, or None while not implemented."""
    formulas = formulas or student_formulas()
    return formulas.estimate_ram(ram_layers(m))


def operator_macs(op, formulas=None):
    """MACs of one operator: by the given formulas (the student's by default) for the layers with
    weights, None while such a formula is not implemented. Raises ValueError for an operator the
    lab has no MAC rule for (see WEIGHT_OPERATORS above)."""
    if op.type in ELEMENTWISE_OPERATORS:
        return int(np.prod(op.outputs[0].shape))
    if op.type in NO_MAC_OPERATORS:
        return 0
    if op.type not in WEIGHT_OPERATORS:
        raise ValueError(f"{op.type} (operator {op.index}): the lab has no MAC rule for it, so the challenge "
                         "refuses it. Build the model from the layers student/model.py names.")
    formulas = formulas or student_formulas()
    if op.type == "FULLY_CONNECTED":
        weights, output = op.inputs[1], op.outputs[0]
        h_out = int(np.prod(output.shape[:-1]))
        return formulas.estimate_fully_connected_macs(h_out, output.shape[-1], weights.shape[-1])
    data, weights, output = op.inputs[0], op.inputs[1], op.outputs[0]
    _, h_kernel, w_kernel, _ = weights.shape
    _, h_out, w_out, c_out = output.shape
    c_in = data.shape[-1]
    h_stride, w_stride = op.options.get("strides", (1, 1))
    if op.type == "CONV_2D":
        return formulas.estimate_conv2d_macs(h_kernel, w_kernel, c_in, c_out, h_out, w_out, h_stride, w_stride)
    depth_multiplier = op.options.get("depth_multiplier") or c_out // c_in
    return formulas.estimate_depthwise_conv2d_macs(
        h_kernel, w_kernel, c_in, c_out, h_out, w_out, depth_multiplier, h_stride, w_stride)


def uncounted_operators(m):
    """The operator types of the model that the lab has no MAC rule for (the challenge refuses them)."""
    known = WEIGHT_OPERATORS + ELEMENTWISE_OPERATORS + NO_MAC_OPERATORS
    return sorted({op.type for op in m.operators if op.type not in known})


def estimate_model_macs(m, formulas=None):
    """Total MACs by the formulas, or None while any formula the model needs is not implemented.
    Raises ValueError naming an operator the lab has no MAC rule for."""
    counts = [operator_macs(op, formulas) for op in m.operators]
    return None if None in counts else int(sum(counts))


def missing_mac_formulas(m, formulas=None):
    """The operator types whose MAC formula is not implemented yet."""
    return sorted({op.type for op in m.operators
                   if op.type in WEIGHT_OPERATORS and operator_macs(op, formulas) is None})


def layer_table(m, formulas=None):
    """One row per operator: type, output shape, constant bytes, activation bytes, MACs (formulas')."""
    rows = []
    for op in m.operators:
        macs = NO_MAC_RULE if op.type in uncounted_operators(m) else operator_macs(op, formulas)
        rows.append({
            "operator": op.type,
            "output_shape": op.outputs[0].shape,
            "constant_bytes": sum(t.bytes for t in op.inputs if t.is_constant),
            "activation_bytes": sum(t.bytes for t in op.outputs),
            "macs": NOT_IMPLEMENTED if macs is None else macs,
        })
    return rows


def print_layer_table(rows):
    """Prints the rows of layer_table."""
    print(f"{'operator':<20}{'output shape':<18}{'const. B':>10}{'activ. B':>10}{'MACs':>22}")
    for row in rows:
        print(f"{row['operator']:<20}{str(list(row['output_shape'])):<18}{row['constant_bytes']:>10}"
              f"{row['activation_bytes']:>10}{str(row['macs']):>22}")


def print_estimate(what, value, function):
    """One line: the estimate, or which function of student/estimate.py is still to be written."""
    if value is None:
        print(f"{what}: {NOT_IMPLEMENTED} ({function} in student/estimate.py)")
    else:
        print(f"{what}: {value}")


# --- The truth: TFLite-Micro's own arena ---------------------------------------------------------


def measure_model_ram(tflite_path):
    """Runs the model (a path or Model) once under TFLite-Micro; returns its arena use {"head", "tail", "total"} bytes.

    head is the planned memory of the activation buffers (what the RAM estimates are about), tail
    the interpreter's persistent data (tensor structs, quantization parameters, kernel data).
    The numbers come from the RecordingMicroAllocator's report, which is printed by C++ code to
    the process's stderr; it is captured there.
    """
    from runtimes import TFLM_MISSING, tflite_micro_available

    if not tflite_micro_available():
        raise RuntimeError(TFLM_MISSING + " Use estimate.arena_usage(m) for the planner's figure.")
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(load_model(tflite_path).content)
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
    interpreter.invoke()
    report = _capture_stderr(interpreter.print_allocations)
    usage = {}
    for key in ("total", "head", "tail"):
        line = next((text for text in report.splitlines() if f"Arena allocation {key}" in text), None)
        if line is None:
            raise RuntimeError(f"TFLite-Micro's allocation report has no '{key}' line:\n{report}")
        usage[key] = int(line.split(f"Arena allocation {key}")[1].split()[0])
    return usage


def arena_usage(m):
    """The arena TFLite-Micro plans for the model: {"head", "total", "source"} bytes.

    Measured by TFLite-Micro where it is installed; elsewhere head comes from the kit's greedy
    planner, which plans the same strategy (equal on the zoo's models, as the tests check on
    Linux), and total (which needs the interpreter's own data) is None.
    """
    from runtimes import tflite_micro_available

    m = load_model(m)
    if tflite_micro_available():
        measured = measure_model_ram(m)
        return {"head": measured["head"], "total": measured["total"], "source": "TFLite-Micro"}
    return {"head": plan_memory(m).peak, "total": None,
            "source": "the kit's planner (TFLite-Micro is not installed here)"}


def _capture_stderr(function):
    """Calls function and returns what it (or C code it calls) wrote to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            function()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        return capture.read().decode(errors="replace")


# --- A reference memory planner ------------------------------------------------------------------


@dataclass
class Buffer:
    tensor: Tensor
    size: int  # bytes, aligned
    first: int  # index of the operator that writes it (0 for model inputs)
    last: int  # index of the last operator that reads it (the last operator for model outputs)

    def overlaps_in_time(self, other):
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    buffers: list
    offsets: list  # byte offset of each buffer in the arena
    peak: int  # arena bytes needed
    method: str


def _align(size, alignment):
    return (size + alignment - 1) // alignment * alignment


def buffer_lifetimes(m, alignment=TFLM_BUFFER_ALIGNMENT):
    """Every activation tensor as a Buffer with its aligned size and lifetime in operator steps."""
    first, last = {}, {}
    for t in m.inputs:
        first[t.index] = 0
    for op in m.operators:
        for t in op.outputs:
            first.setdefault(t.index, op.index)
        for t in op.inputs:
            if not t.is_constant:
                last[t.index] = op.index
    for t in m.outputs:
        last[t.index] = len(m.operators) - 1
    buffers = []
    for index in sorted(first):
        tensor = m.tensors[index]
        buffers.append(Buffer(tensor, _align(tensor.bytes, alignment), first[index], last.get(index, first[index])))
    return buffers


def live_lower_bound(buffers):
    """No plan can use less than the largest total size of buffers alive at one operator step."""
    steps = range(min(b.first for b in buffers), max(b.last for b in buffers) + 1)
    return max(sum(b.size for b in buffers if b.first <= step <= b.last) for step in steps)


def _place(order, buffers):
    """Places buffers in the given order, each at the lowest offset free of time-overlapping ones."""
    offsets = [None] * len(buffers)
    for i in order:
        taken = sorted((offsets[j], offsets[j] + buffers[j].size) for j in range(len(buffers))
                       if offsets[j] is not None and buffers[i].overlaps_in_time(buffers[j]))
        offset = 0
        for start, end in taken:
            if offset + buffers[i].size <= start:
                break
            offset = max(offset, end)
        offsets[i] = offset
    return offsets


def plan_greedy(buffers):
    """TFLite-Micro's greedy strategy: largest buffers first, each at the lowest free offset."""
    order = sorted(range(len(buffers)), key=lambda i: -buffers[i].size)
    offsets = _place(order, buffers)
    return MemoryPlan(buffers, offsets, max(o + b.size for o, b in zip(offsets, buffers)), "greedy")


def plan_optimal(buffers, max_buffers=9):
    """The smallest arena any placement achieves, by trying every placement order.

    Placing buffers lowest-first in the order of their offsets in an optimal plan reproduces that
    plan or a better one, so trying every order finds the optimum. Exponential: small graphs only.
    """
    if len(buffers) > max_buffers:
        raise ValueError(f"{len(buffers)} buffers: the exact planner handles at most {max_buffers}.")
    best = plan_greedy(buffers)
    bound = live_lower_bound(buffers)
    if best.peak > bound:
        for order in itertools.permutations(range(len(buffers))):
            offsets = _place(order, buffers)
            peak = max(o + b.size for o, b in zip(offsets, buffers))
            if peak < best.peak:
                best = MemoryPlan(buffers, offsets, peak, "optimal")
                if peak == bound:
                    break
    return MemoryPlan(buffers, best.offsets, best.peak, "optimal")


def plan_memory(m, method="greedy", alignment=TFLM_BUFFER_ALIGNMENT):
    """A memory plan of the model's activation buffers: "greedy" (TFLite-Micro's) or "optimal"."""
    buffers = buffer_lifetimes(m, alignment)
    if method == "greedy":
        return plan_greedy(buffers)
    if method == "optimal":
        return plan_optimal(buffers)
    raise ValueError(f"method must be 'greedy' or 'optimal', got {method!r}.")


def compare_plans(m):
    """Arena bytes of the greedy plan, the optimal plan (None for graphs too large) and TFLite-Micro
    (None where it is not installed)."""
    from runtimes import tflite_micro_available

    buffers = buffer_lifetimes(m)
    try:
        optimal = plan_optimal(buffers).peak
    except ValueError:
        optimal = None
    return {"greedy": plan_greedy(buffers).peak, "optimal": optimal,
            "lower_bound": live_lower_bound(buffers),
            "tflite_micro_head": measure_model_ram(m)["head"] if tflite_micro_available() else None}


def plot_memory_plan(plan, title=None):
    """Buffers as bars: operator steps across, arena offset up, labelled with their size.

    A label sits on its bar; where small buffers lie too close for that, it moves to the nearest
    free height, with a line to its bar, so that no two labels overlap.
    """
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    colours = plt.cm.tab20.colors
    for i, (buffer, offset) in enumerate(zip(plan.buffers, plan.offsets)):
        axis.add_patch(plt.Rectangle((buffer.first - 0.4, offset), buffer.last - buffer.first + 0.8,
                                     buffer.size, facecolor=colours[i % 20], edgecolor="black", alpha=0.8))
    axis.set_xlim(-0.6, max(b.last for b in plan.buffers) + 0.6)
    top = plan.peak * 1.05
    axis.set_ylim(0, top)
    axis.axhline(plan.peak, color="red", linestyle="--", linewidth=1)
    axis.set_xlabel("operator step")
    axis.set_ylabel("arena offset [bytes]")
    axis.set_title(title or f"{plan.method} memory plan: {plan.peak} bytes")
    figure.tight_layout()

    renderer = figure.canvas.get_renderer()
    placed = []  # the labels' boxes on the canvas
    for buffer, offset in sorted(zip(plan.buffers, plan.offsets), key=lambda pair: pair[1] + pair[0].size / 2):
        anchor = (buffer.first - 0.35, offset + buffer.size / 2)
        label = axis.text(*anchor, f"#{buffer.tensor.index}: {buffer.size} B", va="center", fontsize=8)
        box = label.get_window_extent(renderer)
        step = box.height * 1.1 * top / axis.get_window_extent(renderer).height  # one label's height, in bytes
        start = min(max(anchor[1], step / 2), top - step / 2)  # a label never sticks out of the axes
        heights = [start + sign * k * step for k in range(1, 200) for sign in (1, -1)]
        for y in [start] + [y for y in heights if step / 2 <= y <= top - step / 2]:
            label.set_y(y)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
        if label.get_position()[1] != anchor[1]:
            axis.annotate("", xy=(anchor[0] + 0.05, anchor[1]), xytext=(anchor[0], label.get_position()[1]),
                          arrowprops={"arrowstyle": "-", "color": "0.3", "linewidth": 0.6})
        placed.append(box)
    return figure


def plot_estimates(quantities):
    """One small bar chart per quantity: your estimate beside the measured value, the limit a line.

    quantities: {name: {"estimate": value or None, "measured": value or None, "limit": value or None}}.
    A missing value leaves its bar out (an estimate not implemented yet is labelled so).
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(quantities), figsize=(3.2 * len(quantities), 3.2))
    for axis, (name, values) in zip(np.atleast_1d(axes), quantities.items()):
        bars = [(label, values.get(key)) for label, key in (("your estimate", "estimate"), ("measured", "measured"))]
        for position, (label, value) in enumerate(bars):
            if value is None:
                axis.text(position, 0, "not\nimplemented" if label == "your estimate" else "-", ha="center",
                          va="bottom", fontsize=8)
            else:
                axis.bar(position, value, color=("tab:blue", "tab:green")[position])
                axis.text(position, value, f"{value:,}", ha="center", va="bottom", fontsize=8)
        if values.get("limit") is not None:
            axis.axhline(values["limit"], color="tab:red", linestyle="--", linewidth=1)
            axis.text(1.45, values["limit"], "limit", color="tab:red", ha="right", va="bottom", fontsize=8)
        axis.set_xticks([0, 1], [label for label, _ in bars])
        axis.set_title(name)
    figure.tight_layout()
    return figure
