"""What the benchmarks do with a training run: build the model, train and convert it, time its
epochs, and sum up several runs as mean ± spread (a figure moves from run to run and seed to seed).

Kit modules are imported inside the functions: kit_versions.py imports this file before it puts an
earlier version of the kit first on the path, and that version's modules must be the ones it runs.
"""

import statistics
import time
from collections import namedtuple
from pathlib import Path

import keras

# What train_and_convert returns. test_accuracy: the Keras model's at the end of training (train.train's).
Trained = namedtuple("Trained", ["checkpoint", "float_path", "int8_path", "test_accuracy"])


def build_model(name, settings):
    """A model of models.ARCHITECTURES, or "reference_student" (instructor/solution/model.py), named `name`."""
    import models

    if name != "reference_student":
        return models.get_model(settings, name, model_name=name)
    from instructor.solution.model import create_student_model

    model = create_student_model(settings)
    model.name = name  # train.train files the run under flags.model_name and checks the model has it
    return model


def train_and_convert(model, audio_processor, flags, out, extra_callbacks=()):
    """Trains model with train.train, then converts the run's best checkpoint (highest validation
    accuracy) to float32 and to int8 .tflite files in `out`, named for flags.model_name, as the
    notebook does. Returns a Trained."""
    import checkpoints
    import convert
    import train

    _, test_accuracy, run_dir = train.train(model, audio_processor, flags, extra_callbacks=extra_callbacks)
    checkpoint = checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(run_dir))
    out = Path(out)
    float_path = convert.convert(model, audio_processor, checkpoint, False, "fp32", out / f"{flags.model_name}.tflite")
    int8_path = convert.convert(model, audio_processor, checkpoint, True, "int8",
                                out / f"{flags.model_name}_quantized.tflite")
    return Trained(checkpoint, float_path, int8_path, float(test_accuracy))


class EpochTimer(keras.callbacks.Callback):
    """Seconds of every training epoch after the first: the first holds tracing and warm-up, which a
    long schedule pays once, so the later ones give the speed that decides its length."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= 1:
            self.seconds.append(time.perf_counter() - self.started)

    def steps_per_second(self, steps_per_epoch):
        """Training steps per second over the timed epochs (flags.eval_step_interval steps each)."""
        if not self.seconds:
            raise ValueError("No epoch after the first was timed: train for more than one epoch.")
        return steps_per_epoch * len(self.seconds) / sum(self.seconds)


def mean_sd(values):
    """(mean, sample standard deviation) of the values; the spread of a single value is 0."""
    values = [float(value) for value in values]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def plus_minus(mean, sd, decimals=3):
    """'mean ± sd' with a fixed number of decimals, e.g. '0.912 ± 0.021'."""
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def mean_and_spread(values):
    """'mean ± sample standard deviation' for a table, to 3 significant digits (just the value for one run)."""
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.3g}"
    mean, sd = mean_sd(values)
    return f"{mean:.3g} ± {sd:.2g}"
