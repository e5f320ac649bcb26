#!/usr/bin/env python3
"""The model's own training step, per model, fitted three ways: as Keras builds it ("keras"), as
train.train fits it (a copy whose batch normalization uses TensorFlow's fused kernel,
train.training_copy: "fused"), and that copy with its step compiled by XLA ("fused+xla").

    python benchmarks/model_step.py [--models micro_kws_xs,ds_cnn,reference_student]
        [--ways keras,fused,fused+xla] [--steps 600] [--rounds 3]

Each model is trained on features already in memory (random values of the lab's shape, the
lab's batch size, Adam at the lab's first learning rate, as train.train compiles it), so the
figure is the model step alone, not the input pipeline: steps/s over `--steps` steps after 50
warm-up steps (tracing and, with XLA, compiling).
Rounds alternate the order of the ways, each run in a new process, so that a slow moment of the
machine hits all alike. On a CPU-only machine Keras's default ("auto") is no XLA;
train.train takes `flags.jit_compile` (default "auto") to switch it on. A model without batch
normalization is fitted as it is, so "fused" is "keras" for it.
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
from benchmarks.runs import build_model, mean_sd, plus_minus  # noqa: E402

FLAGS = lab.flags()  # the lab's batch size and learning rates
WARM_UP_STEPS = 50
WAYS = ("keras", "fused", "fused+xla")


def run_once(model_name, way, steps, seed=0):
    """Steps/s of `model_name`'s training step on in-memory features, fitted `way`, in this process."""
    import keras
    import numpy as np
    import tensorflow as tf

    import train

    keras.utils.set_random_seed(seed)
    settings = lab.model_settings(["yes", "no"])
    model = build_model(model_name, settings)
    if way != "keras":
        model = train.training_copy(model)
    learning_rate = float(FLAGS.learning_rate.split(",")[0])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"], jit_compile=way.endswith("+xla"))
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 26, (2000, settings["fingerprint_size"])).astype(np.float32)
    labels = rng.integers(0, settings["label_count"], 2000).astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(FLAGS.batch_size).prefetch(4)
    model.fit(dataset, steps_per_epoch=WARM_UP_STEPS, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - started)


def ratio_table(results, ways):
    """Markdown: per model, steps/s of each way (mean ± spread) and each way's ratio to the first."""
    first = ways[0]
    lines = ["| model | " + " | ".join(f"steps/s, {way}" for way in ways) + " | "
             + " | ".join(f"{way} / {first}" for way in ways[1:]) + " |",
             "| --- |" + " --- |" * (2 * len(ways) - 1)]
    for model in dict.fromkeys(r["model"] for r in results):
        speeds = {way: [r["steps_per_s"] for r in results if r["model"] == model and r["way"] == way] for way in ways}
        shown = [plus_minus(*mean_sd(speeds[way]), decimals=1) for way in ways]
        ratios = [f"{statistics.mean(speeds[way]) / statistics.mean(speeds[first]):.2f}" for way in ways[1:]]
        lines.append(f"| `{model}` | " + " | ".join(shown + ratios) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="micro_kws_xs,ds_cnn,reference_student")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"some of {', '.join(WAYS)}")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_name, way = args.child
        print(json.dumps(run_once(model_name, way, args.steps)))
        return
    ways = args.ways.split(",")
    unknown = sorted(set(ways) - set(WAYS))
    if unknown:
        parser.error(f"unknown way {', '.join(unknown)}: choose from {', '.join(WAYS)}")
    results = []
    for round_number in range(args.rounds):
        for model_name in args.models.split(","):
            for way in ways if round_number % 2 == 0 else ways[::-1]:
                command = [sys.executable, __file__, "--steps", str(args.steps), "--child", model_name, way]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                result = {"model": model_name, "way": way, "steps_per_s": json.loads(output.splitlines()[-1])}
                print(json.dumps(result), flush=True)
                results.append(result)
    print()
    print(ratio_table(results, ways))


if __name__ == "__main__":
    main()
