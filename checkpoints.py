"""Checkpoints of a training run: where they go, which is the best, and loading one safely.

Keras 3 writes weights to `.weights.h5` files; the training cell keeps the best ones as
`<model_name>_<val_accuracy>.weights.h5`. `with_weights` gives a copy of a model carrying a
checkpoint's weights, so testing and conversion never change the model the caller holds.
"""

import glob
import os
import re
import warnings
from pathlib import Path

CHECKPOINT_PATTERN = re.compile(r"_(\d+\.\d+)\.weights\.h5$")


def checkpoint_dir(flags):
    """Where the best checkpoints of this model go: <train_dir>/<model_name>/best."""
    return Path(flags.train_dir) / flags.model_name / "best"


def best_accuracy(directory):
    """The highest validation accuracy among the checkpoints in a directory, or None."""
    accuracies = [float(m.group(1)) for f in glob.glob(str(Path(directory) / "*.weights.h5"))
                  if (m := CHECKPOINT_PATTERN.search(f))]
    return max(accuracies) if accuracies else None


def latest_checkpoint(directory):
    """The best checkpoint in a directory of `<name>_<val_accuracy>.weights.h5` files.

    With save_best_only the best is also the newest; of equal accuracies the newest wins.
    Replaces tf.train.latest_checkpoint, which does not know Keras 3 weight files.
    """
    files = [f for f in glob.glob(str(Path(directory) / "*.weights.h5")) if CHECKPOINT_PATTERN.search(f)]
    if not files:
        raise FileNotFoundError(
            f"No checkpoint (*_<accuracy>.weights.h5) in {directory}. Train the model first "
            "(the training cell writes them there), or check FLAGS.train_dir and FLAGS.model_name."
        )
    return max(files, key=lambda f: (float(CHECKPOINT_PATTERN.search(f).group(1)), os.path.getmtime(f)))


def load_checkpoint(model, checkpoint):
    """Loads a .weights.h5 checkpoint into model, with a clear error if it does not fit."""
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"Checkpoint {checkpoint} does not exist.")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(checkpoint)
        skipped = [str(w.message) for w in caught if "Skipping" in str(w.message) or "retain" in str(w.message)]
        if skipped:
            raise ValueError(f"{len(skipped)} layer(s) found no weights in the file: {skipped[0]}")
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"Checkpoint {checkpoint} does not fit model {model.name!r}: it was saved from another "
            f"architecture or other model settings ({error}). Build the model that was trained, or "
            "train this one."
        ) from error


def with_weights(model, checkpoint, batch_size=None):
    """A copy of model (input batch fixed to batch_size, or free) with the checkpoint's weights.

    checkpoint None: the copy carries the model's current weights.
    """
    import models

    copy = models.with_batch_size(model, batch_size)
    if checkpoint:
        load_checkpoint(copy, checkpoint)
    return copy
