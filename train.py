"""Training a keyword-spotting model, as the lab's notebook does it, with checkpoints to resume from.

`train(model, audio_processor, flags)` compiles the model with Adam and a piecewise-constant
learning rate, trains on augmented examples for the flags' number of steps, validates after every
`eval_step_interval` steps, keeps the best weights by validation accuracy in the run's folder
(`<train_dir>/<model_name>_<keywords>/run-<time>/best/`, see checkpoints.py), and returns the
history and the final test accuracy.

Training runs wherever TensorFlow puts it: on a GPU when one is present, and on several devices
when the model was built inside a `tf.distribute.MirroredStrategy` scope (the global batch stays
`flags.batch_size`; Keras splits it across the devices).
"""

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import checkpoints


def parse_schedule(flags):
    """(steps per phase, learning rate per phase) from "12000,3000" and "0.001,0.0001"."""
    steps = [int(s) for s in str(flags.how_many_training_steps).split(",")]
    rates = [float(r) for r in str(flags.learning_rate).split(",")]
    if len(steps) != len(rates):
        raise ValueError(
            f"how_many_training_steps ({flags.how_many_training_steps}) and learning_rate "
            f"({flags.learning_rate}) must list the same number of phases."
        )
    return steps, rates


def train(model, audio_processor, flags, extra_callbacks=()):
    """Trains `model` and returns (history, test_accuracy).

    Every call starts a new run in its own folder and sets flags.run_dir to it; its run.json
    records what was trained on what. With flags.resume_run set to an earlier run's name, that
    run continues where it stopped instead: Keras's BackupAndRestore keeps the weights, optimizer
    state and epoch in <run>/backup, and the run's best checkpoint stays the one to beat.
    """
    from student.callbacks import get_student_callbacks

    steps, rates = parse_schedule(flags)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=_boundaries(steps), values=rates)
    with model.distribute_strategy.scope():
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=schedule),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
            # XLA for the training step: flags.jit_compile = True (Keras's "auto" means none on a CPU).
            jit_compile=getattr(flags, "jit_compile", "auto"),
        )

    flags.run_dir = str(_run_dir(audio_processor, flags))
    modes = audio_processor.Modes
    train_data = audio_processor.get_data(
        modes.TRAINING,
        flags.background_frequency,
        flags.background_volume,
        int((flags.time_shift_ms * flags.sample_rate) / 1000),
    )
    train_data = train_data.repeat().batch(flags.batch_size).prefetch(tf.data.AUTOTUNE)
    val_data = audio_processor.get_data(modes.VALIDATION).batch(flags.batch_size).prefetch(tf.data.AUTOTUNE)

    best_dir = checkpoints.checkpoint_dir(flags)
    best_dir.mkdir(parents=True, exist_ok=True)
    best_so_far = checkpoints.best_accuracy(best_dir)
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            filepath=str(best_dir / (flags.model_name + "_{val_accuracy:.3f}.weights.h5")),
            save_weights_only=True,
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.BackupAndRestore(str(Path(flags.run_dir) / "backup")),
        *get_student_callbacks(),
        *extra_callbacks,
    ]
    history = model.fit(
        train_data,
        steps_per_epoch=flags.eval_step_interval,
        epochs=int(math.ceil(sum(steps) / flags.eval_step_interval)),
        validation_data=val_data,
        callbacks=callbacks,
        verbose=getattr(flags, "verbose", "auto"),
    )

    test_data = audio_processor.get_data(modes.TESTING).batch(flags.batch_size)
    _, test_accuracy = model.evaluate(test_data, verbose=0)
    return history, test_accuracy


def _run_dir(audio_processor, flags):
    """A new run's folder, with its run.json written, or the earlier run flags.resume_run names."""
    import datetime

    import synthetic

    words = audio_processor.words_list[2:]
    if getattr(flags, "resume_run", None):
        return checkpoints.resume_run_dir(flags.train_dir, flags.model_name, words, flags.resume_run)
    run_dir = checkpoints.new_run_dir(flags.train_dir, flags.model_name, words)
    checkpoints.write_run_record(run_dir, {
        "run": run_dir.name,
        "model_name": flags.model_name,
        "wanted_words": words,
        "dataset": synthetic.describe_dataset(audio_processor.data_dir),
        "model_settings": audio_processor.model_settings,
        "micro": audio_processor.micro,
        "schedule": {"how_many_training_steps": str(flags.how_many_training_steps),
                     "learning_rate": str(flags.learning_rate), "batch_size": flags.batch_size},
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    })
    return run_dir


def _boundaries(steps):
    """Step numbers at which the learning rate changes: the cumulative ends of all but the last phase."""
    return [int(b) for b in np.cumsum(steps)[:-1]]


def plot_history(history):
    """Training curves: loss and accuracy, training vs validation, over the epochs."""
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = np.arange(1, len(history.history["loss"]) + 1)
    for axis, key in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        axis.plot(epochs, history.history[key], label="training")
        if "val_" + key in history.history:
            axis.plot(epochs, history.history["val_" + key], label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure
