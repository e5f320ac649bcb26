#!/usr/bin/env python3
"""Training speed end to end, and accuracy, for three input pipelines side by side.

    python benchmarks/training.py [--models micro_kws_xs,reference_student,ds_cnn]
        [--pipelines store,per_step,seed_kit] [--steps micro_kws_xs=3000,reference_student=3000,ds_cnn=600]
        [--seeds 3] [--recordings ../shared/realdev] [--peer-dir /tmp/peers] [--data-dir DIR]

Pipelines (the lab's yes/no task on the synthetic set, with the lab's augmentation and batch size):
  store     the kit's default: augmented features computed once into a store (data.STORED_VARIANTS
            variants per clip), then served
  store_masked  the store, each example served with SpecAugment-style masks (MASKS: a band of up to
            10 frames and one of up to 8 channels, data.mask_features)
  per_step  the kit with stored_variants=0: augmentation and features computed at every step
  seed_kit  the seed kit's data.py (see ../shared/peers/README.md for where it comes from),
            its get_data(TRAINING, ...) as its train.py calls it, and the model fitted as the seed
            kit fits it: Keras's own layers (the kit's pipelines fit train.training_copy, whose
            batch normalization uses TensorFlow's fused kernel)

Each run is a fresh process: from the AudioProcessor's construction (reading the index, the audio
and, for the store, computing it) to the end of `model.fit` over the model's steps (Adam with the
lab's learning rates, each over the share of the steps it has in the lab's schedule). "steps/s" is
steps divided by that whole time; "after the first 10 %" times the last nine tenths of the steps
alone (set-up, tracing and warm-up fall in the first tenth), the speed that decides a long
schedule such as the lab's. Then the final weights are scored on the synthetic test split and,
with --recordings, on real recordings (balanced accuracy: mean recall over silence, unknown, yes,
no). Runs are interleaved (seed by seed) so that a slow moment of the machine hits every pipeline
alike; each figure is the mean and spread (sample standard deviation) over the seeds.

`reference_student` is the instructor's reference model (instructor/solution/model.py); it is
skipped where instructor/ is absent (the student kit).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import lab  # noqa: E402
from benchmarks.runs import build_model, mean_and_spread  # noqa: E402

WANTED_WORDS = ["yes", "no"]
# The notebook's FLAGS for the task: the lab's shares, split, augmentation, batch size and learning rates.
FLAGS = lab.flags(wanted_words=",".join(WANTED_WORDS))
TIME_SHIFT_SAMPLES = int(FLAGS.time_shift_ms * lab.SAMPLE_RATE / 1000)
DEFAULT_STEPS = "micro_kws_xs=3000,reference_student=3000,ds_cnn=600"
WARM_UP_SHARE = 0.1  # the first tenth of the steps: excluded from the steady speed
MASKS = {"time_mask_frames": 10, "frequency_mask_channels": 8}  # the store_masked pipeline's


def learning_rate_schedule(steps):
    """The lab's learning rates over `steps`, each phase the share of them it has in the lab's schedule."""
    import keras
    import numpy as np

    lab_steps = [int(s) for s in FLAGS.how_many_training_steps.split(",")]
    boundaries = [int(steps * share) for share in np.cumsum(lab_steps)[:-1] / sum(lab_steps)]
    rates = [float(r) for r in FLAGS.learning_rate.split(",")]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, rates)


def training_dataset(pipeline, data_dir, settings, peer_dir, stored_variants):
    """The pipeline's repeated, batched training examples."""
    import tensorflow as tf

    if pipeline == "seed_kit":
        sys.path.insert(0, str(peer_dir))
        import tum_data

        # The seed kit's own AudioProcessor, given the lab's shares and split as its arguments.
        processor = tum_data.AudioProcessor(
            data_url="http://127.0.0.1:9/none.tar.gz", data_dir=str(data_dir),
            silence_percentage=FLAGS.silence_percentage, unknown_percentage=FLAGS.unknown_percentage,
            wanted_words=WANTED_WORDS, validation_percentage=FLAGS.validation_percentage,
            testing_percentage=FLAGS.testing_percentage, model_settings=settings, micro=True)
        examples = processor.get_data(processor.Modes.TRAINING, FLAGS.background_frequency, FLAGS.background_volume,
                                      TIME_SHIFT_SAMPLES)
        # Its features are [1, 49, 40, 1] images of the same values; the kit's models take them flat.
        examples = examples.map(lambda x, y: (tf.reshape(x, [settings["fingerprint_size"]]), y))
    else:
        variants = 0 if pipeline == "per_step" else stored_variants
        # No cache: "end to end" includes making the store, as the seed kit's pipeline pays for its own.
        processor = lab.audio_processor(data_dir, WANTED_WORDS, stored_variants=variants, cache=False)
        examples = processor.get_data(processor.Modes.TRAINING, FLAGS.background_frequency, FLAGS.background_volume,
                                      TIME_SHIFT_SAMPLES, **(MASKS if pipeline == "store_masked" else {}))
    return examples.repeat().batch(FLAGS.batch_size).prefetch(tf.data.AUTOTUNE)


def recordings_balanced_accuracy(model, recordings, settings):
    """Balanced accuracy of a Keras model on a folder of real recordings (firmware features)."""
    import numpy as np

    import test
    import test_tflite

    found = test_tflite.find_recordings(recordings, WANTED_WORDS)
    features = np.stack([test_tflite.recording_features(path, settings)[0] for path, _ in found])
    predicted = np.argmax(model.predict(features, verbose=0), axis=1)
    confusion_matrix = test.get_confusion_matrix([label for _, label in found], predicted, settings)
    return float(np.mean(list(test_tflite.recall_per_class(confusion_matrix).values())))


