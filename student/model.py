"""Task (section 11): your own model for the final challenge.

Until you change it, this is a copy of the lab's micro_kws_xs model, so the notebook runs.
"""

import keras


def create_student_model(model_settings):
    """Builds your Keras model.

    Args:
        model_settings: Dict from models.prepare_model_settings (fingerprint_size,
            spectrogram_length, dct_coefficient_count, label_count, ...).

    Returns:
        A keras.Model from a flat float32[fingerprint_size] input to label_count softmax
        probabilities. Use layers that TFLite-Micro runs in int8 (Conv2D, DepthwiseConv2D,
        Dense, pooling, ReLU, Reshape, Flatten, BatchNormalization).
    """
    # TODO: design a model that meets the challenge's accuracy, ROM, RAM and MAC limits.
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), name="input")
    x = keras.layers.Reshape(
        (model_settings["spectrogram_length"], model_settings["dct_coefficient_count"], 1)
    )(inputs)
    x = keras.layers.DepthwiseConv2D(
        depth_multiplier=4, kernel_size=(5, 4), strides=(2, 2), padding="same", activation="relu"
    )(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(model_settings["label_count"], activation="softmax")(x)
    return keras.Model(inputs, outputs)
