#!/usr/bin/env python3
"""How well does a model trained only on the synthetic set recognize real people?

    python benchmarks/real_speech.py --recordings DIR [--wanted-words yes,no]
                                     [--model micro_kws_xs|reference_student|...]
                                     [--steps 8000,2000] [--seeds 3] [--recipe JSON]
                                     [--speakers N] [--dataset-seed 0] [--out build/real_speech]

Makes (or reuses) the synthetic dataset, trains the model on it once per seed (0, 1, ..., N-1)
with a fixed schedule, converts each to int8 and runs test_tflite.evaluate_recordings on DIR (real
recordings in the Speech Commands layout), next to the accuracy on the synthetic test split.
Prints the mean and spread (sample standard deviation) over the seeds of the balanced accuracy
and of each class's recall, the confusion matrix summed over the seeds, and one JSON line.

The seed sets the model's initial weights and the order of the training examples; the dataset
(--dataset-seed) and the augmentation draws (data.RANDOM_SEED) stay fixed, so the spread is the
training's own. --recipe '{"rate_range": [100, 200]}' overrides entries of synthetic.RECIPE and
makes a dataset of its own beside the default one (once; later runs reuse it).
Findings, every lever measured and how long a run takes: docs/real_speech.md.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lab  # noqa: E402
import models  # noqa: E402
import synthetic  # noqa: E402
import test_tflite  # noqa: E402
from benchmarks.runs import build_model, mean_sd, plus_minus, train_and_convert  # noqa: E402


def dataset_for(recipe, speakers, dataset_seed):
    """The synthetic dataset of a recipe (overrides of synthetic.RECIPE): the default set, or one of its own."""
    if not recipe and speakers == synthetic.DEFAULT_SPEAKERS and dataset_seed == 0:
        return synthetic.default_dataset()
    tag = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8] if recipe else "default"
    data_dir = ROOT / "datasets" / f"synthetic_{speakers}_seed{dataset_seed}_{tag}"
    return synthetic.make_synthetic_dataset(data_dir, seed=dataset_seed, speakers=speakers, recipe=recipe)


def train_and_evaluate(processor, recordings, steps, out, model_name, seed, flag_overrides=None):
    """Trains one model with the lab's augmentation (and flag_overrides, e.g. masks), converts it to
    int8, scores it; returns a dict."""
    import keras

    settings = processor.model_settings
    flags = lab.flags(model_name=model_name, wanted_words=",".join(processor.wanted_words),
                      how_many_training_steps=steps, eval_step_interval=500, train_dir=str(out / "training"),
                      verbose=0, **(flag_overrides or {}))
    keras.utils.set_random_seed(seed)
    model = build_model(model_name, settings)
    started = time.time()
    int8_path = train_and_convert(model, processor, flags, out).int8_path
    training_seconds = time.time() - started  # its float and int8 conversion included
    synthetic_accuracy, _ = test_tflite.tflite_test(settings, processor, int8_path)
    result = test_tflite.evaluate_recordings(int8_path, recordings, processor.wanted_words, settings)
    return {"synthetic_test_accuracy": synthetic_accuracy, "training_seconds": training_seconds, **result}


def summarize(results):
    """Mean and spread over seeds: {"balanced_accuracy": (mean, sd), ..., "per_class": {name: (mean, sd)},
    "confusion_matrix": summed}. The spread is the sample standard deviation (0 for one seed)."""
    summary = {key: mean_sd([r[key] for r in results])
               for key in ("balanced_accuracy", "accuracy", "synthetic_test_accuracy", "training_seconds")}
    summary["per_class"] = {name: mean_sd([r["per_class"][name] for r in results]) for name in results[0]["per_class"]}
    summary["confusion_matrix"] = np.sum([r["confusion_matrix"] for r in results], axis=0)
    summary["seeds"] = len(results)
    return summary


def print_summary(summary, words):
    """The summary as a reader wants it: figures with their spread, then the summed confusion matrix."""
    def show(pair):
        return plus_minus(*pair)

    print(f"over {summary['seeds']} seed(s), mean ± standard deviation:")
    print(f"  real recordings: balanced accuracy {show(summary['balanced_accuracy'])}, "
          f"accuracy {show(summary['accuracy'])}")
    print(f"  synthetic test accuracy {show(summary['synthetic_test_accuracy'])}")
    print("  recall: " + ", ".join(f"{name} {show(pair)}" for name, pair in summary["per_class"].items()))
    matrix = summary["confusion_matrix"]
    print("confusion matrix summed over the seeds (rows: expected, columns: predicted):")
    print(" " * 10 + "".join(f"{w[:8]:>9}" for w in words))
    for word, row in zip(words, matrix):
        if row.sum():
            print(f"{word[:10]:<10}" + "".join(f"{int(v):>9}" for v in row))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=Path, required=True)
    parser.add_argument("--wanted-words", default="yes,no")
    parser.add_argument("--model", default="micro_kws_xs",
                        help="an architecture of models.ARCHITECTURES, "
                             "or reference_student (instructor/solution/model.py)")
    parser.add_argument("--steps", default="8000,2000")
    parser.add_argument("--seeds", type=int, default=3, help="training runs, seeds 0..N-1")
    parser.add_argument("--recipe", type=json.loads, default={}, help="JSON overrides of synthetic.RECIPE")
    parser.add_argument("--flags", type=json.loads, default={},
                        help='JSON overrides of lab.flags, e.g. \'{"time_mask_frames": 10}\'')
    parser.add_argument("--speakers", type=int, default=synthetic.DEFAULT_SPEAKERS)
    parser.add_argument("--dataset-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "real_speech")
    args = parser.parse_args()
    if not args.recordings.is_dir():
        parser.exit(2, f"error: no folder {args.recordings}\n")
    recipe_keys = set(synthetic.RECIPE).union(*synthetic.OPTIONS)  # the Flite and Festival options' too
    unknown = sorted(set(args.recipe) - recipe_keys) + sorted(set(args.flags) - set(vars(lab.flags())))
    if unknown or args.model not in [*models.ARCHITECTURES, "reference_student"] or args.seeds < 1:
        parser.exit(2, f"error: --recipe keys must be among {sorted(recipe_keys)} and --flags keys among "
                       f"lab.flags()'s (got {unknown}), "
                       f"--model one of {sorted(models.ARCHITECTURES)}, --seeds at least 1\n")

    processor = lab.audio_processor(dataset_for(args.recipe, args.speakers, args.dataset_seed), args.wanted_words)
    results = []
    for seed in range(args.seeds):
        out = args.out / lab.keyword_stem(args.wanted_words) / args.model / f"seed{seed}"
        shutil.rmtree(out, ignore_errors=True)  # no model or run of an earlier invocation left beside it
        out.mkdir(parents=True)
        result = train_and_evaluate(processor, args.recordings, args.steps, out, args.model, seed, args.flags)
        print(f"seed {seed}: balanced accuracy {result['balanced_accuracy']:.3f} "
              f"(" + ", ".join(f"{k} {v:.2f}" for k, v in result["per_class"].items()) + "), "
              f"synthetic test {result['synthetic_test_accuracy']:.3f}, {result['training_seconds']:.0f} s", flush=True)
        results.append(result)
    summary = summarize(results)
    print_summary(summary, processor.words_list)
    print(json.dumps({
        "wanted_words": args.wanted_words, "model": args.model, "steps": args.steps, "recipe": args.recipe,
        "flags": args.flags,
        "seeds": args.seeds, "count": results[0]["count"],
        **{key: [round(v, 3) for v in summary[key]]
           for key in ("balanced_accuracy", "accuracy", "synthetic_test_accuracy")},
        "per_class": {name: [round(v, 3) for v in pair] for name, pair in summary["per_class"].items()},
        "per_seed_balanced_accuracy": [round(r["balanced_accuracy"], 3) for r in results]}))


if __name__ == "__main__":
    main()
