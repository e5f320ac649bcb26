"""Reference solution: ROM, RAM and MAC formulas."""

BYTES_PER_ELEMENT = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "int64": 8}


def estimate_rom(weight_tensors):
    """Sum over weight and bias tensors of element count x bytes per element."""
    total = 0
    for shape, dtype in weight_tensors:
        elements = 1
        for dimension in shape:
            elements *= dimension
        total += elements * BYTES_PER_ELEMENT[dtype]
    return total


def estimate_ram(layers):
    """Best case: the largest input + output of one operator; worst case: every buffer apart."""
    best_case = max(input_bytes + output_bytes for input_bytes, output_bytes in layers)
    worst_case = layers[0][0] + sum(output_bytes for _, output_bytes in layers)
    return best_case, worst_case


def estimate_fully_connected_macs(h_out, w_out, h_filter):
    return h_out * w_out * h_filter


def estimate_conv2d_macs(h_kernel, w_kernel, c_in, c_out, h_out, w_out, h_stride, w_stride):
    # Strides are already in h_out and w_out: each output value costs one kernel window.
    return h_kernel * w_kernel * c_in * c_out * h_out * w_out


def estimate_depthwise_conv2d_macs(h_kernel, w_kernel, c_in, c_out, h_out, w_out, depth_multiplier,
                                   h_stride, w_stride):
    # Each of the c_out = c_in * depth_multiplier output channels sees one input channel only.
    return h_kernel * w_kernel * c_out * h_out * w_out
