#!/usr/bin/env python3
"""Quantization loss (and training speed through train.train) on the synthetic yes/no task.

    python benchmarks/quantization.py [--models micro_kws_xs,ds_cnn] [--steps 2000,500] [--out build/training_bench]

For each model, trained with the lab's settings (lab.flags) on the lab's yes/no AudioProcessor:
training steps per second after the first epoch (see runs.EpochTimer), and the test accuracy of
the Keras model, the float32 .tflite and the int8 .tflite. Target: int8 within 1 point of float.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402

import lab  # noqa: E402
import synthetic  # noqa: E402
import test_tflite  # noqa: E402
from benchmarks.runs import EpochTimer, build_model, train_and_convert  # noqa: E402

WANTED_WORDS = ["yes", "no"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="micro_kws_xs,ds_cnn")
    parser.add_argument("--steps", default="2000,500")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "training_bench")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)  # no model or run of an earlier invocation left in it
    processor = lab.audio_processor(synthetic.default_dataset(), WANTED_WORDS)
    settings = processor.model_settings
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        flags = lab.flags(model_name=name, wanted_words=",".join(processor.wanted_words),
                          how_many_training_steps=args.steps, eval_step_interval=250,
                          train_dir=str(args.out / "training"), verbose=0)
        timer = EpochTimer()
        trained = train_and_convert(build_model(name, settings), processor, flags, args.out, extra_callbacks=[timer])
        float_accuracy, _ = test_tflite.tflite_test(settings, processor, trained.float_path)
        int8_accuracy, _ = test_tflite.tflite_test(settings, processor, trained.int8_path)
        print(json.dumps({"model": name, "steps_per_s": round(timer.steps_per_second(flags.eval_step_interval), 1),
                          "test_examples": processor.set_size(processor.Modes.TESTING),
                          "keras_accuracy": round(trained.test_accuracy, 4),
                          "float_tflite_accuracy": round(float_accuracy, 4),
                          "int8_tflite_accuracy": round(int8_accuracy, 4),
                          "int8_minus_float_points": round(100 * (int8_accuracy - float_accuracy), 2)}))


if __name__ == "__main__":
    main()
