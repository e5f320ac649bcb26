"""Task 10: ROM, RAM and MAC formulas (student/estimate.py).

These tests check properties every correct formula has, and agreement with what the kit measures
on the notebook's own model, micro_kws_xs. They do not state the formulas: deriving them is the
task (student/answers.md asks for the derivations). Your grader checks exact figures on other
layers and models.
"""

import estimate
from student import estimate as student


def _value(got, what):
    assert got is not None, f"{what}: not implemented yet (returned None)"
    assert isinstance(got, int) and not isinstance(got, bool), f"{what}: expected an int, got {type(got).__name__}"
    return got


def _rom(tensors):
    return _value(student.estimate_rom(tensors), "estimate_rom")


def _ram(layers):
    result = student.estimate_ram(layers)
    assert result is not None, "estimate_ram: not implemented yet (returned None)"
    assert isinstance(result, tuple) and len(result) == 2, (
        f"estimate_ram must return (best_case, worst_case), got {result!r}")
    return tuple(_value(value, "estimate_ram") for value in result)


CONV = dict(h_kernel=3, w_kernel=3, c_in=8, c_out=16, h_out=10, w_out=12, h_stride=1, w_stride=1)
DEPTHWISE = dict(h_kernel=3, w_kernel=3, c_in=16, c_out=16, h_out=10, w_out=12, depth_multiplier=1, h_stride=1,
                 w_stride=1)


def _conv(**changes):
    arguments = {**CONV, **changes}  # passed by position, in the order of the function's arguments
    return _value(student.estimate_conv2d_macs(*arguments.values()), "estimate_conv2d_macs")


def _depthwise(**changes):
    arguments = {**DEPTHWISE, **changes}
    return _value(student.estimate_depthwise_conv2d_macs(*arguments.values()), "estimate_depthwise_conv2d_macs")


# --- ROM ---------------------------------------------------------------------------------------

def test_rom_of_no_tensors_is_zero():
    assert _rom([]) == 0, "no tensors take no bytes"


def test_rom_of_several_tensors_is_the_sum_of_each_alone():
    a, b = ([8, 3, 3, 4], "int8"), ([8], "int32")
    assert _rom([a, b]) == _rom([a]) + _rom([b]), "the bytes of several tensors should add up"


def test_rom_does_not_depend_on_how_the_elements_are_arranged():
    assert _rom([([6, 4], "int8")]) == _rom([([4, 6], "int8")]) == _rom([([24], "int8")]), (
        "tensors of the same type with as many elements should take as many bytes")


def test_rom_grows_with_the_element_count_and_the_width_of_the_type():
    assert 0 < _rom([([10], "int8")]) < _rom([([20], "int8")]), "more elements should take more bytes"
    assert _rom([([10], "int8")]) < _rom([([10], "int16")]) < _rom([([10], "int32")]), (
        "a wider type should take more bytes for as many elements")


def test_micro_kws_xs_rom_is_what_its_weights_and_biases_take_in_the_file(micro_kws_xs_int8):
    m = estimate.load_model(micro_kws_xs_int8)
    got = estimate.estimate_model_rom(m)
    assert got is not None, "ROM of micro_kws_xs: not implemented yet (returned None)"
    assert got == sum(t.bytes for t in estimate.weight_tensors(m)), (
        "ROM of micro_kws_xs: your estimate differs from the bytes its weights and biases take in the "
        ".tflite file (the notebook's section 10.1 prints the tensors).")


# --- RAM ---------------------------------------------------------------------------------------

def test_ram_with_planning_never_needs_more_than_without():
    for layers in ([(100, 300), (300, 50), (50, 400), (400, 10)], [(1960, 2000), (2000, 4)], [(64, 64)]):
        best, worst = _ram(layers)
        assert 0 < best <= worst, f"{layers}: expected 0 < best case <= worst case, got {(best, worst)}"


def test_ram_of_a_single_operator_has_nothing_to_share():
    best, worst = _ram([(1960, 4)])
    assert best == worst, f"one operator: planning has nothing to share, yet best {best} != worst {worst}"


def test_ram_without_planning_grows_with_every_operator_added():
    layers = [(100, 300), (300, 50)]
    assert _ram(layers + [(50, 20)])[1] > _ram(layers)[1], "another buffer should need more memory without planning"


def test_ram_with_planning_does_not_grow_with_small_operators_at_the_end():
    layers = [(100, 300), (300, 50)]
    assert _ram(layers + [(50, 20)])[0] == _ram(layers)[0], (
        "with planning, a small last operator can reuse memory freed before it")


def test_micro_kws_xs_best_case_ram_is_what_the_memory_planner_needs(micro_kws_xs_int8):
    m = estimate.load_model(micro_kws_xs_int8)
    got = estimate.estimate_model_ram(m)
    assert got is not None, "RAM of micro_kws_xs: not implemented yet (returned None)"
    assert got[0] == estimate.arena_usage(m)["head"], (
        "RAM best case of micro_kws_xs: your estimate differs from the arena TFLite-Micro's planner needs "
        "for the activations (the notebook's section 10.2 prints it).")


# --- MACs --------------------------------------------------------------------------------------

def test_fully_connected_macs_follow_the_notebook_example():
    got = _value(student.estimate_fully_connected_macs(1, 4, 2000), "estimate_fully_connected_macs")
    assert got == 8000, f"the notebook's example, 1 x 4 x 2000: got {got}"


def test_conv2d_macs_grow_with_every_dimension_of_the_work():
    base = _conv()
    for name in ("h_kernel", "w_kernel", "c_in", "c_out", "h_out", "w_out"):
        assert _conv(**{name: 2 * CONV[name]}) > base, f"CONV_2D: more {name} should mean more MACs"


def test_conv2d_without_outputs_needs_no_macs():
    assert _conv(c_out=0) == 0 and _conv(h_out=0) == 0, "no output values, no MACs"


def test_depthwise_macs_grow_with_the_kernel_and_the_output():
    base = _depthwise()
    for name in ("h_kernel", "w_kernel", "h_out", "w_out"):
        assert _depthwise(**{name: 20}) > base, f"DEPTHWISE_CONV_2D: more {name} should mean more MACs"


def test_depthwise_needs_fewer_macs_than_a_standard_convolution_of_the_same_shapes():
    shapes = dict(h_kernel=3, w_kernel=3, c_in=16, c_out=16, h_out=10, w_out=12, h_stride=1, w_stride=1)
    assert _depthwise() < _conv(**shapes), "a depthwise convolution should need fewer MACs than a standard one"


def test_micro_kws_xs_macs_are_the_sum_of_its_layers(micro_kws_xs_int8):
    m = estimate.load_model(micro_kws_xs_int8)
    total = estimate.estimate_model_macs(m)
    assert total is not None, f"MACs of micro_kws_xs: not implemented yet ({estimate.missing_mac_formulas(m)})"
    depthwise = next(row["macs"] for row in estimate.layer_table(m) if row["operator"] == "DEPTHWISE_CONV_2D")
    assert total == depthwise + 8000, (
        "MACs of micro_kws_xs: expected its depthwise layer's MACs plus the 8000 of its dense layer "
        "(the notebook's example)")
