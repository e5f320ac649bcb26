"""The early-stopping settings, checked at grading only (the public tests check behaviour)."""

import keras

from student.callbacks import get_student_callbacks


def test_early_stopping_settings():
    callback = next(c for c in get_student_callbacks() if isinstance(c, keras.callbacks.EarlyStopping))
    assert callback.monitor == "val_loss"
    assert callback.patience >= 10
    assert 0 < abs(callback.min_delta) < 0.1
