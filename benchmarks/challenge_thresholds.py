#!/usr/bin/env python3
"""The challenge's accuracy threshold on the synthetic set, measured: the starting model against
the reference design.

    python benchmarks/challenge_thresholds.py [--models micro_kws_xs,reference_student]
        [--wanted-words yes,no] [--steps 8000,2000] [--seeds 3] [--data-dir DIR] [--out build/challenge_thresholds]

Trains each model on the kit's default synthetic set (or on --data-dir, e.g. the real Speech
Commands, to calibrate [limits.speech_commands]) once per seed (0, 1, ..., N-1) as the notebook
does (lab.flags: the lab's augmentation, batch size and learning rates, with --steps as the
schedule; train.train), converts the best checkpoint to int8 (convert.convert) and measures it as
the challenge does (challenge.measure_challenge: the device runtime on the test split).
`micro_kws_xs` is what the untouched student/model.py builds; `reference_student` is
instructor/solution/model.py. Prints each run, then the mean and spread (sample standard
deviation) of the int8 test accuracy per model and one JSON line.
Where the thresholds of challenge.toml come from: docs/challenge_thresholds.md.
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import challenge  # noqa: E402
import lab  # noqa: E402
import synthetic  # noqa: E402
from benchmarks.runs import build_model, mean_sd, plus_minus, train_and_convert  # noqa: E402


def train_and_measure(processor, data_dir, model_name, steps, seed, out):
    """One training run of model_name, converted to int8 and measured; returns the challenge report."""
    import keras

    flags = lab.flags(model_name=model_name, wanted_words=",".join(processor.wanted_words),
                      how_many_training_steps=steps, train_dir=str(out / "training"), verbose=0)
    keras.utils.set_random_seed(seed)
    model = build_model(model_name, processor.model_settings)
    int8_path = train_and_convert(model, processor, flags, out).int8_path
    return challenge.measure_challenge(int8_path, flags.wanted_words, data_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="micro_kws_xs,reference_student")
    parser.add_argument("--wanted-words", default="yes,no")
    parser.add_argument("--steps", default="8000,2000", help="the schedule, as FLAGS.how_many_training_steps")
    parser.add_argument("--seeds", type=int, default=3, help="training runs, seeds 0..N-1")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: the kit's synthetic set (made if missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "challenge_thresholds")
    args = parser.parse_args()

    data_dir = args.data_dir.resolve() if args.data_dir else synthetic.default_dataset()
    processor = lab.audio_processor(data_dir, args.wanted_words)
    accuracies = {}
    for model_name in args.models.split(","):
        for seed in range(args.seeds):
            out = args.out / model_name / f"seed{seed}"
            shutil.rmtree(out, ignore_errors=True)  # no model or run of an earlier invocation left in it
            out.mkdir(parents=True)
            started = time.time()
            report = train_and_measure(processor, data_dir, model_name, args.steps, seed, out)
            accuracy = report["int8_test_accuracy"]["value"]
            accuracies.setdefault(model_name, []).append(accuracy)
            print(f"{model_name} seed {seed}: int8 test accuracy {accuracy:.3f} "
                  f"({report['int8_test_accuracy']['source']}), ROM {report['rom_bytes']['value']} B, "
                  f"RAM {report['ram_bytes']['value']} B, {time.time() - started:.0f} s", flush=True)
    summary = {name: mean_sd(values) for name, values in accuracies.items()}
    for name, (mean, sd) in summary.items():
        print(f"{name}: int8 test accuracy {plus_minus(mean, sd)} over {len(accuracies[name])} seed(s)")
    print(json.dumps({"wanted_words": args.wanted_words, "steps": args.steps, "seeds": args.seeds,
                      "int8_test_accuracy": {name: [round(v, 4) for v in values]
                                             for name, values in accuracies.items()}}))


if __name__ == "__main__":
    main()
