"""Task (section 5): callbacks for the training run."""


def get_student_callbacks():
    """Keras callbacks appended to the training run's own.

    Returns:
        A list of keras.callbacks.Callback objects (an empty list adds none).

    The tests expect a keras.callbacks.EarlyStopping in the list that watches the validation
    loss ("val_loss"), waits at least 10 epochs (patience >= 10) and treats an improvement
    smaller than min_delta as none, with 0 < min_delta < 0.1 (e.g. 0.001: a loss that improves
    by a millionth per epoch must stop the training).
    """
    # TODO: add an EarlyStopping callback that stops the training after 10 or more epochs
    # without a noticeable (more than negligible) improvement of the validation loss.
    return []
