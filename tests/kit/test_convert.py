"""convert.py and test_tflite.py: the graphs, the runtimes, the firmware mapping and the C export."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import checkpoints
import convert
import data
import lab
import provenance
import test_tflite

pytestmark = pytest.mark.slow


def _operators(tflite_path):
    interpreter = Interpreter(model_path=str(tflite_path))
    return [op["op_name"] for op in interpreter._get_ops_details()]


def test_int8_micro_kws_xs_is_exactly_the_microcontroller_graph(converted_xs):
    _, int8_path = converted_xs
    assert _operators(int8_path) == ["RESHAPE", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]


def test_int8_micro_kws_xs_is_about_10_6_kilobytes(converted_xs):
    _, int8_path = converted_xs
    assert 10_000 < int8_path.stat().st_size < 11_500


def test_int8_model_has_int8_input_and_output(converted_xs):
    _, int8_path = converted_xs
    interpreter = Interpreter(model_path=str(int8_path))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 1960]


def test_float_model_is_float32(converted_xs):
    float_path, _ = converted_xs
    interpreter = Interpreter(model_path=str(float_path))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32


def test_input_quantization_is_recorded_beside_the_model(converted_xs):
    _, int8_path = converted_xs
    recorded = json.loads(int8_path.with_suffix(".json").read_text())
    scale, zero_point = Interpreter(model_path=str(int8_path)).get_input_details()[0]["quantization"]
    assert recorded["input"]["scale"] == pytest.approx(scale) and recorded["input"]["zero_point"] == zero_point


def test_both_models_carry_the_provenance_of_their_training_run(converted_xs, trained_xs):
    import checkpoints

    _, _, checkpoint, _ = trained_xs
    for path in converted_xs:
        assert provenance.read(path) == checkpoints.read_run_record(checkpoint)
        assert provenance.read(path)["wanted_words"] == ["yes", "no"]


def test_int8_accuracy_is_close_to_float(converted_xs, model_settings, audio_processor):
    float_path, int8_path = converted_xs
    float_accuracy, _ = test_tflite.tflite_test(model_settings, audio_processor, float_path)
    int8_accuracy, _ = test_tflite.tflite_test(model_settings, audio_processor, int8_path)
    assert abs(float_accuracy - int8_accuracy) <= 0.06


def test_tflite_float_model_matches_keras_with_the_checkpoints_weights(trained_xs, converted_xs, audio_processor):
    model, _, checkpoint, _ = trained_xs
    float_path, _ = converted_xs
    features = np.stack([x for x, _ in audio_processor.get_data(audio_processor.Modes.TESTING).as_numpy_iterator()])
    tflite = test_tflite.TFLiteModel(float_path)
    keras_model = checkpoints.with_weights(model, checkpoint)
    np.testing.assert_allclose(np.stack([tflite.predict(x) for x in features]), keras_model(features).numpy(),
                               atol=1e-4)


def test_converting_leaves_the_callers_model_with_its_own_weights(trained_xs, audio_processor, tmp_path):
    model, _, checkpoint, _ = trained_xs
    before = [w.copy() for w in model.get_weights()]
    convert.convert(model, audio_processor, checkpoint, False, "fp32", tmp_path / "copy.tflite")
    for kept, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(kept, now)


def _validation_and_test_features(audio_processor):
    return [x for mode in (audio_processor.Modes.VALIDATION, audio_processor.Modes.TESTING)
            for x, _ in audio_processor.get_data(mode).as_numpy_iterator()]


def test_litert_reference_kernels_classify_like_tflite_micro_away_from_ties(converted_xs, audio_processor):
    _, int8_path = converted_xs
    comparison = test_tflite.compare_runtimes(int8_path, _validation_and_test_features(audio_processor),
                                              ("litert_reference", "tflm"), tie_steps=16)
    assert comparison["decisive"] >= comparison["count"] // 4  # the statement is about most examples
    assert comparison["decisive_agreement"] == 1.0


@pytest.mark.parametrize("architecture", ["cnn", "dnn"])
def test_reference_kernels_classify_like_tflite_micro_away_from_ties_on_other_graphs(
        architecture, untrained_int8, audio_processor):
    _, path = untrained_int8[architecture]
    comparison = test_tflite.compare_runtimes(path, _validation_and_test_features(audio_processor), tie_steps=16)
    assert comparison["decisive_agreement"] == 1.0


def test_a_decision_counts_as_decisive_only_when_the_two_best_classes_lie_apart(converted_xs, audio_processor):
    _, int8_path = converted_xs
    features = _validation_and_test_features(audio_processor)
    strict = test_tflite.compare_runtimes(int8_path, features, ("litert_reference", "litert_reference"), tie_steps=255)
    loose = test_tflite.compare_runtimes(int8_path, features, ("litert_reference", "litert_reference"), tie_steps=-1)
    assert strict["decisive"] == 0 and loose["decisive"] == loose["count"]
    assert loose["max_difference"] == 0 and loose["decisive_agreement"] == 1.0


def test_tflite_test_on_tflite_micro_gives_the_reference_kernels_result(converted_xs, model_settings, audio_processor):
    _, int8_path = converted_xs
    reference = test_tflite.tflite_test(model_settings, audio_processor, int8_path, runtime="litert_reference")
    tflm = test_tflite.tflite_test(model_settings, audio_processor, int8_path, runtime="tflm")
    comparison = test_tflite.compare_runtimes(int8_path, _validation_and_test_features(audio_processor), tie_steps=16)
    near_ties = comparison["count"] - comparison["decisive"]  # the only examples that may change class
    test_count = audio_processor.set_size(audio_processor.Modes.TESTING)
    assert round(abs(reference[0] - tflm[0]) * test_count) <= near_ties


def test_pinned_input_quantization_is_the_firmware_mapping(trained_xs, audio_processor, tmp_path):
    model, _, checkpoint, _ = trained_xs
    path = convert.convert(model, audio_processor, checkpoint, True, "int8", tmp_path / "pinned.tflite",
                           pin_input_quantization=True)
    scale, zero_point = Interpreter(model_path=str(path)).get_input_details()[0]["quantization"]
    assert scale == pytest.approx(666 / (25.6 * 256), rel=1e-6) and zero_point == -128


def test_the_pinned_model_takes_the_firmware_features_unchanged(trained_xs, audio_processor, tmp_path):
    model, _, checkpoint, _ = trained_xs
    path = convert.convert(model, audio_processor, checkpoint, True, "int8", tmp_path / "pinned.tflite",
                           pin_input_quantization=True)
    tflite = test_tflite.TFLiteModel(path)
    for features, _ in audio_processor.get_data(audio_processor.Modes.TESTING).as_numpy_iterator():
        firmware_input = data.quantize_features(features).reshape(1, -1)
        np.testing.assert_array_equal(tflite.quantize_input(features), firmware_input)
        assert np.argmax(tflite.predict_quantized(firmware_input)) == np.argmax(tflite.predict(features))


def test_the_representative_dataset_is_exactly_100_validation_examples(audio_processor):
    examples = list(convert._representative_dataset(audio_processor, False)())
    assert len(examples) == convert.NUM_REP_DATA_SAMPLES == 100
    assert examples[0][0].shape == (1, 1960)


@pytest.mark.parametrize("architecture", ["ds_cnn", "cnn", "dnn"])
def test_every_architecture_runs_in_int8_on_tflite_micro(architecture, untrained_int8):
    _, path = untrained_int8[architecture]
    assert all(name.isupper() for name in _operators(path))  # builtin operators only, no custom ones
    tflm = test_tflite.TFLiteModel(path, runtime="tflm")
    probabilities = tflm.predict(np.random.rand(1960) * 26)
    assert probabilities.shape == (4,) and abs(probabilities.sum() - 1) < 0.05


def test_an_interrupted_conversion_leaves_no_model_file(trained_xs, audio_processor, tmp_path, monkeypatch):
    model, _, checkpoint, _ = trained_xs
    monkeypatch.setattr(convert, "model_quantization", lambda content: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        convert.convert(model, audio_processor, checkpoint, True, "int8", tmp_path / "models" / "x.tflite")
    models_dir = tmp_path / "models"
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def test_a_bad_inference_type_is_refused(trained_xs, audio_processor, tmp_path):
    model, _, checkpoint, _ = trained_xs
    with pytest.raises(ValueError, match="'fp32' or 'int8'"):
        convert.convert(model, audio_processor, checkpoint, True, "uint8", tmp_path / "x.tflite")


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_the_c_export_compiles_as_cpp_and_holds_the_model(converted_xs, tmp_path):
    _, int8_path = converted_xs
    cc_path, h_path = convert.export_c_array(int8_path, tmp_path)
    subprocess.run(["g++", "-std=c++17", "-c", str(cc_path), "-o", str(tmp_path / "model_data.o")], check=True)
    text = cc_path.read_text()
    assert "alignas(16) const unsigned char g_model[]" in text
    values = bytes(int(v, 16) for v in text.split("{", 1)[1].split("}", 1)[0].replace("\n", "").split(", "))
    assert values == int8_path.read_bytes()
    assert f"g_model_len = {int8_path.stat().st_size};" in text


def test_tflite_test_names_a_missing_model(model_settings, audio_processor, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        test_tflite.tflite_test(model_settings, audio_processor, tmp_path / "missing.tflite")


def test_tflite_test_refuses_a_file_that_is_not_tflite(model_settings, audio_processor, tmp_path):
    (tmp_path / "notes.tflite").write_text("hello")
    with pytest.raises(ValueError, match="not a TFLite model"):
        test_tflite.tflite_test(model_settings, audio_processor, tmp_path / "notes.tflite")


def test_tflite_test_refuses_a_model_of_other_settings(converted_xs, audio_processor):
    _, int8_path = converted_xs
    other = lab.model_settings("yes,no", {"dct_coefficient_count": 10})
    with pytest.raises(ValueError, match="takes 1960 input values but the model settings give 490"):
        test_tflite.tflite_test(other, audio_processor, int8_path)


def _converted_run(run_dir, content):
    """A run folder holding converted micro_kws_xs yes/no models (stand-in bytes)."""
    paths = convert.model_paths(run_dir / "models", "micro_kws_xs", "yes,no")
    for key in ("float", "int8"):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
        paths[key].write_bytes(content + key.encode())
        paths[key].with_suffix(".json").write_text(json.dumps({"provenance": {"run": run_dir.name}}))
    paths["c_array"].mkdir()
    for name in ("model_data.cc", "model_data.h"):
        (paths["c_array"] / name).write_bytes(content)
    return run_dir


def test_models_are_converted_into_the_folder_of_the_checkpoints_run(tmp_path):
    checkpoint = tmp_path / "run-1" / "best" / "micro_kws_xs_0.900.weights.h5"
    assert convert.run_models_dir(checkpoint) == tmp_path / "run-1" / "models"
    paths = convert.model_paths(tmp_path / "m", "micro_kws_xs", "yes,no")
    assert [paths[k].name for k in ("float", "int8", "c_array")] == [
        "micro_kws_xs_yesno.tflite", "micro_kws_xs_yesno_quantized.tflite", "micro_kws_xs_yesno_c"]


def test_the_models_handed_in_are_the_chosen_runs_and_an_earlier_design_comes_back(tmp_path):
    first, second = _converted_run(tmp_path / "run-1", b"first"), _converted_run(tmp_path / "run-2", b"second")
    models_dir = tmp_path / "models"
    convert.copy_run_models(second, models_dir, "micro_kws_xs", "yes,no")
    assert (models_dir / "micro_kws_xs_yesno_quantized.tflite").read_bytes() == b"secondint8"
    written = convert.copy_run_models(first, models_dir, "micro_kws_xs", "yes,no")
    assert (models_dir / "micro_kws_xs_yesno_quantized.tflite").read_bytes() == b"firstint8"
    assert json.loads((models_dir / "micro_kws_xs_yesno.json").read_text())["provenance"]["run"] == "run-1"
    assert (models_dir / "micro_kws_xs_yesno_c" / "model_data.cc").read_bytes() == b"first"
    assert len(written) == 6 and (
        (second / "models" / "micro_kws_xs_yesno_quantized.tflite").read_bytes() == b"secondint8")


def test_a_run_without_converted_models_is_refused_and_nothing_is_copied(tmp_path):
    run = _converted_run(tmp_path / "run-1", b"x")
    (run / "models" / "micro_kws_xs_yesno_c" / "model_data.h").unlink()
    with pytest.raises(FileNotFoundError,
                       match="Run run-1 has no converted micro_kws_xs models .*convert a checkpoint"):
        convert.copy_run_models(run, tmp_path / "models", "micro_kws_xs", "yes,no")
    assert not (tmp_path / "models").exists()
