"""Tasks (section 10): formulas for the ROM, RAM and compute (MACs) of an int8 model.

estimate.py reads the .tflite graph and calls these functions with plain numbers, so each one is
the formula you derive on paper (write the derivation into student/answers.md). Return None while
a function is not implemented.
"""


def estimate_rom(weight_tensors):
    """Bytes needed in flash (ROM) to store the constant weights and biases of the model.

    Args:
        weight_tensors: One (shape, dtype) pair per weight or bias tensor of the FULLY_CONNECTED,
            CONV_2D and DEPTHWISE_CONV_2D operators, e.g. ([1, 5, 4, 4], "int8") or ([4], "int32").
            shape is a list of ints; dtype is one of "int8", "int16", "int32" and "float32" (a
            float model's weights). The list may be empty.

    Returns:
        The number of bytes (int) these tensors take, stored one after the other without padding;
        0 for an empty list.
    """
    # TODO: your ROM formula.
    return None


def estimate_ram(layers):
    """Bytes of RAM for the activation buffers (intermediate tensors) of a linear model.

    Args:
        layers: One (input_bytes, output_bytes) pair of ints per operator, in execution order: the
            size of the activation tensor the operator reads and of the one it writes. The output
            of one operator is the input of the next; the first input is the model's input. At
            least one operator.

    Returns:
        (best_case, worst_case), a tuple of two ints in bytes: with optimal memory planning, and
        with no planning (no two buffers share memory). Assume the graph is processed in a linear
        way, so that at most two buffers are in use at the same time.
    """
    # TODO: your two RAM formulas.
    return None


def estimate_fully_connected_macs(h_out, w_out, h_filter):
    """Multiply-accumulate operations of a FULLY_CONNECTED layer.

    Args:
        h_out: Rows of the output (the batch: 1 on the microcontroller).
        w_out: Columns of the output (the units of the layer).
        h_filter: Rows of the weight matrix (the input features).

    Returns:
        The number of multiply-accumulate operations (int) for one invocation.
    """
    # TODO: your formula (the notebook works through this one as the example).
    return None


def estimate_conv2d_macs(h_kernel, w_kernel, c_in, c_out, h_out, w_out, h_stride, w_stride):
    """Multiply-accumulate operations of a CONV_2D layer.

    Args:
        h_kernel, w_kernel: Kernel height and width.
        c_in, c_out: Input and output channels.
        h_out, w_out: Output height and width (padding and strides already applied).
        h_stride, w_stride: Strides. Every argument is given; your formula uses those it needs.

    Returns:
        The number of multiply-accumulate operations (int) for one invocation.
    """
    # TODO: your formula.
    return None


def estimate_depthwise_conv2d_macs(h_kernel, w_kernel, c_in, c_out, h_out, w_out, depth_multiplier,
                                   h_stride, w_stride):
    """Multiply-accumulate operations of a DEPTHWISE_CONV_2D layer.

    Args:
        h_kernel, w_kernel: Kernel height and width.
        c_in, c_out: Input and output channels (c_out = c_in * depth_multiplier).
        h_out, w_out: Output height and width (padding and strides already applied).
        depth_multiplier: Output channels per input channel.
        h_stride, w_stride: Strides. Every argument is given; your formula uses those it needs.

    Returns:
        The number of multiply-accumulate operations (int) for one invocation.
    """
    # TODO: your formula.
    return None
