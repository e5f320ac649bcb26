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
        probabilities. The challenge accepts the int8 operators `allowed_operators` in
        challenge.toml lists, which these layers become: Conv2D, DepthwiseConv2D, Dense,
        AveragePooling2D, MaxPooling2D, GlobalAveragePooling2D, ReLU, Reshape, Flatten,
        BatchNormalization, Add, Multiply. A model with other operators (e.g. Conv2DTranspose)
        is refused.

    The model you submit must be the one this function builds, trained and converted with
    FLAGS.model_name = "kws_model_student": the grader converts this function's model and
    compares its operators and shapes with your .tflite file.
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
