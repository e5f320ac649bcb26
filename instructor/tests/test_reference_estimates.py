"""The estimate harness with the instructor's reference formulas: the numbers the lab expects."""

import keras
import pytest

import convert
import estimate
from instructor.solution import estimate as reference

pytestmark = pytest.mark.slow


def test_micro_kws_xs_needs_48000_macs(converted_xs):
    assert estimate.estimate_model_macs(estimate.load_model(converted_xs[1]), reference) == (
        25 * 20 * 4 * (5 * 4) + 2000 * 4)


def test_micro_kws_xs_rom_is_its_weights_and_biases(converted_xs):
    # depthwise kernel 5x4x4 int8 + 4 int32 biases, dense 4x2000 int8 + 4 int32 biases
    assert estimate.estimate_model_rom(estimate.load_model(converted_xs[1]), reference) == 80 + 16 + 8000 + 16


def test_micro_kws_xs_best_case_ram_is_the_tflite_micro_arena_head(converted_xs):
    best_case, worst_case = estimate.estimate_model_ram(estimate.load_model(converted_xs[1]), reference)
    assert best_case == 4000 == estimate.measure_model_ram(converted_xs[1])["head"]


def test_micro_kws_xs_worst_case_ram_is_the_sum_of_its_activations(converted_xs):
    m = estimate.load_model(converted_xs[1])
    _, worst_case = estimate.estimate_model_ram(m, reference)
    assert worst_case == sum(t.bytes for t in m.tensors if not t.is_constant) == 1960 * 2 + 2000 * 2 + 4 * 2


def _macs_from_layer_shapes(model):
    """An independent MAC count from the Keras layers' shapes."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += layer.kernel_size[0] * layer.kernel_size[1] * h * w * c
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            total += layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1] * h * w * c
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


@pytest.mark.parametrize("name", ["ds_cnn", "cnn"])
def test_macs_match_a_count_from_the_layer_shapes(untrained_int8, name):
    model, path = untrained_int8[name]
    assert estimate.estimate_model_macs(estimate.load_model(path), reference) == _macs_from_layer_shapes(model)


def test_the_layer_table_has_a_row_per_operator(converted_xs):
    rows = estimate.layer_table(estimate.load_model(converted_xs[1]), reference)
    assert [r["operator"] for r in rows][1] == "DEPTHWISE_CONV_2D"
    assert rows[1]["macs"] == 40000 and rows[3]["macs"] == 8000


@pytest.fixture(scope="module")
def reference_design_int8(audio_processor, model_settings, tmp_path_factory):
    """The reference design (instructor/solution/model.py), untrained, as int8."""
    from instructor.solution.model import create_student_model

    model = create_student_model(model_settings)
    path = convert.convert(model, audio_processor, None, True, "int8",
                           tmp_path_factory.mktemp("design") / "design.tflite")
    return model, path


def test_the_reference_design_uses_allowed_operators_within_the_memory_and_compute_limits(reference_design_int8):
    import challenge

    model, path = reference_design_int8
    limits = challenge.load_challenge()["limits"]
    m = estimate.load_model(path)
    assert {op.type for op in m.operators} <= set(limits["allowed_operators"])
    assert estimate.rom_bytes(m) <= limits["max_rom_bytes"] // 4  # with room for a larger student design
    assert estimate.plan_memory(m).peak <= limits["max_ram_bytes"]
    assert estimate.estimate_model_macs(m, reference) == _macs_from_layer_shapes(model) <= limits["max_macs"] // 2
    assert challenge.architecture_problems(m, model) == []


def test_the_reference_formulas_count_no_transposed_convolution(model_settings, audio_processor, tmp_path):
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), name="input")
    x = keras.layers.Reshape((49, 40, 1))(inputs)
    x = keras.layers.Conv2DTranspose(4, (3, 3), padding="same")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(x))
    path = convert.convert(keras.Model(inputs, outputs), audio_processor, None, True, "int8", tmp_path / "t.tflite")
    with pytest.raises(ValueError, match="TRANSPOSE_CONV"):
        estimate.estimate_model_macs(estimate.load_model(path), reference)
