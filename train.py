"""Training a keyword-spotting model, as the lab's notebook does it, with checkpoints to resume from.

`start_run(model, audio_processor, flags)` makes the run's folder (`<train_dir>/<model_name>_<keywords>/
run-<time>/`, see checkpoints.py) with its run.json, or finds the run flags.resume_run names, so
the notebook can print the run's name before training starts. `train(model, audio_processor,
flags)` then starts the model from freshly drawn weights (unless it resumes a run), compiles it
with Adam and a piecewise-constant learning rate (fitting a copy whose batch normalization uses
TensorFlow's fused kernel, `training_copy`), trains on augmented examples for the flags'
number of steps, validates after every `eval_step_interval` steps, keeps the best weights by
validation accuracy in the run's `best/` folder, and returns the history and the final test accuracy.

Training runs wherever TensorFlow puts it: on a GPU when one is present, and on several devices
when the model was built inside a `tf.distribute.MirroredStrategy` scope (the global batch stays
`flags.batch_size`; Keras splits it across the devices).
"""

import json
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


def check_model_name(model, flags):
    """Refuses a model whose name is not flags.model_name: the run would be filed under the wrong name."""
    if model.name != flags.model_name:
        raise ValueError(
            f"The model is {model.name!r} but FLAGS.model_name is {flags.model_name!r}: after changing "
            "FLAGS.model_name, run the model cell (section 3) again to build that model, then train."
        )


def architecture(model):
    """The model's architecture as Keras describes it (model.to_json()), without compile settings."""
    description = json.loads(model.to_json())
    description.pop("compile_config", None)
    return description


def start_run(model, audio_processor, flags):
    """Starts a run and returns its folder.

    A new run gets a new folder with its run.json (what is trained on what, see provenance.py);
    with flags.resume_run set, the earlier run of that name is continued.
    """
    import provenance

    parse_schedule(flags)  # a schedule that cannot run leaves no run behind
    check_model_name(model, flags)
    words = audio_processor.wanted_words
    if getattr(flags, "resume_run", None):
        return checkpoints.resume_run_dir(flags.train_dir, flags.model_name, words, flags.resume_run)
    run_dir = checkpoints.new_run_dir(flags.train_dir, flags.model_name, words)
    record = provenance.run_record(model, audio_processor, flags, architecture(model))
    checkpoints.write_run_record(run_dir, {"run": run_dir.name, **record})
    return run_dir


def print_run_start(run_dir, resumed=False):
    """The run's name, and how to continue it if it is interrupted."""
    run_dir = Path(run_dir)
    if resumed:
        print(f"Resuming run {run_dir.name} (in {run_dir.parent})")
    else:
        print(f"New run {run_dir.name} (in {run_dir.parent}). If it is interrupted, continue it with "
              f"FLAGS.resume_run = {run_dir.name!r}")


def fresh_weights(model):
    """Draws all of the model's weights anew from their initializers, in place.

    Keras models keep their weights between fit calls: without this, training the same model
    object again would continue from the weights an earlier run left.
    """
    model.set_weights(keras.models.clone_model(model).get_weights())


class BatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization, trained with TensorFlow's fused kernel (tf.nn.fused_batch_norm).

    Keras 3 normalizes a batch with separate moment, subtract and scale operations; the fused kernel
    does it in one, which halves the training step of a model with many of them on a CPU (see
    docs/training_speed.md). Same weights, same statistics (the moving variance takes the batch's
    sample variance, which differs by n/(n-1) over the tens of thousands of values a feature map
    has), same inference. It carries Keras's class name so the weights files it writes load into
    the model the student built. Cases the fused kernel does not cover are left to Keras.
    """

    def call(self, inputs, training=None, mask=None):
        fused = (training and self.trainable and mask is None and len(inputs.shape) == 4
                 and self.axis in (-1, 3) and self.center and self.scale and not self.renorm
                 and not self.synchronized and inputs.dtype == tf.float32 and self.epsilon >= 1.001e-5)
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def training_copy(model):
    """The model to fit: `model` rebuilt with each of its BatchNormalization layers replaced by one
    that trains with the fused kernel (its weights copied) and every other layer shared, or `model`
    itself where it has none (or is a subclassed model, which Keras cannot rebuild). The copy's
    weights files load into `model`; train() copies the batch normalization weights back at the end."""
    if not any(type(layer) is keras.layers.BatchNormalization for layer in model.layers):
        return model

    def fused_or_shared(layer):
        if type(layer) is keras.layers.BatchNormalization:
            return BatchNormalization.from_config(layer.get_config())
        return layer

    try:
        with model.distribute_strategy.scope():
            copy = keras.models.clone_model(model, clone_function=fused_or_shared)
    except ValueError:  # a subclassed model: Keras rebuilds functional and Sequential ones only
        return model
    copy.set_weights(model.get_weights())
    return copy


def train(model, audio_processor, flags, extra_callbacks=(), run_dir=None):
    """Trains `model` and returns (history, test_accuracy, run folder).

    Every audio setting comes from audio_processor (the features it serves); flags give the
    schedule, the augmentation and where runs go. run_dir: the folder start_run returned; None
    starts the run here. A new run starts from fresh weights; its run.json records what was
    trained on what.
    With flags.resume_run set to an earlier run's name, that run continues where it stopped
    instead: Keras's BackupAndRestore keeps the weights, optimizer state and epoch in
    <run>/backup, and the run's best checkpoint stays the one to beat.
    """
    from student.callbacks import get_student_callbacks

    steps, rates = parse_schedule(flags)
    check_model_name(model, flags)
    run_dir = Path(run_dir) if run_dir else start_run(model, audio_processor, flags)
    if not getattr(flags, "resume_run", None):
        fresh_weights(model)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=_boundaries(steps), values=rates)
    jit_compile = getattr(flags, "jit_compile", "auto")
    fitted = training_copy(model)  # fits; model is evaluated here and by the notebook afterwards
    _compile(model, schedule, jit_compile)
    if fitted is not model:
        _compile(fitted, schedule, jit_compile)

    modes = audio_processor.Modes
    train_data = audio_processor.get_data(
        modes.TRAINING,
        flags.background_frequency,
        flags.background_volume,
        int((flags.time_shift_ms * audio_processor.model_settings["sample_rate"]) / 1000),
        time_mask_frames=getattr(flags, "time_mask_frames", 0),
        frequency_mask_channels=getattr(flags, "frequency_mask_channels", 0),
    )
    train_data = train_data.repeat().batch(flags.batch_size).prefetch(tf.data.AUTOTUNE)
    val_data = audio_processor.get_data(modes.VALIDATION).batch(flags.batch_size).prefetch(tf.data.AUTOTUNE)

    best_dir = checkpoints.checkpoint_dir(run_dir)
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
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        *get_student_callbacks(),
        *extra_callbacks,
    ]
    try:
        history = fitted.fit(
            train_data,
            steps_per_epoch=flags.eval_step_interval,
            epochs=int(math.ceil(sum(steps) / flags.eval_step_interval)),
            validation_data=val_data,
            callbacks=callbacks,
            verbose=getattr(flags, "verbose", "auto"),
        )
    finally:  # stopped or not, model holds what was fitted
        if fitted is not model:
            model.set_weights(fitted.get_weights())
    test_data = audio_processor.get_data(modes.TESTING).batch(flags.batch_size)
    _, test_accuracy = model.evaluate(test_data, verbose=0)
    return history, test_accuracy, run_dir


def _compile(model, schedule, jit_compile):
    """Adam over the learning-rate schedule, cross-entropy, accuracy; jit_compile=True compiles the
    training step with XLA (Keras's "auto" means none on a CPU)."""
    with model.distribute_strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                      loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"],
                      jit_compile=jit_compile)


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
