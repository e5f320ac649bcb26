"""Model settings and the model zoo of the kit.

`prepare_model_settings` turns the lab's audio settings into the sizes every other module needs.
`get_model` builds a Keras model by architecture name: the model takes the flat feature vector
(`fingerprint_size` values) and returns `label_count` softmax probabilities.
"""

import functools

import keras


def prepare_model_settings(
    label_count,
    sample_rate,
    clip_duration_ms,
    window_size_ms,
    window_stride_ms,
    dct_coefficient_count,
):
    """Calculates the sizes the data pipeline and the models share.

    Args:
        label_count: How many classes to recognize (silence + unknown + wanted words).
        sample_rate: Audio samples per second.
        clip_duration_ms: Length of each audio clip.
        window_size_ms: Length of one feature frame.
        window_stride_ms: Time between the starts of two frames.
        dct_coefficient_count: Channels (frequency bins) per frame.

    Returns:
        Dict with desired_samples, window_size_samples, window_stride_samples, spectrogram_length,
        dct_coefficient_count, fingerprint_size, label_count and sample_rate.
    """
    desired_samples = int(sample_rate * clip_duration_ms / 1000)
    window_size_samples = int(sample_rate * window_size_ms / 1000)
    window_stride_samples = int(sample_rate * window_stride_ms / 1000)
    length_minus_window = desired_samples - window_size_samples
    if length_minus_window < 0:
        spectrogram_length = 0
    else:
        spectrogram_length = 1 + int(length_minus_window / window_stride_samples)
    fingerprint_size = dct_coefficient_count * spectrogram_length
    return {
        "desired_samples": desired_samples,
        "window_size_samples": window_size_samples,
        "window_stride_samples": window_stride_samples,
        "spectrogram_length": spectrogram_length,
        "dct_coefficient_count": dct_coefficient_count,
        "fingerprint_size": fingerprint_size,
        "label_count": label_count,
        "sample_rate": sample_rate,
    }


# --- The model zoo ------------------------------------------------------------------------------
# Every model takes the flat feature vector and reshapes it to an image of
# spectrogram_length (time) x dct_coefficient_count (frequency) x 1 channel.
# Only layers that TFLite-Micro runs with builtin int8 kernels are used.


def _feature_image(model_settings, batch_size):
    """The flat input and its reshape into a time x frequency x 1 image."""
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), batch_size=batch_size, name="input")
    image = keras.layers.Reshape(
        (model_settings["spectrogram_length"], model_settings["dct_coefficient_count"], 1)
    )(inputs)
    return inputs, image


def create_micro_kws_xs_model(model_settings, batch_size=None):
    """One depthwise convolution and one fully connected layer: the lab's example (~10.6 KB int8)."""
    inputs, x = _feature_image(model_settings, batch_size)
    x = keras.layers.DepthwiseConv2D(
        depth_multiplier=4, kernel_size=(5, 4), strides=(2, 2), padding="same", activation="relu"
    )(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(model_settings["label_count"], activation="softmax")(x)
    return keras.Model(inputs, outputs)


# Layer settings of the Hello Edge models (Zhang et al., 2017, arXiv:1711.07128) as ARM's
# ML-examples KWS training publishes them: small, medium and large.
DS_CNN_SIZES = {
    # (filters, (kernel time, kernel freq), (stride time, stride freq)) per layer; the first layer is
    # a standard convolution, each further one a depthwise + pointwise (1x1) pair.
    "s": [(64, (10, 4), (2, 2))] + [(64, (3, 3), (1, 1))] * 4,
    "m": [(172, (10, 4), (2, 1)), (172, (3, 3), (2, 2))] + [(172, (3, 3), (1, 1))] * 3,
    "l": [(276, (10, 4), (2, 1)), (276, (3, 3), (2, 2))] + [(276, (3, 3), (1, 1))] * 4,
}
CNN_SIZES = {
    # two convolutions (filters, kernel, strides), then a linear layer and a fully connected layer
    "s": {"conv": [(28, (10, 4), (1, 1)), (30, (10, 4), (2, 1))], "linear": 16, "fc": 128},
    "m": {"conv": [(64, (10, 4), (1, 1)), (48, (10, 4), (2, 1))], "linear": 16, "fc": 128},
    "l": {"conv": [(60, (10, 4), (1, 1)), (76, (10, 4), (2, 1))], "linear": 58, "fc": 128},
}
DNN_SIZES = {"s": [144, 144, 144], "m": [256, 256, 256], "l": [436, 436, 436]}
# Keras's default momentum (0.99) makes the moving statistics lag far behind the short schedules
# of the lab; 0.9 tracks them within a few dozen steps.
BATCH_NORM_MOMENTUM = 0.9


def create_ds_cnn_model(model_settings, size="s", batch_size=None):
    """Depthwise-separable CNN: convolution, then depthwise + pointwise pairs, average pool, dense."""
    inputs, x = _feature_image(model_settings, batch_size)
    for index, (filters, kernel, strides) in enumerate(DS_CNN_SIZES[size]):
        if index == 0:
            x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same")(x)
        else:
            x = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding="same")(x)
            x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
            x = keras.layers.ReLU()(x)
            x = keras.layers.Conv2D(filters, (1, 1))(x)
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.AveragePooling2D(pool_size=x.shape[1:3], strides=1)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(model_settings["label_count"], activation="softmax")(x)
    return keras.Model(inputs, outputs)


def create_cnn_model(model_settings, size="s", batch_size=None):
    """Two valid convolutions, a linear (no activation) layer, a fully connected layer, dense."""
    settings = CNN_SIZES[size]
    inputs, x = _feature_image(model_settings, batch_size)
    for filters, kernel, strides in settings["conv"]:
        x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="valid")(x)
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(settings["linear"])(x)
    x = keras.layers.Dense(settings["fc"])(x)
    x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(model_settings["label_count"], activation="softmax")(x)
    return keras.Model(inputs, outputs)


def create_dnn_model(model_settings, size="s", batch_size=None):
    """Fully connected layers with ReLU on the flat features."""
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), batch_size=batch_size, name="input")
    x = inputs
    for units in DNN_SIZES[size]:
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(model_settings["label_count"], activation="softmax")(x)
    return keras.Model(inputs, outputs)


def create_student_model(model_settings, batch_size=None):
    """The student's model for the final challenge, from student/model.py."""
    try:
        from student.model import create_student_model as create
    except ImportError as error:
        raise ValueError(f"student/model.py with create_student_model(model_settings) is missing ({error}).") from error
    model = create(model_settings)
    if batch_size is not None:
        model = with_batch_size(model, batch_size)
    return model


ARCHITECTURES = {
    "micro_kws_xs": create_micro_kws_xs_model,
    "ds_cnn": create_ds_cnn_model,
    "cnn": create_cnn_model,
    "dnn": create_dnn_model,
    # The three published sizes of each Hello Edge family: ds_cnn_s, ds_cnn_m, ds_cnn_l, ...
    **{f"{family}_{size}": functools.partial(create, size=size)
       for family, create in (("ds_cnn", create_ds_cnn_model), ("cnn", create_cnn_model), ("dnn", create_dnn_model))
       for size in "sml"},
    "student": create_student_model,
}


def get_model(model_settings, model_architecture, model_name=None, batch_size=None):
    """Builds the Keras model of an architecture.

    Args:
        model_settings: From prepare_model_settings.
        model_architecture: A name of ARCHITECTURES; "student" or any name starting with
            "kws_model_student" builds student/model.py's model.
        model_name: The Keras model's name (used for file names); defaults to the architecture.
        batch_size: Fixed batch size of the input (1 for conversion), or None for any.

    Returns:
        A keras.Model from float32[fingerprint_size] features to label_count probabilities.
    """
    key = "student" if model_architecture.startswith("kws_model_student") else model_architecture
    if key not in ARCHITECTURES:
        raise ValueError(
            f"Unknown model architecture {model_architecture!r}. Choose one of: "
            f"{', '.join(ARCHITECTURES)} (or a name starting with 'kws_model_student')."
        )
    model = ARCHITECTURES[key](model_settings, batch_size=batch_size)
    model.name = model_name or model_architecture
    return model


def is_starting_point(model, model_settings):
    """Whether a model is still micro_kws_xs, the challenge's starting point: the same layers with
    the same output shapes (what the untouched student/model.py builds)."""
    def signature(m):
        return [(type(layer).__name__, tuple(layer.output.shape)) for layer in m.layers]

    return signature(model) == signature(create_micro_kws_xs_model(model_settings))


def with_batch_size(model, batch_size):
    """A copy of a functional model whose input has a fixed batch size, sharing no weights.

    Conversion uses batch_size=1: with a free batch dimension the int8 graph gains
    SHAPE / STRIDED_SLICE / PACK operators that a microcontroller should not pay for.
    """
    inputs = keras.Input(batch_shape=(batch_size, *model.input_shape[1:]), name=model.inputs[0].name)
    copy = keras.models.clone_model(model, input_tensors=inputs)
    copy.set_weights(model.get_weights())
    copy.name = model.name
    return copy
