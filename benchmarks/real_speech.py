#!/usr/bin/env python3
"""How well does a model trained only on the synthetic set recognize real people?

    python benchmarks/real_speech.py --recordings DIR [--wanted-words yes,no] [--steps 8000,2000]
                                     [--speakers N] [--seed 0] [--out build/real_speech]

Makes (or reuses) the synthetic dataset, trains micro_kws_xs on it with a fixed schedule, converts
it to int8 and prints test_tflite.evaluate_recordings on DIR (real recordings in the Speech
Commands layout), next to the accuracy on the synthetic test split. About 12 minutes on 2 cores
for yes/no with the default schedule (2 of them to make the dataset the first time).
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

import checkpoints  # noqa: E402
import convert  # noqa: E402
import data  # noqa: E402
import models  # noqa: E402
import synthetic  # noqa: E402
import test_tflite  # noqa: E402
import train  # noqa: E402


def run(recordings, wanted_words, steps, data_dir, out, model_name="micro_kws_xs", seed=0):
    """Trains on data_dir, converts to int8, evaluates on the recordings; returns a result dict."""
    settings = models.lab_model_settings(wanted_words)
    share = 100.0 / (len(wanted_words) + 2)
    processor = data.AudioProcessor(None, data_dir, share, share, wanted_words, 10, 10, settings, micro=True)
    flags = argparse.Namespace(
        model_name=model_name, background_volume=0.1, background_frequency=0.8, time_shift_ms=100.0,
        sample_rate=16000, how_many_training_steps=steps, learning_rate="0.001,0.0001",
        eval_step_interval=500, batch_size=100, train_dir=str(out / "training"), verbose=0)
    import keras

    keras.utils.set_random_seed(seed)
    model = models.get_model(settings, model_name, model_name=model_name)
    started = time.time()
    train.train(model, processor, flags)
    training_seconds = time.time() - started
    checkpoint = checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(flags))
    int8_path = convert.convert(model, processor, checkpoint, True, "int8", out / f"{model_name}_quantized.tflite")
    synthetic_accuracy, _ = test_tflite.tflite_test(settings, processor, int8_path)
    result = test_tflite.evaluate_recordings(int8_path, recordings, wanted_words, settings)
    return {"synthetic_test_accuracy": synthetic_accuracy, "training_seconds": training_seconds, **result}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=Path, required=True)
    parser.add_argument("--wanted-words", default="yes,no")
    parser.add_argument("--steps", default="8000,2000")
    parser.add_argument("--speakers", type=int, default=synthetic.DEFAULT_SPEAKERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "real_speech")
    args = parser.parse_args()

    wanted_words = args.wanted_words.split(",")
    if args.speakers == synthetic.DEFAULT_SPEAKERS and args.seed == 0:
        data_dir = synthetic.default_dataset()
    else:
        data_dir = synthetic.make_synthetic_dataset(
            ROOT / "datasets" / f"synthetic_{args.speakers}_seed{args.seed}", seed=args.seed, speakers=args.speakers)
    out = args.out / "".join(wanted_words)
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: no checkpoint or backup of an earlier one
    out.mkdir(parents=True)
    result = run(args.recordings, wanted_words, args.steps, data_dir, out, seed=args.seed)
    test_tflite.print_recordings_report({**result, "errors": []}, data.prepare_words_list(wanted_words))
    print(json.dumps({"wanted_words": args.wanted_words, "steps": args.steps,
                      "synthetic_test_accuracy": round(result["synthetic_test_accuracy"], 3),
                      "real_balanced_accuracy": round(result["balanced_accuracy"], 3),
                      "real_accuracy": round(result["accuracy"], 3), "count": result["count"],
                      "training_seconds": round(result["training_seconds"])}))


if __name__ == "__main__":
    main()
