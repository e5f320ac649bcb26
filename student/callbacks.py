"""Task (section 5): callbacks for the training run."""


def get_student_callbacks():
    """Keras callbacks appended to the training run's own (the notebook's task says which).

    Returns:
        A list of keras.callbacks.Callback objects, built fresh at each call (an empty list adds
        none). The training run validates once per epoch (every FLAGS.eval_step_interval steps)
        and logs "loss", "accuracy", "val_loss" and "val_accuracy".
    """
    # TODO: the callback the notebook's task in section 5 asks for.
    return []
