"""Task 5: early stopping (student/callbacks.py)."""

import keras

from student.callbacks import get_student_callbacks


def _early_stopping():
    callbacks = get_student_callbacks()
    assert isinstance(callbacks, list), f"get_student_callbacks must return a list, got {callbacks!r}"
    found = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    assert found, f"expected a keras.callbacks.EarlyStopping in the list, got {[type(c).__name__ for c in callbacks]}"
    return found[0]


def test_early_stopping_watches_the_validation_loss():
    callback = _early_stopping()
    assert callback.monitor == "val_loss", f"monitor should be 'val_loss', got {callback.monitor!r}"


def test_early_stopping_waits_at_least_ten_epochs():
    callback = _early_stopping()
    assert callback.patience >= 10, f"patience should be 10 or more epochs, got {callback.patience}"


def test_early_stopping_ignores_negligible_improvements():
    callback = _early_stopping()
    assert 0 < abs(callback.min_delta) < 0.1, (
        f"min_delta should be a small positive amount (a negligible improvement), got {callback.min_delta}")


def test_early_stopping_stops_when_the_loss_stalls():
    callback = _early_stopping()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # what model.fit does before the first epoch
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(40):
        callback.on_epoch_end(epoch, {"val_loss": 1.0 - 1e-6 * epoch, "loss": 1.0})
        if model.stop_training:
            break
    assert model.stop_training, "a validation loss that improves only by 1e-6 per epoch should stop the training"
    assert epoch >= 10, f"stopped after {epoch + 1} epochs: it must wait at least 10"
