#!/usr/bin/env python3
"""Training speed of this kit against an earlier version of it, each through its own train.train.

    python benchmarks/kit_versions.py [--against 377c5db] [--models ds_cnn] [--steps 400,100]
        [--learning-rate 0.001,0.0001] [--seeds 3] [--data-dir DIR]

A figure measured on another day is no baseline on this machine (its speed moves by tens of
percent from day to day), so this checks the earlier commit out into a temporary git worktree and
trains the same model on the same data with both versions, in fresh processes, interleaved seed by
seed. Each run is the notebook's path: the lab's yes/no AudioProcessor, then `train.train` with the
lab's augmentation and a validation every 250 steps. Reported per version, as mean ± sample standard
deviation over the seeds:
  - steps/s after the first epoch (250 steps; the figure the README quoted before the feature
    store: tracing and warm-up excluded, validation included),
  - steps/s end to end (from building the AudioProcessor to the end of training, store included),
  - the final test accuracy on the synthetic test split.

The default --against is the last commit before the training feature store. Needs the kit's git
history (a clone, not an exported copy).
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
EVAL_STEP_INTERVAL = 250
# Only for this kit's benchmarks.summary: a run of another version puts that kit first (run_once).
sys.path.insert(0, str(ROOT))
from benchmarks.summary import mean_and_spread  # noqa: E402


def run_once(kit_dir, model_name, steps, learning_rate, seed, data_dir, train_dir):
    """One timed training run of the kit in kit_dir (imported from there), in this process."""
    sys.path.insert(0, str(kit_dir))
    import keras

    import data
    import models
    import train

    class EpochTimer(keras.callbacks.Callback):
        """Seconds of every epoch after the first."""

        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if epoch >= 1:
                self.seconds.append(time.perf_counter() - self.started)

    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    # Built by hand from what every version has (an earlier kit may lack challenge.lab_audio_processor).
    settings = models.lab_model_settings(["yes", "no"])
    processor = data.AudioProcessor(None, data_dir, 25.0, 25.0, ["yes", "no"], 10, 10, settings, micro=True)
    flags = argparse.Namespace(
        model_name=model_name, background_volume=0.1, background_frequency=0.8, time_shift_ms=100.0,
        sample_rate=16000, how_many_training_steps=steps, learning_rate=learning_rate,
        eval_step_interval=EVAL_STEP_INTERVAL, batch_size=100, train_dir=str(train_dir), verbose=0)
    model = models.get_model(settings, model_name, model_name=model_name)
    timer = EpochTimer()
    _, test_accuracy = train.train(model, processor, flags, extra_callbacks=[timer])
    seconds = time.perf_counter() - started
    steps_run = EVAL_STEP_INTERVAL * math.ceil(sum(int(s) for s in steps.split(",")) / EVAL_STEP_INTERVAL)
    return {"steps_per_s_after_first_epoch": round(EVAL_STEP_INTERVAL * len(timer.seconds) / sum(timer.seconds), 2),
            "steps_per_s_end_to_end": round(steps_run / seconds, 2), "test_accuracy": round(float(test_accuracy), 4)}


def checked_out(commit, destination):
    """A detached git worktree of `commit` of this kit at destination; a clear error without git."""
    try:
        run = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(destination), commit],
                             capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"Cannot check out {commit} of the kit: this needs git on the PATH.")
    if run.returncode != 0:
        sys.exit(f"Cannot check out {commit} of the kit (this needs a git clone of it, with its history):\n"
                 f"{run.stderr.strip()}")
    return destination


def summary_table(results, versions):
    """Markdown table: one row per model and version, over the seeds, with the ratio to the first."""
    columns = ["model", "version", "seeds", "steps/s after the first epoch", "× earlier",
               "steps/s end to end", "× earlier", "synthetic test accuracy"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    models = list(dict.fromkeys(r["model"] for r in results))
    for model in models:
        runs = {version: [r for r in results if r["model"] == model and r["version"] == version]
                for version in versions}
        baseline = runs[versions[0]]
        for version in versions:
            row = [model, version, str(len(runs[version]))]
            for key in ("steps_per_s_after_first_epoch", "steps_per_s_end_to_end"):
                values = [r[key] for r in runs[version]]
                ratio = statistics.mean(values) / statistics.mean(r[key] for r in baseline)
                row += [mean_and_spread(values), f"{ratio:.2f}"]
            row.append(mean_and_spread([r["test_accuracy"] for r in runs[version]]))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="377c5db", help="the earlier commit (default: before the store)")
    parser.add_argument("--models", default="ds_cnn")
    parser.add_argument("--steps", default="400,100", help="the schedule, as FLAGS.how_many_training_steps")
    parser.add_argument("--learning-rate", default="0.001,0.0001", help="one rate per phase of --steps")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the synthetic set (made if missing)")
    parser.add_argument("--run", nargs=4, metavar=("KIT_DIR", "MODEL", "SEED", "TRAIN_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if sum(int(s) for s in args.steps.split(",")) <= EVAL_STEP_INTERVAL:
        sys.exit(f"--steps {args.steps}: give more than {EVAL_STEP_INTERVAL} steps, so that an epoch "
                 "after the first one is timed.")
    if len(args.steps.split(",")) != len(args.learning_rate.split(",")):
        sys.exit(f"--steps {args.steps} and --learning-rate {args.learning_rate} must list the same number "
                 "of phases.")
    if args.run:  # one run, in this process (the driver below starts one process per run)
        kit_dir, model_name, seed, train_dir = args.run
        print(json.dumps(run_once(kit_dir, model_name, args.steps, args.learning_rate, int(seed), args.data_dir,
                                  train_dir)))
        return

    if args.data_dir is None:
        sys.path.insert(0, str(ROOT))
        import synthetic

        args.data_dir = synthetic.default_dataset()
    results = []
    with tempfile.TemporaryDirectory(prefix="kit-versions-") as scratch:
        earlier = checked_out(args.against, Path(scratch) / args.against)
        try:
            kits = {args.against: earlier, "this kit": ROOT}
            for seed in range(args.seeds):
                for model_name in args.models.split(","):
                    for version, kit_dir in kits.items():
                        train_dir = Path(scratch) / "training" / f"{version}-{model_name}-{seed}"
                        command = [sys.executable, __file__, "--run", str(kit_dir), model_name, str(seed),
                                   str(train_dir), "--steps", args.steps, "--learning-rate", args.learning_rate,
                                   "--data-dir", str(args.data_dir)]
                        run = subprocess.run(command, capture_output=True, text=True, cwd=kit_dir)
                        if run.returncode != 0:
                            sys.exit(f"{version} / {model_name} / seed {seed} failed:\n{run.stderr[-3000:]}")
                        result = {"version": version, "model": model_name, "seed": seed,
                                  **json.loads(run.stdout.strip().splitlines()[-1])}
                        results.append(result)
                        print(json.dumps(result), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(earlier)],
                           capture_output=True)
    print(summary_table(results, list(kits)))


if __name__ == "__main__":
    main()
