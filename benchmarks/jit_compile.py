#!/usr/bin/env python3
"""The model's own training step with and without XLA (`jit_compile`), per model.

    python benchmarks/jit_compile.py [--models micro_kws_xs,ds_cnn] [--steps 600] [--rounds 3]

Each model is trained on features already in memory (random values of the lab's shape, the
lab's batch size, Adam at the lab's first learning rate, as train.train compiles it), so the
figure is the model step alone, not the input pipeline: steps/s over `--steps` steps after 50
warm-up steps (tracing and, with XLA, compiling).
Rounds alternate the two settings, each run in a new process, so that a slow moment of the
machine hits both alike. On a CPU-only machine Keras's default ("auto") is no XLA;
train.train takes `flags.jit_compile` (default "auto") to switch it on.
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
from benchmarks.runs import mean_sd, plus_minus  # noqa: E402

FLAGS = lab.flags()  # the lab's batch size and learning rates
WARM_UP_STEPS = 50


def run_once(model_name, jit_compile, steps, seed=0):
    """Steps/s of `model_name`'s training step on in-memory features, in this process."""
    import keras
    import numpy as np
    import tensorflow as tf

    import models

    keras.utils.set_random_seed(seed)
    settings = lab.model_settings(["yes", "no"])
    model = models.get_model(settings, model_name)
    learning_rate = float(FLAGS.learning_rate.split(",")[0])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"], jit_compile=jit_compile)
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 26, (2000, settings["fingerprint_size"])).astype(np.float32)
    labels = rng.integers(0, settings["label_count"], 2000).astype(np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(FLAGS.batch_size).prefetch(4)
    model.fit(dataset, steps_per_epoch=WARM_UP_STEPS, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - started)


def ratio_table(results):
    """Markdown: per model, steps/s without and with XLA (mean ± spread) and their ratio."""
    lines = ["| model | steps/s, no XLA | steps/s, XLA | XLA / no XLA |", "| --- | --- | --- | --- |"]
    for model in dict.fromkeys(r["model"] for r in results):
        speeds = {jit: [r["steps_per_s"] for r in results if r["model"] == model and r["jit_compile"] == jit]
                  for jit in (False, True)}

        def show(values):
            return plus_minus(*mean_sd(values), decimals=1)

        ratio = statistics.mean(speeds[True]) / statistics.mean(speeds[False])
        lines.append(f"| `{model}` | {show(speeds[False])} | {show(speeds[True])} | {ratio:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="micro_kws_xs,ds_cnn")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "JIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_name, jit = args.child
        print(json.dumps(run_once(model_name, jit == "1", args.steps)))
        return
    results = []
    for round_number in range(args.rounds):
        for model_name in args.models.split(","):
            for jit in (False, True) if round_number % 2 == 0 else (True, False):
                command = [sys.executable, __file__, "--steps", str(args.steps), "--child", model_name, str(int(jit))]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                result = {"model": model_name, "jit_compile": jit, "steps_per_s": json.loads(output.splitlines()[-1])}
                print(json.dumps(result), flush=True)
                results.append(result)
    print()
    print(ratio_table(results))


if __name__ == "__main__":
    main()
