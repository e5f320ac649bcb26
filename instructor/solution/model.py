"""Reference solution: a small depthwise-separable CNN within the challenge's limits."""

import keras


def create_student_model(model_settings):
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],), name="input")
    x = keras.layers.Reshape(
        (model_settings["spectrogram_length"], model_settings["dct_coefficient_count"], 1)
    )(inputs)
    x = keras.layers.Conv2D(16, (10, 4), strides=(2, 2), padding="same")(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    for _ in range(2):
        x = keras.layers.DepthwiseConv2D((3, 3), padding="same")(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(16, (1, 1))(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.AveragePooling2D(pool_size=x.shape[1:3])(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(model_settings["label_count"], activation="softmax")(x)
    return keras.Model(inputs, outputs)
