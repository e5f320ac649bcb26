"""A picture of a .tflite model's graph, drawn from the file itself with matplotlib.

Operators are boxes from top (first) to bottom (last), with their options, weights and output
shape; arrows follow the activation tensors. For an interactive view, open the file in Netron
(https://netron.app), which shows the same graph.
"""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from tflite_file import load_model


def _label(op):
    lines = [op.type]
    options = [f"{k}={v}" for k, v in op.options.items() if v not in ("NONE", None)]
    for i in range(0, len(options), 2):
        lines.append(", ".join(options[i:i + 2]))
    weights = [t for t in op.inputs if t.is_constant and len(t.shape) > 1]
    for t in weights:
        lines.append(f"weights {t.dtype}{list(t.shape)}")
    lines.append(f"-> {op.outputs[0].dtype}{list(op.outputs[0].shape)}")
    return "\n".join(lines)


def plot_graph(tflite_path_or_model):
    """Draws the operators of a model (a path or a tflite_file.Model) and returns the figure."""
    m = load_model(tflite_path_or_model)
    step = 1.6
    height = step * (len(m.operators) + 1)
    figure, axis = plt.subplots(figsize=(6, 0.55 * height + 1))
    producer = {}  # tensor index -> index of the operator that writes it (-1: model input)
    input_tensor = m.inputs[0]
    axis.text(0, 0, f"input {input_tensor.dtype}{list(input_tensor.shape)}", ha="center", va="center",
              fontsize=9, bbox={"boxstyle": "round", "facecolor": "#e0e0e0"})
    for t in m.inputs:
        producer[t.index] = -1
    for op in m.operators:
        y = -step * (op.index + 1)
        axis.add_patch(FancyBboxPatch((-1.8, y - 0.6), 3.6, 1.2, boxstyle="round,pad=0.05",
                                      facecolor="#cfe2f3", edgecolor="#3d6fa8"))
        axis.text(0, y, _label(op), ha="center", va="center", fontsize=8)
        for t in op.inputs:
            if t.index in producer:
                source = -step * (producer[t.index] + 1)
                skip = producer[t.index] != op.index - 1
                axis.annotate("", xy=(0, y + 0.65), xytext=(1.8 if skip else 0.0, source - 0.65),
                              arrowprops={"arrowstyle": "->", "color": "#555555",
                                          "connectionstyle": "arc3,rad=-0.4" if skip else "arc3"})
        for t in op.outputs:
            producer[t.index] = op.index
    axis.set_xlim(-2.6, 2.6)
    axis.set_ylim(-height, 0.8)
    axis.axis("off")
    axis.set_title(f"{m.path.name}: {len(m.operators)} operators, {m.file_size} bytes")
    figure.tight_layout()
    return figure
