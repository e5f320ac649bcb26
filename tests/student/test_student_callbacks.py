"""Task 5: the training run's callback (student/callbacks.py), checked by how it behaves on made-up
training histories: what it watches and when it stops are yours to choose from the task."""

import keras

from student.callbacks import get_student_callbacks


def _early_stopping():
    callbacks = get_student_callbacks()
    assert isinstance(callbacks, list), f"get_student_callbacks must return a list, got {type(callbacks).__name__}"
    found = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    assert found, f"expected a keras.callbacks.EarlyStopping in the list, got {[type(c).__name__ for c in callbacks]}"
    return found[0]


def _epochs_until_stop(history, epochs=60):
    """Runs the callback over a made-up history (epoch -> logs); the epochs it let run, or None if it never stopped."""
    callback = _early_stopping()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # what model.fit does before the first epoch
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(epochs):
        callback.on_epoch_end(epoch, history(epoch))
        if model.stop_training:
            return epoch + 1
    return None


def test_training_stops_when_the_validation_loss_stalls():
    ran = _epochs_until_stop(lambda epoch: {"loss": 1.0 - 0.01 * epoch, "val_loss": 1.0 - 1e-6 * epoch,
                                            "accuracy": 0.5, "val_accuracy": 0.5})
    assert ran is not None, "a validation loss that improves by a millionth per epoch should stop the training"


def test_training_goes_on_while_the_validation_loss_improves():
    ran = _epochs_until_stop(lambda epoch: {"loss": 1.0, "val_loss": 1.0 - 0.02 * epoch,
                                            "accuracy": 0.5, "val_accuracy": 0.5}, epochs=45)
    assert ran is None, f"stopped after {ran} epochs although the validation loss improved clearly every epoch"


def test_training_is_not_stopped_too_early():
    ran = _epochs_until_stop(lambda epoch: {"loss": 1.0, "val_loss": 1.0, "accuracy": 0.5, "val_accuracy": 0.5})
    assert ran is not None and ran > 10, f"stopped after {ran} epochs: the task asks for 10 or more epochs of patience"


def test_each_call_builds_fresh_callbacks():
    first, second = get_student_callbacks(), get_student_callbacks()
    assert first and not any(a is b for a in first for b in second), (
        "get_student_callbacks should build new callbacks at each call (each training run needs its own state)")
