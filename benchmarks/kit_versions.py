#!/usr/bin/env python3
"""Training speed of this kit against an earlier version of it, each through its own train.train.

    python benchmarks/kit_versions.py [--against 377c5db] [--models ds_cnn] [--steps 400,100]
        [--learning-rate RATES] [--seeds 3] [--data-dir DIR]

A figure measured on another day is no baseline on this machine (its speed moves from day to
day, docs/training_speed.md), so this checks the earlier commit out into a temporary git worktree
and trains the same model on the same data with both versions, in fresh processes, interleaved
seed by seed. Each run is the notebook's path: the lab's yes/no AudioProcessor, then `train.train`
with the lab's augmentation and a validation every 250 steps, the lab's settings taken from this
kit's lab.py for both versions (lab_settings). Reported per version, as mean ± sample standard
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
WANTED_WORDS = ["yes", "no"]
# This kit's benchmarks.runs, also in a run of another version: run_once puts that kit first.
sys.path.insert(0, str(ROOT))
from benchmarks.runs import EpochTimer, mean_and_spread  # noqa: E402


def lab_settings(model_name, steps, learning_rate, train_dir):
    """This kit's lab settings for one run, as plain values (JSON) that every version's code takes:
    an earlier kit has no lab.py, so both versions train with the settings this one states."""
    import lab

    flags = lab.flags(model_name=model_name, wanted_words=",".join(WANTED_WORDS), how_many_training_steps=steps,
                      learning_rate=learning_rate, eval_step_interval=EVAL_STEP_INTERVAL, train_dir=str(train_dir),
                      verbose=0)
    split_and_shares = ("silence_percentage", "unknown_percentage", "validation_percentage", "testing_percentage")
    return {"model_settings": lab.model_settings(WANTED_WORDS), "flags": vars(flags),
            "processor": {key: getattr(flags, key) for key in split_and_shares}}


def run_once(kit_dir, settings, seed, data_dir):
    """One timed training run of the kit in kit_dir (imported from there), in this process, with
    lab_settings' values: its AudioProcessor, then its train.train."""
    sys.path.insert(0, str(kit_dir))
    import keras

    import data
    import models
    import train

    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    processor = data.AudioProcessor(data_url=None, data_dir=data_dir, wanted_words=WANTED_WORDS,
                                    model_settings=settings["model_settings"], micro=True, **settings["processor"])
    flags = argparse.Namespace(**settings["flags"])
    model = models.get_model(settings["model_settings"], flags.model_name, model_name=flags.model_name)
    timer = EpochTimer()
    test_accuracy = train.train(model, processor, flags, extra_callbacks=[timer])[1]  # (history, accuracy, ...)
    seconds = time.perf_counter() - started
    steps = sum(int(s) for s in flags.how_many_training_steps.split(","))
    steps_run = EVAL_STEP_INTERVAL * math.ceil(steps / EVAL_STEP_INTERVAL)
    return {"steps_per_s_after_first_epoch": round(timer.steps_per_second(EVAL_STEP_INTERVAL), 2),
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
    parser.add_argument("--learning-rate", default=None,
                        help="one rate per phase of --steps (default: the lab's, FLAGS.learning_rate)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the synthetic set (made if missing)")
    parser.add_argument("--run", nargs=3, metavar=("KIT_DIR", "SEED", "SETTINGS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # one run, in this process (the driver below starts one process per run)
        kit_dir, seed, settings = args.run
        print(json.dumps(run_once(kit_dir, json.loads(settings), int(seed), args.data_dir)))
        return

    import lab

    args.learning_rate = args.learning_rate or lab.flags().learning_rate
    if sum(int(s) for s in args.steps.split(",")) <= EVAL_STEP_INTERVAL:
        sys.exit(f"--steps {args.steps}: give more than {EVAL_STEP_INTERVAL} steps, so that an epoch "
                 "after the first one is timed.")
    if len(args.steps.split(",")) != len(args.learning_rate.split(",")):
        sys.exit(f"--steps {args.steps} and --learning-rate {args.learning_rate} must list the same number "
                 "of phases.")

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
                        settings = lab_settings(model_name, args.steps, args.learning_rate, train_dir)
                        command = [sys.executable, __file__, "--run", str(kit_dir), str(seed), json.dumps(settings),
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
