"""Training runs and their checkpoints: where they go, which is the best, and loading one safely.

Every call of train.train is a run with its own folder, named for the model, the keywords and the
time it started: `<train_dir>/<model_name>_<keywords>/run-<YYYYmmdd-HHMMSS>/`. It holds `run.json`
(what was trained on what: the run's provenance, with the model's architecture as
`model.to_json()` gives it), `best/` with the best weights so far as
`<model_name>_<val_accuracy>.weights.h5` (Keras 3 weight files), `backup/` for resuming, and
`models/` with the run's converted models (convert.py). Runs
never mix: a reworked model or other keywords start a new run instead of loading or competing
with old weights; resuming an interrupted run is asked for by name (FLAGS.resume_run).
`with_weights` gives a copy of a model carrying a checkpoint's weights, so testing and conversion
never change the model the caller holds.
"""

import datetime
import glob
import json
import os
import re
import warnings
from pathlib import Path

CHECKPOINT_PATTERN = re.compile(r"_(\d+\.\d+)\.weights\.h5$")
RUN_RECORD = "run.json"


def model_dir(train_dir, model_name, wanted_words):
    """The folder of all runs of one model on one set of keywords."""
    return Path(train_dir) / f"{model_name}_{'_'.join(wanted_words)}"


def new_run_dir(train_dir, model_name, wanted_words, now=None):
    """A new, not yet existing run folder named for the time, made unique with a suffix."""
    parent = model_dir(train_dir, model_name, wanted_words)
    name = "run-" + (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidate, count = parent / name, 1
    while candidate.exists():
        count += 1
        candidate = parent / f"{name}-{count}"
    return candidate


def find_run_dir(train_dir, model_name, wanted_words, run, purpose="to resume", setting="FLAGS.resume_run"):
    """The folder of an earlier run (its name, e.g. "run-20261126-115300", or its path)."""
    parent = model_dir(train_dir, model_name, wanted_words)
    candidate = Path(run) if Path(run).is_absolute() or os.sep in str(run) else parent / run
    if not (candidate / RUN_RECORD).is_file():
        runs = sorted(p.name for p in parent.glob("run-*")) if parent.is_dir() else []
        raise ValueError(
            f"No run {run!r} {purpose} in {parent}. Runs of this model and these keywords: "
            f"{', '.join(runs) or 'none'}. Set {setting} to one of them, or to None."
        )
    return candidate


def resume_run_dir(train_dir, model_name, wanted_words, run):
    """The folder of an earlier run to continue (its name, e.g. "run-20261126-115300", or its path)."""
    return find_run_dir(train_dir, model_name, wanted_words, run)


def run_of_checkpoint(checkpoint):
    """The run folder a checkpoint (<run>/best/<file>) belongs to."""
    return Path(checkpoint).parent.parent


def write_run_record(run_dir, record):
    """Writes run.json: the provenance every checkpoint and converted model of the run carries."""
    from files import write_atomically

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_atomically(Path(run_dir) / RUN_RECORD, json.dumps(record, indent=2) + "\n")


def read_run_record(checkpoint):
    """The run.json of the run a checkpoint (<run>/best/<file>) belongs to, or None."""
    path = run_of_checkpoint(checkpoint) / RUN_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def checkpoint_dir(run_dir):
    """Where the best checkpoints of a run go: <run>/best (run_dir: the folder train.train returned)."""
    if not run_dir:
        raise ValueError(
            "No training run yet: run the training cell first (it sets run_dir), or set run_dir to the "
            "folder of an earlier run under FLAGS.train_dir."
        )
    return Path(run_dir) / "best"


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
            f"No checkpoint (*_<accuracy>.weights.h5) in {directory}: this run has not saved one yet "
            "(a run saves its first checkpoint after eval_step_interval steps). Train first."
        )
    return max(files, key=lambda f: (float(CHECKPOINT_PATTERN.search(f).group(1)), os.path.getmtime(f)))


def load_checkpoint(model, checkpoint):
    """Loads a .weights.h5 checkpoint into model, with a clear error if it does not fit.

    A checkpoint of a run whose record names another number of classes than the model has is
    refused before loading (same shapes with other keywords would otherwise load silently).
    """
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"Checkpoint {checkpoint} does not exist.")
    record = read_run_record(checkpoint)
    label_count = record and record.get("model_settings", {}).get("label_count")
    if label_count and model.outputs and model.outputs[0].shape[-1] != label_count:
        raise ValueError(
            f"Checkpoint {checkpoint} was trained for {label_count} classes ({', '.join(record['wanted_words'])} "
            f"with silence and unknown), but model {model.name!r} has {model.outputs[0].shape[-1]}. Load a "
            "checkpoint of a run with this model's keywords."
        )
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
