"""Task 11: your model for the final challenge (student/model.py), checked without training.

Accuracy needs a trained model: submit.py and the grader measure it on the test set.
"""

import numpy as np

import challenge
import estimate
import models
import test_tflite


def _own_design(model, model_settings):
    """The student's model, once it is no longer the micro_kws_xs starting point."""
    assert not models.is_starting_point(model, model_settings), (
        "student/model.py still builds the micro_kws_xs starting point: design your own model")
    return model


def test_student_model_is_your_own_design(student_model, model_settings):
    _own_design(student_model, model_settings)


def test_student_model_maps_features_to_label_probabilities(student_model, model_settings):
    _own_design(student_model, model_settings)
    probabilities = student_model(np.random.rand(2, model_settings["fingerprint_size"]).astype("float32") * 26)
    assert tuple(probabilities.shape) == (2, model_settings["label_count"]), (
        f"expected output shape (batch, {model_settings['label_count']}), got {tuple(probabilities.shape)}")
    assert np.allclose(np.sum(probabilities, axis=1), 1, atol=1e-4), "the output should be softmax probabilities"


def test_student_model_runs_in_int8_on_the_device_runtime(student_model, student_model_int8, model_settings,
                                                          device_runtime):
    _own_design(student_model, model_settings)
    model = test_tflite.TFLiteModel(student_model_int8, runtime=device_runtime)
    probabilities = model.predict(np.random.rand(model_settings["fingerprint_size"]) * 26)
    assert probabilities.shape == (model_settings["label_count"],)


def test_student_model_meets_the_memory_and_compute_limits(student_model, student_model_int8, model_settings,
                                                          device_runtime):
    _own_design(student_model, model_settings)
    limits = challenge.load_challenge()["limits"]
    m = estimate.load_model(student_model_int8)
    rom = estimate.rom_bytes(m)  # every constant the file stores, as the challenge counts it
    ram = estimate.arena_usage(m)["head"]  # TFLite-Micro's arena head, or the kit's planner's
    macs = estimate.estimate_model_macs(m)
    assert macs is not None, "implement the MAC formulas in student/estimate.py: the MAC limit is checked with them"
    problems = [f"{name} {value} > {limit}" for name, value, limit in
                (("ROM", rom, limits["max_rom_bytes"]), ("RAM", ram, limits["max_ram_bytes"]),
                 ("MACs", macs, limits["max_macs"]))
                if value > limit]
    assert not problems, "over the challenge limits: " + ", ".join(problems)
