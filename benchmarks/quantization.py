#!/usr/bin/env python3
"""Quantization loss (and training speed through train.train) on the synthetic yes/no task.

    python benchmarks/quantization.py [--models micro_kws_xs,ds_cnn] [--steps 2000,500] [--out build/training_bench]

For each model: training steps per second (batch 100, 2 cores), and the test accuracy of the
Keras model, the float32 .tflite and the int8 .tflite. Target: int8 within 1 point of float.
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

import keras  # noqa: E402

import challenge  # noqa: E402
import checkpoints  # noqa: E402
import convert  # noqa: E402
import models  # noqa: E402
import synthetic  # noqa: E402
import test_tflite  # noqa: E402
import train  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    """Seconds per training step, measured after the first epoch (tracing and warm-up)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= 1:
            self.seconds = getattr(self, "seconds", []) + [time.perf_counter() - self.started]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="micro_kws_xs,ds_cnn")
    parser.add_argument("--steps", default="2000,500")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "training_bench")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)  # a fresh run: no checkpoint of an earlier one
    processor = challenge.lab_audio_processor(synthetic.default_dataset(), ["yes", "no"])
    settings = processor.model_settings
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        flags = argparse.Namespace(
            model_name=name, background_volume=0.1, background_frequency=0.8, time_shift_ms=100.0,
            sample_rate=16000, how_many_training_steps=args.steps, learning_rate="0.001,0.0001",
            eval_step_interval=250, batch_size=100, train_dir=str(args.out / "training"), verbose=0)
        model = models.get_model(settings, name, model_name=name)
        timer = StepTimer()
        _, keras_accuracy = train.train(model, processor, flags, extra_callbacks=[timer])
        checkpoint = checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(flags))
        float_path = convert.convert(model, processor, checkpoint, False, "fp32", args.out / f"{name}.tflite")
        int8_path = convert.convert(model, processor, checkpoint, True, "int8", args.out / f"{name}_quantized.tflite")
        float_accuracy, _ = test_tflite.tflite_test(settings, processor, float_path)
        int8_accuracy, _ = test_tflite.tflite_test(settings, processor, int8_path)
        steps_per_second = flags.eval_step_interval * len(timer.seconds) / sum(timer.seconds)
        print(json.dumps({"model": name, "steps_per_s": round(steps_per_second, 1),
                          "test_examples": processor.set_size(processor.Modes.TESTING),
                          "keras_accuracy": round(keras_accuracy, 4), "float_tflite_accuracy": round(float_accuracy, 4),
                          "int8_tflite_accuracy": round(int8_accuracy, 4),
                          "int8_minus_float_points": round(100 * (int8_accuracy - float_accuracy), 2)}))


if __name__ == "__main__":
    main()
