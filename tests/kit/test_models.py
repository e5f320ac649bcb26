"""models.py: settings, the model zoo and the batch-1 copy used for conversion."""

import keras
import numpy as np
import pytest

import models


def test_model_settings_of_the_lab_give_49_by_40_features(model_settings):
    assert model_settings == {
        "desired_samples": 16000, "window_size_samples": 480, "window_stride_samples": 320,
        "spectrogram_length": 49, "dct_coefficient_count": 40, "fingerprint_size": 1960,
        "label_count": 4, "sample_rate": 16000,
    }


def test_an_unknown_architecture_lists_the_choices(model_settings):
    with pytest.raises(ValueError, match="Unknown model architecture 'resnet'.*micro_kws_xs.*ds_cnn"):
        models.get_model(model_settings, "resnet")


@pytest.mark.parametrize("architecture", [a for a in models.ARCHITECTURES if a != "student"])
def test_every_architecture_maps_flat_features_to_label_probabilities(model_settings, architecture):
    model = models.get_model(model_settings, architecture)
    probabilities = model(np.random.rand(3, 1960).astype("float32") * 26).numpy()
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_micro_kws_xs_is_the_lab_model(model_settings):
    model = models.get_model(model_settings, "micro_kws_xs", model_name="micro_kws_xs")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Reshape", "DepthwiseConv2D", "Flatten", "Dense"]
    depthwise = model.layers[2]
    assert (depthwise.depth_multiplier, depthwise.kernel_size, depthwise.strides, depthwise.padding) == (
        4, (5, 4), (2, 2), "same")
    assert model.layers[3].output.shape[1] == 25 * 20 * 4
    assert model.name == "micro_kws_xs"


def test_ds_cnn_small_has_the_published_layer_settings(model_settings):
    model = models.get_model(model_settings, "ds_cnn")
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert (first.filters, first.kernel_size, first.strides) == (64, (10, 4), (2, 2))
    depthwise = [layer for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert len(depthwise) == 4 and all(layer.kernel_size == (3, 3) for layer in depthwise)


def test_models_grow_from_small_to_large(model_settings):
    for family in ("ds_cnn", "cnn", "dnn"):
        sizes = [models.get_model(model_settings, f"{family}_{s}").count_params() for s in "sml"]
        assert sizes == sorted(sizes), family


def test_student_names_build_the_student_model(model_settings):
    model = models.get_model(model_settings, "kws_model_student_v2", model_name="kws_model_student_v2")
    assert model.name == "kws_model_student_v2"
    assert model.output.shape[-1] == 4


def test_a_batch_one_copy_has_the_same_weights_and_outputs(model_settings):
    model = models.get_model(model_settings, "micro_kws_xs")
    copy = models.with_batch_size(model, 1)
    assert copy.input.shape == (1, 1960)
    features = np.random.rand(1, 1960).astype("float32") * 26
    np.testing.assert_allclose(copy(features).numpy(), model(features).numpy(), rtol=1e-6)
