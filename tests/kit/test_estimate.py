"""estimate.py: the model view, the harness around the student's formulas, and the truth."""

import types

import keras
import numpy as np
import pytest

import convert
import estimate
import models

pytestmark = pytest.mark.slow

STUBS = types.SimpleNamespace(
    estimate_rom=lambda weight_tensors: None,
    estimate_ram=lambda layers: None,
    estimate_fully_connected_macs=lambda *args: None,
    estimate_conv2d_macs=lambda *args: None,
    estimate_depthwise_conv2d_macs=lambda *args: None,
)


@pytest.fixture(scope="module")
def int8_models(untrained_int8, audio_processor, model_settings, tmp_path_factory):
    """Untrained int8 ds_cnn, cnn and a residual model (weights do not change sizes or plans)."""
    built = {name: untrained_int8[name][0] for name in ("ds_cnn", "cnn")}
    paths = {name: untrained_int8[name][1] for name in ("ds_cnn", "cnn")}
    built["residual"] = _residual_model(model_settings)
    paths["residual"] = convert.convert(built["residual"], audio_processor, None, True, "int8",
                                        tmp_path_factory.mktemp("estimate") / "residual.tflite")
    return built, paths


def _residual_model(model_settings):
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), name="input")
    x = keras.layers.Reshape((49, 40, 1))(inputs)
    x = keras.layers.Conv2D(8, (3, 3), strides=(2, 2), padding="same", activation="relu")(x)
    branch = keras.layers.DepthwiseConv2D((3, 3), padding="same", activation="relu")(x)
    branch = keras.layers.Conv2D(8, (1, 1))(branch)
    x = keras.layers.ReLU()(keras.layers.Add()([x, branch]))
    x = keras.layers.AveragePooling2D(pool_size=x.shape[1:3])(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_load_model_lists_the_operators_in_execution_order(converted_xs):
    m = estimate.load_model(converted_xs[1])
    assert [op.type for op in m.operators] == ["RESHAPE", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]


def test_load_model_reads_the_depthwise_options(converted_xs):
    depthwise = estimate.load_model(converted_xs[1]).operators[1]
    assert depthwise.options == {"strides": (2, 2), "padding": "SAME", "depth_multiplier": 4, "activation": "RELU"}


def test_load_model_tells_weights_from_activations(converted_xs):
    m = estimate.load_model(converted_xs[1])
    depthwise = m.operators[1]
    data, weights, bias = depthwise.inputs
    assert not data.is_constant and data.shape == (1, 49, 40, 1) and data.bytes == 1960
    assert weights.is_constant and weights.shape == (1, 5, 4, 4) and weights.dtype == "int8"
    assert bias.is_constant and bias.dtype == "int32" and bias.bytes == 16
    assert "DEPTHWISE_CONV_2D" in str(m)


def test_load_model_refuses_a_file_that_is_not_tflite(tmp_path):
    (tmp_path / "x.tflite").write_bytes(b"0123456789")
    with pytest.raises(ValueError, match="not a TFLite model"):
        estimate.load_model(tmp_path / "x.tflite")


def test_the_harness_returns_none_while_the_formulas_return_nothing(converted_xs):
    m = estimate.load_model(converted_xs[1])
    assert estimate.estimate_model_rom(m, STUBS) is None
    assert estimate.estimate_model_ram(m, STUBS) is None
    assert estimate.estimate_model_macs(m, STUBS) is None
    assert estimate.missing_mac_formulas(m, STUBS) == ["DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]


def test_the_estimates_report_says_which_student_function_is_missing(capsys):
    estimate.print_estimate("Estimated ROM [B]", None, "estimate_rom")
    assert capsys.readouterr().out == "Estimated ROM [B]: not implemented yet (estimate_rom in student/estimate.py)\n"


def test_measured_ram_has_head_tail_and_total(converted_xs):
    usage = estimate.measure_model_ram(converted_xs[1])
    assert usage["total"] == usage["head"] + usage["tail"] and usage["tail"] > 0


@pytest.mark.parametrize("name", ["ds_cnn", "cnn"])
def test_greedy_plan_equals_the_tflite_micro_head(int8_models, name):
    _, paths = int8_models
    plan = estimate.plan_memory(estimate.load_model(paths[name]))
    assert plan.peak == estimate.measure_model_ram(paths[name])["head"]


def test_a_residual_model_is_planned_within_the_tflite_micro_head(int8_models):
    _, paths = int8_models
    m = estimate.load_model(paths["residual"])
    assert "ADD" in [op.type for op in m.operators]
    head = estimate.measure_model_ram(paths["residual"])["head"]
    bound = estimate.live_lower_bound(estimate.buffer_lifetimes(m))
    for method in ("greedy", "optimal"):
        plan = estimate.plan_memory(m, method)
        assert bound <= plan.peak <= head, (method, bound, plan.peak, head)


def _buffer(size, first, last):
    return estimate.Buffer(estimate.Tensor(0, "t", (size,), "int8", size, False), size, first, last)


def test_no_two_buffers_alive_together_share_memory():
    buffers = [_buffer(size, first, last)
               for size, first, last in [(64, 0, 1), (32, 1, 2), (96, 2, 3), (16, 0, 3), (48, 3, 4)]]
    for plan in (estimate.plan_greedy(buffers), estimate.plan_optimal(buffers)):
        for i, a in enumerate(buffers):
            for j, b in enumerate(buffers[:i]):
                if a.overlaps_in_time(b):
                    oa, ob = plan.offsets[i], plan.offsets[j]
                    assert oa + a.size <= ob or ob + b.size <= oa


def test_the_optimal_plan_beats_greedy_where_greedy_fragments():
    # Greedy places the large buffers first and leaves a gap the later ones cannot use.
    buffers = [_buffer(size, first, last)
               for size, first, last in [(40, 0, 0), (30, 1, 2), (30, 0, 1), (20, 2, 2), (40, 2, 3)]]
    greedy, optimal = estimate.plan_greedy(buffers), estimate.plan_optimal(buffers)
    assert (greedy.peak, optimal.peak) == (100, 90)
    assert optimal.peak == estimate.live_lower_bound(buffers)


def test_random_small_graphs_are_planned_between_the_bound_and_greedy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        buffers = []
        for _ in range(6):
            first = int(rng.integers(0, 5))
            buffers.append(_buffer(int(rng.integers(1, 10)) * 16, first, first + int(rng.integers(0, 3))))
        greedy, optimal = estimate.plan_greedy(buffers), estimate.plan_optimal(buffers)
        assert estimate.live_lower_bound(buffers) <= optimal.peak <= greedy.peak


def test_the_memory_plan_picture_draws_one_bar_per_buffer(converted_xs):
    plan = estimate.plan_memory(estimate.load_model(converted_xs[1]))
    figure = estimate.plot_memory_plan(plan)
    assert len(figure.axes[0].patches) == len(plan.buffers)


def test_micro_kws_xs_arena_head_is_4000_bytes(converted_xs):
    assert estimate.measure_model_ram(converted_xs[1])["head"] == 4000


def test_the_layer_table_has_a_row_per_operator(converted_xs):
    rows = estimate.layer_table(estimate.load_model(converted_xs[1]), STUBS)
    assert [r["operator"] for r in rows] == ["RESHAPE", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert rows[1]["constant_bytes"] == 96 and rows[1]["activation_bytes"] == 2000
    assert rows[1]["macs"] == estimate.NOT_IMPLEMENTED


def test_the_plans_compare_greedy_optimal_and_tflite_micro(converted_xs):
    plans = estimate.compare_plans(estimate.load_model(converted_xs[1]))
    assert plans == {"greedy": 4000, "optimal": 4000, "lower_bound": 4000, "tflite_micro_head": 4000}


def test_without_tflite_micro_the_challenge_measures_the_same_sizes_and_the_accuracy_but_near_ties(
        converted_xs, audio_processor, model_settings, monkeypatch):
    import challenge
    import runtimes
    import test_tflite

    test_features = [x for x, _ in audio_processor.get_data(audio_processor.Modes.TESTING).as_numpy_iterator()]
    comparison = test_tflite.compare_runtimes(converted_xs[1], test_features, tie_steps=16)
    with_tflm = challenge.check_model(converted_xs[1], audio_processor, model_settings)
    monkeypatch.setattr(runtimes, "tflite_micro_available", lambda: False)
    without = challenge.check_model(converted_xs[1], audio_processor, model_settings)
    for name in ("rom_bytes", "ram_bytes", "macs"):
        assert without[name]["value"] == with_tflm[name]["value"], name
    changed = round(abs(without["int8_test_accuracy"]["value"] - with_tflm["int8_test_accuracy"]["value"])
                    * len(test_features))
    assert changed <= comparison["count"] - comparison["decisive"]  # only near-ties may change class
    assert "not installed" in without["ram_bytes"]["source"] and (
        without["ram_bytes"]["source"] != with_tflm["ram_bytes"]["source"])


def test_without_tflite_micro_asking_for_its_runtime_says_why_it_cannot(converted_xs, monkeypatch):
    import runtimes
    import test_tflite

    monkeypatch.setattr(runtimes, "tflite_micro_available", lambda: False)
    with pytest.raises(RuntimeError, match="Linux x86_64 only"):
        test_tflite.TFLiteModel(converted_xs[1], runtime="tflm")


# --- What the challenge counts: every constant, every operator, the model the code builds ---------

ONES = types.SimpleNamespace(  # stand-in formulas: one MAC per layer with weights (no answers here)
    estimate_fully_connected_macs=lambda *args: 1,
    estimate_conv2d_macs=lambda *args: 1,
    estimate_depthwise_conv2d_macs=lambda *args: 1,
)


def _transposed_convolution_model(model_settings):
    """Stride-1 transposed convolutions: many weights and MACs in an operator the lab has no formula for."""
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), name="input")
    x = keras.layers.Reshape((49, 40, 1))(inputs)
    x = keras.layers.Conv2D(8, (3, 3), strides=(4, 4), padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(96, (5, 5), padding="same", activation="relu")(x)
    x = keras.layers.Conv2DTranspose(96, (5, 5), padding="same", activation="relu")(x)
    x = keras.layers.AveragePooling2D(pool_size=x.shape[1:3])(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="kws_model_student")


@pytest.fixture(scope="module")
def transposed_int8(audio_processor, model_settings, tmp_path_factory):
    """An untrained int8 model of transposed convolutions (random weights: sizes do not depend on them)."""
    model = _transposed_convolution_model(model_settings)
    return convert.convert(model, audio_processor, None, True, "int8",
                           tmp_path_factory.mktemp("challenge") / "transposed.tflite")


def test_rom_counts_every_constant_the_file_stores_once(converted_xs):
    m = estimate.load_model(converted_xs[1])
    weights_and_biases = sum(t.bytes for t in estimate.weight_tensors(m))
    assert estimate.rom_bytes(m) == weights_and_biases + estimate.other_constant_bytes(m) > weights_and_biases
    buffers = {t.buffer for t in m.tensors if t.is_constant}
    assert estimate.rom_bytes(m) == sum(next(t.stored_bytes for t in m.tensors if t.buffer == b) for b in buffers)


def test_the_operators_of_the_lab_models_are_allowed_and_counted(int8_models, converted_xs):
    _, paths = int8_models
    allowed = set(challenge_settings()["limits"]["allowed_operators"])
    for path in [*paths.values(), converted_xs[1]]:
        m = estimate.load_model(path)
        assert estimate.uncounted_operators(m) == [] and {op.type for op in m.operators} <= allowed, path.name


def test_an_elementwise_operator_counts_one_mac_per_output_value(int8_models):
    m = estimate.load_model(int8_models[1]["residual"])
    add = next(op for op in m.operators if op.type == "ADD")
    assert estimate.operator_macs(add, ONES) == int(np.prod(add.outputs[0].shape)) == 25 * 20 * 8


def test_an_operator_without_a_mac_rule_is_named_not_counted_as_zero(transposed_int8):
    m = estimate.load_model(transposed_int8)
    assert estimate.uncounted_operators(m) == ["TRANSPOSE_CONV"]
    with pytest.raises(ValueError, match="TRANSPOSE_CONV .*no MAC rule"):
        estimate.estimate_model_macs(m, ONES)
    rows = estimate.layer_table(m, ONES)
    assert [r["macs"] for r in rows if r["operator"] == "TRANSPOSE_CONV"] == [estimate.NO_MAC_RULE] * 2


def test_a_transposed_convolution_model_is_refused_and_over_the_rom_limit(transposed_int8, audio_processor,
                                                                          model_settings):
    import challenge

    report = challenge.check_model(transposed_int8, audio_processor, model_settings, mac_formulas=ONES)
    kernels = 96 * 5 * 5 * 8 + 96 * 5 * 5 * 96  # the two transposed convolutions' int8 kernels
    assert report["rom_bytes"]["value"] >= kernels > report["rom_bytes"]["limit"]
    assert report["rom_bytes"]["passed"] is False
    assert report["operators"] == {"value": "TRANSPOSE_CONV", "limit": "allowed_operators", "passed": False,
                                   "source": "refused: not allowed in challenge.toml"}
    assert report["macs"]["value"] is None and report["macs"]["passed"] is False
    assert "TRANSPOSE_CONV" in report["macs"]["source"]


def challenge_settings(**limits):
    import challenge

    settings = challenge.load_challenge()
    settings["limits"] = {**settings["limits"], **limits}
    return settings


def test_the_accuracy_threshold_is_the_one_of_the_dataset_kind_measured_on(converted_xs, audio_processor,
                                                                            model_settings):
    import challenge

    settings = challenge_settings(synthetic={"min_int8_test_accuracy": 0.25},
                                  speech_commands={"min_int8_test_accuracy": 0.99})
    report = challenge.check_model(converted_xs[1], audio_processor, model_settings, settings, ONES)
    assert report["int8_test_accuracy"]["limit"] == 0.25 and report["int8_test_accuracy"]["passed"] is True
    assert "synthetic" in report["int8_test_accuracy"]["source"]


def test_challenge_toml_cannot_allow_an_operator_the_kit_does_not_count(tmp_path):
    import challenge

    text = challenge.CHALLENGE_FILE.read_text().replace('allowed_operators = ["CONV_2D"',
                                                        'allowed_operators = ["TRANSPOSE_CONV", "CONV_2D"')
    (tmp_path / "challenge.toml").write_text(text)
    with pytest.raises(ValueError, match="TRANSPOSE_CONV, which the kit has no MAC rule for"):
        challenge.load_challenge(tmp_path / "challenge.toml")


def test_challenge_toml_needs_a_threshold_for_each_dataset_kind(tmp_path):
    import challenge

    text = challenge.CHALLENGE_FILE.read_text().replace("[limits.speech_commands]", "[limits.real]")
    (tmp_path / "challenge.toml").write_text(text)
    with pytest.raises(ValueError, match=r"needs a \[limits.speech_commands\] table with min_int8_test_accuracy"):
        challenge.load_challenge(tmp_path / "challenge.toml")


def test_a_trained_model_is_what_its_code_builds(converted_xs, model_settings):
    import challenge

    m = estimate.load_model(converted_xs[1])
    assert challenge.architecture_problems(m, models.get_model(model_settings, "micro_kws_xs")) == []


def test_a_model_another_code_builds_is_refused_at_the_first_difference(converted_xs, model_settings):
    import challenge

    problems = challenge.architecture_problems(estimate.load_model(converted_xs[1]),
                                               models.get_model(model_settings, "ds_cnn"))
    assert problems == ["operator 1 is DEPTHWISE_CONV_2D -> [1, 25, 20, 4] with weights [1, 5, 4, 4] in the file, "
                        "but student/model.py gives CONV_2D -> [1, 25, 20, 64] with weights [64, 10, 4, 1]"]


def test_a_model_trained_under_another_name_is_not_the_challenge_model(converted_xs, audio_processor, model_settings):
    import challenge

    model = models.get_model(model_settings, "micro_kws_xs", model_name="kws_model_student")
    report = challenge.check_model(converted_xs[1], audio_processor, model_settings, mac_formulas=ONES,
                                   keras_model=model)
    assert report["architecture"]["passed"] is False
    assert report["architecture"]["value"] == (
        "it was trained as 'micro_kws_xs', not 'kws_model_student' (FLAGS.model_name)")


def test_an_architecture_file_is_read_into_the_model_it_describes(converted_xs, model_settings, tmp_path):
    import challenge

    path = tmp_path / "architecture.json"
    path.write_text(models.get_model(model_settings, "micro_kws_xs").to_json())
    model = challenge.read_architecture(path)
    assert challenge.architecture_problems(estimate.load_model(converted_xs[1]), model) == []


def test_an_architecture_file_with_code_in_it_is_refused(model_settings, tmp_path):
    import challenge

    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "architecture.json"
    path.write_text(model.to_json())
    with pytest.raises(ValueError):
        challenge.read_architecture(path)


def test_the_architecture_a_training_run_recorded_is_checked_against_the_file(converted_xs, audio_processor,
                                                                              model_settings, tmp_path):
    import json
    import shutil

    import challenge

    int8 = shutil.copy(converted_xs[1], tmp_path / "kws_model_student_yesno_quantized.tflite")
    description = json.loads(converted_xs[1].with_suffix(".json").read_text())
    description["provenance"].update(model_name="kws_model_student",
                                     architecture=json.loads(models.get_model(model_settings, "ds_cnn").to_json()))
    (tmp_path / "kws_model_student_yesno_quantized.json").write_text(json.dumps(description))
    report = challenge.check_model(int8, audio_processor, model_settings, mac_formulas=ONES)
    assert report["architecture"]["passed"] is False and (
        "operator 1 is DEPTHWISE_CONV_2D" in report["architecture"]["value"])
    description["provenance"]["architecture"] = json.loads(models.get_model(model_settings, "micro_kws_xs").to_json())
    (tmp_path / "kws_model_student_yesno_quantized.json").write_text(json.dumps(description))
    report = challenge.check_model(int8, audio_processor, model_settings, mac_formulas=ONES)
    assert report["architecture"] == {"value": "what the architecture its training run recorded builds",
                                      "limit": "kws_model_student", "passed": True,
                                      "source": "the architecture its training run recorded"}
