"""Exact figures of the estimate formulas, checked at grading only (the public tests check
properties): hand-computed cases the public tests do not show, the notebook's model and another."""

import pytest

import estimate
from student import estimate as student


@pytest.mark.parametrize("tensors, expected", [
    ([([16, 3, 3, 8], "int8"), ([16], "int32")], 16 * 9 * 8 + 16 * 4),
    ([([10, 20], "float32"), ([10], "float32")], 840),
    ([([7, 5], "int16")], 70),
    ([([1, 5, 4, 4], "int8"), ([4], "int32"), ([4, 2000], "int8"), ([4], "int32")], 8112),
])
def test_rom_exact(tensors, expected):
    assert student.estimate_rom(tensors) == expected


@pytest.mark.parametrize("layers, expected", [
    ([(100, 300), (300, 50), (50, 400), (400, 10)], (450, 860)),
    ([(1960, 4)], (1964, 1964)),
    ([(10, 500), (500, 500), (500, 20)], (1000, 1030)),
])
def test_ram_exact(layers, expected):
    assert tuple(student.estimate_ram(layers)) == expected


@pytest.mark.parametrize("arguments, expected", [((3, 10, 50), 1500), ((1, 12, 64), 768)])
def test_fully_connected_macs_exact(arguments, expected):
    assert student.estimate_fully_connected_macs(*arguments) == expected


@pytest.mark.parametrize("arguments, expected", [
    ((3, 3, 8, 16, 10, 12, 1, 1), 138240),
    ((10, 4, 1, 64, 25, 20, 2, 2), 1280000),  # strided: the output size already holds the stride
    ((10, 4, 1, 28, 40, 37, 1, 1), 1657600),
    ((1, 1, 12, 8, 15, 19, 1, 1), 27360),
])
def test_conv2d_macs_exact(arguments, expected):
    assert student.estimate_conv2d_macs(*arguments) == expected


@pytest.mark.parametrize("arguments, expected", [
    ((3, 3, 16, 16, 10, 10, 1, 1, 1), 14400),
    ((5, 4, 1, 4, 25, 20, 4, 2, 2), 40000),
    ((3, 3, 8, 16, 7, 7, 2, 1, 1), 7056),
    ((3, 3, 6, 12, 15, 19, 2, 2, 2), 30780),
])
def test_depthwise_conv2d_macs_exact(arguments, expected):
    assert student.estimate_depthwise_conv2d_macs(*arguments) == expected


def test_micro_kws_xs_needs_48000_macs(micro_kws_xs_int8):
    assert estimate.estimate_model_macs(estimate.load_model(micro_kws_xs_int8)) == 48000


def test_micro_kws_xs_weights_take_8112_bytes(micro_kws_xs_int8):
    assert estimate.estimate_model_rom(estimate.load_model(micro_kws_xs_int8)) == 8112


def test_micro_kws_xs_needs_4000_bytes_of_ram_at_best_and_7928_at_worst(micro_kws_xs_int8):
    assert tuple(estimate.estimate_model_ram(estimate.load_model(micro_kws_xs_int8))) == (4000, 7928)


@pytest.fixture(scope="module")
def other_model_int8(tmp_path_factory, model_settings):
    """A small CNN the public tests never show: valid strided conv, depthwise x2, pointwise, dense."""
    import keras

    import convert

    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), batch_size=1, name="input")
    x = keras.layers.Reshape((49, 40, 1))(inputs)
    x = keras.layers.Conv2D(6, (5, 3), strides=(3, 2), padding="valid", activation="relu")(x)  # 15 x 19 x 6
    x = keras.layers.DepthwiseConv2D((3, 3), depth_multiplier=2, padding="same", activation="relu")(x)  # 15 x 19 x 12
    x = keras.layers.Conv2D(8, (1, 1), activation="relu")(x)  # 15 x 19 x 8
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path_factory.mktemp("grading") / "other.tflite"
    return convert.convert_without_data(keras.Model(inputs, outputs), path)


def test_another_model_needs_92910_macs(other_model_int8):
    # 5*3*1*6*15*19 + 3*3*12*15*19 + 12*8*15*19 + 2280*4
    assert estimate.estimate_model_macs(estimate.load_model(other_model_int8)) == 92910


def test_another_model_weights_take_9534_bytes(other_model_int8):
    assert estimate.estimate_model_rom(estimate.load_model(other_model_int8)) == 9534


def test_another_model_needs_5700_bytes_of_ram_at_best_and_13618_at_worst(other_model_int8):
    assert tuple(estimate.estimate_model_ram(estimate.load_model(other_model_int8))) == (5700, 13618)
