"""Reference solution: stop when the validation loss has not improved for 10 epochs."""

import keras


def get_student_callbacks():
    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, min_delta=1e-3, mode="min")]