def run_once(model_name, pipeline, seed, steps, data_dir, recordings, peer_dir, stored_variants=None):
    """One timed training run in this process; returns its figures."""
    import keras
    import numpy as np

    import data
    import train

    keras.utils.set_random_seed(seed)
    settings = lab.model_settings(WANTED_WORDS)
    model = build_model(model_name, settings)
    if pipeline != "seed_kit":  # the kit fits a copy with fused batch normalization (train.training_copy)
        model = train.training_copy(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate_schedule(steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # Two fit calls over one optimizer: the first WARM_UP_SHARE of the steps (set-up, tracing and
    # warm-up fall in it), then the rest, timed on its own as the steady speed of a long schedule.
    warm_up_steps = max(1, int(steps * WARM_UP_SHARE))
    started = time.perf_counter()
    dataset = training_dataset(pipeline, data_dir, settings, peer_dir, stored_variants or data.STORED_VARIANTS)
    model.fit(dataset, steps_per_epoch=warm_up_steps, epochs=1, verbose=0)
    warmed_up = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps - warm_up_steps, epochs=1, verbose=0)
    finished = time.perf_counter()
    seconds = finished - started

    scorer = lab.audio_processor(data_dir, WANTED_WORDS)
    test_features = scorer.get_data(scorer.Modes.TESTING).batch(FLAGS.batch_size)
    predicted = np.argmax(model.predict(test_features, verbose=0), axis=1)
    result = {"model": model_name, "pipeline": pipeline, "seed": seed, "steps": steps,
              "seconds": round(seconds, 1), "steps_per_s": round(steps / seconds, 2),
              "steady_steps_per_s": round((steps - warm_up_steps) / (finished - warmed_up), 2),
              "test_accuracy": round(float(np.mean(predicted == scorer.labels(scorer.Modes.TESTING))), 4)}
    if recordings:
        result["real_balanced_accuracy"] = round(recordings_balanced_accuracy(model, recordings, settings), 4)
    return result


def summary_table(results):
    """Markdown table: one row per model and pipeline, steps/s and accuracies over the seeds."""
    columns = ["model", "pipeline", "steps", "seeds", "steps/s end to end", "× seed kit",
               "steps/s after the first 10 %", "synthetic test accuracy"]
    if any("real_balanced_accuracy" in r for r in results):
        columns.append("real recordings, balanced accuracy")
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    groups = {}
    for result in results:
        groups.setdefault((result["model"], result["pipeline"]), []).append(result)
    for (model, pipeline), runs in groups.items():
        speed = [r["steps_per_s"] for r in runs]
        seed_kit = groups.get((model, "seed_kit"))
        ratio = (f"{statistics.mean(speed) / statistics.mean(r['steps_per_s'] for r in seed_kit):.2f}"
                 if seed_kit else "")
        row = [model, pipeline, str(runs[0]["steps"]), str(len(runs)), mean_and_spread(speed), ratio,
               mean_and_spread([r["steady_steps_per_s"] for r in runs]),
               mean_and_spread([r["test_accuracy"] for r in runs])]
        if "real recordings, balanced accuracy" in columns:
            row.append(mean_and_spread([r["real_balanced_accuracy"] for r in runs if "real_balanced_accuracy" in r]))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="micro_kws_xs,reference_student,ds_cnn")
    parser.add_argument("--pipelines", default="store,per_step,seed_kit")
    parser.add_argument("--steps", default=DEFAULT_STEPS, help="model=steps,... (the schedule of each model)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recordings", type=Path, default=None, help="real recordings, Speech Commands layout")
    parser.add_argument("--peer-dir", type=Path, default=Path("/tmp/peers"),
                        help="folder of the seed kit's tum_data.py")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the synthetic set (made if missing)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    parser.add_argument("--stored-variants", type=int, default=None,
                        help="store pipeline: variants per clip (default data.STORED_VARIANTS)")
    parser.add_argument("--run", nargs=3, metavar=("MODEL", "PIPELINE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = {name: int(count) for name, count in (item.split("=") for item in args.steps.split(","))}

    if args.data_dir is None:
        import synthetic

        args.data_dir = synthetic.default_dataset()
    if args.run:  # one run, in this process (the driver below starts one process per run)
        model_name, pipeline, seed = args.run
        result = run_once(model_name, pipeline, int(seed), steps[model_name], args.data_dir, args.recordings,
                          args.peer_dir, args.stored_variants)
        print(json.dumps(result))
        return

    model_names = args.models.split(",")
    if "reference_student" in model_names and not (ROOT / "instructor" / "solution" / "model.py").exists():
        print("reference_student skipped: instructor/solution/model.py is not in this copy of the kit.")
        model_names.remove("reference_student")
    pipelines = args.pipelines.split(",")
    if "seed_kit" in pipelines and not (args.peer_dir / "tum_data.py").exists():
        sys.exit(f"seed_kit: no {args.peer_dir / 'tum_data.py'}; see ../shared/peers/README.md, or leave it "
                 "out of --pipelines.")
    results = []
    for seed in range(args.seeds):
        for model_name in model_names:
            for pipeline in pipelines:
                command = [sys.executable, __file__, "--run", model_name, pipeline, str(seed),
                           "--steps", args.steps, "--data-dir", str(args.data_dir), "--peer-dir", str(args.peer_dir)]
                if args.recordings:
                    command += ["--recordings", str(args.recordings)]
                if args.stored_variants is not None:
                    command += ["--stored-variants", str(args.stored_variants)]
                run = subprocess.run(command, capture_output=True, text=True)
                if run.returncode != 0:
                    sys.exit(f"{model_name} / {pipeline} / seed {seed} failed:\n{run.stderr[-3000:]}")
                results.append(json.loads(run.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(summary_table(results))


if __name__ == "__main__":
    main()
