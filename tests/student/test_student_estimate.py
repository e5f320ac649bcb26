"""Task 10: ROM, RAM and MAC formulas (student/estimate.py), on hand-made layers and on micro_kws_xs."""

import estimate
from student import estimate as student


def _equal(got, expected, what):
    assert got is not None, f"{what}: not implemented yet (returned None)"
    assert got == expected, f"{what}: got {got}, which is not what the formula gives for these arguments"


# --- ROM ---------------------------------------------------------------------------------------

def test_rom_counts_one_byte_per_int8_weight():
    _equal(student.estimate_rom([([16, 3, 3, 8], "int8")]), 16 * 3 * 3 * 8, "estimate_rom of an int8 kernel")


def test_rom_counts_four_bytes_per_int32_bias():
    _equal(student.estimate_rom([([16], "int32")]), 64, "estimate_rom of 16 int32 biases")


def test_rom_adds_up_weights_and_biases_of_all_layers():
    tensors = [([1, 5, 4, 4], "int8"), ([4], "int32"), ([4, 2000], "int8"), ([4], "int32")]
    _equal(student.estimate_rom(tensors), 80 + 16 + 8000 + 16, "estimate_rom of micro_kws_xs's tensors")


def test_rom_of_a_float_model_counts_four_bytes_per_weight():
    _equal(student.estimate_rom([([10, 20], "float32"), ([10], "float32")]), 4 * 210, "estimate_rom of float32 tensors")


# --- RAM ---------------------------------------------------------------------------------------

def _ram(layers):
    result = student.estimate_ram(layers)
    assert result is not None, "estimate_ram: not implemented yet (returned None)"
    assert len(result) == 2, f"estimate_ram must return (best_case, worst_case), got {result!r}"
    return result


def test_ram_best_case_is_the_largest_pair_of_buffers_in_use_together():
    best, _ = _ram([(100, 300), (300, 50), (50, 400), (400, 10)])
    assert best == 450, f"best case: expected 450 (50 + 400 at the third operator), got {best}"


def test_ram_worst_case_gives_every_buffer_its_own_memory():
    _, worst = _ram([(100, 300), (300, 50), (50, 400), (400, 10)])
    assert worst == 100 + 300 + 50 + 400 + 10, f"worst case: expected 860 (input and every output), got {worst}"


def test_ram_of_a_single_operator():
    assert _ram([(1960, 4)]) == (1964, 1964), "one operator: both cases hold its input and output"


# --- MACs --------------------------------------------------------------------------------------

def test_fully_connected_macs_follow_the_notebook_example():
    _equal(student.estimate_fully_connected_macs(1, 4, 2000), 8000, "FULLY_CONNECTED 2000 -> 4")


def test_fully_connected_macs_grow_with_the_batch():
    _equal(student.estimate_fully_connected_macs(3, 10, 50), 1500, "FULLY_CONNECTED, batch 3, 50 -> 10")


def test_conv2d_macs_of_a_3x3_kernel():
    # 8 -> 16 channels, 3x3 kernel, output 10 x 12
    _equal(student.estimate_conv2d_macs(3, 3, 8, 16, 10, 12, 1, 1), 3 * 3 * 8 * 16 * 10 * 12, "CONV_2D 3x3")


def test_conv2d_macs_with_strides_count_each_output_once():
    # A 49 x 40 input, 10x4 kernel, stride 2, SAME padding: the output is 25 x 20.
    _equal(student.estimate_conv2d_macs(10, 4, 1, 64, 25, 20, 2, 2), 10 * 4 * 64 * 25 * 20, "CONV_2D strided SAME")


def test_conv2d_macs_with_valid_padding():
    # A 49 x 40 input, 10x4 kernel, stride 1, VALID padding: the output is 40 x 37.
    _equal(student.estimate_conv2d_macs(10, 4, 1, 28, 40, 37, 1, 1), 10 * 4 * 28 * 40 * 37, "CONV_2D VALID")


def test_depthwise_macs_see_one_input_channel_per_output():
    _equal(student.estimate_depthwise_conv2d_macs(3, 3, 16, 16, 10, 10, 1, 1, 1), 3 * 3 * 16 * 100, "DEPTHWISE_CONV_2D")


def test_depthwise_macs_with_a_depth_multiplier():
    # micro_kws_xs: 1 input channel, depth multiplier 4, 5x4 kernel, stride 2 -> 25 x 20 x 4
    _equal(student.estimate_depthwise_conv2d_macs(5, 4, 1, 4, 25, 20, 4, 2, 2), 40000, "DEPTHWISE_CONV_2D multiplier 4")


# --- The whole int8 micro_kws_xs: your estimates against what the file and the planner say ---------
# (The exact figures are checked again at grading.)

def test_micro_kws_xs_rom_is_what_its_weights_and_biases_take_in_the_file(micro_kws_xs_int8):
    m = estimate.load_model(micro_kws_xs_int8)
    got = estimate.estimate_model_rom(m)
    assert got is not None, "ROM of micro_kws_xs: not implemented yet (returned None)"
    assert got == sum(t.bytes for t in estimate.weight_tensors(m)), (
        "ROM of micro_kws_xs: your estimate differs from the bytes its weights and biases take in the "
        ".tflite file. Check the bytes per element of each dtype and that every tensor counts.")


def test_micro_kws_xs_ram_matches_the_memory_planner_and_the_unplanned_sum(micro_kws_xs_int8):
    m = estimate.load_model(micro_kws_xs_int8)
    got = estimate.estimate_model_ram(m)
    assert got is not None, "RAM of micro_kws_xs: not implemented yet (returned None)"
    best, worst = got
    assert best == estimate.arena_usage(m)["head"], (
        "RAM best case of micro_kws_xs: your estimate differs from what the memory planner needs for the "
        "activations. Which buffers are in use at the same time?")
    assert worst == sum(t.bytes for t in m.tensors if not t.is_constant), (
        "RAM worst case of micro_kws_xs: your estimate differs from the sum of all activation buffers.")
