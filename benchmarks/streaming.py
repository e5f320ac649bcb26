#!/usr/bin/env python3
"""What the board will do: the int8 model on continuous streams, beside its clip accuracy.

    python benchmarks/streaming.py [--model MODEL.tflite] [--steps 2000,500] [--minutes 10]
                                   [--recordings ../shared/realdev] [--out build/streaming]

The model: --model, or micro_kws_xs trained on the synthetic yes/no task with --steps (the
schedule `make flow` uses) and converted to int8. Measured on the device's runtime (TFLite-Micro,
or LiteRT's reference kernels where it is missing), with RecognizeCommands' defaults:
  clips           accuracy on the synthetic test split (one-second clips)
  stream          a --minutes stream of the synthetic test split's words, one every 2 s, half of
                  them keywords, over background noise at volume 0.1: matched / wrong / missed
                  keywords and false alarms (a detection within 750 ms of a spoken keyword counts)
  keyword-free    a --minutes stream of other words only: false alarms per hour
With --recordings (real recordings, Speech Commands layout, noise in its _silence_ folder): the
balanced accuracy on its clips, and the same two streams made from them.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lab  # noqa: E402
import streaming  # noqa: E402
import synthetic  # noqa: E402
import test_tflite  # noqa: E402
from benchmarks.runs import build_model, train_and_convert  # noqa: E402

WANTED_WORDS = ["yes", "no"]


def trained_model(processor, steps, out):
    """micro_kws_xs trained on the processor's task and converted to int8; the .tflite file's path."""
    import keras

    flags = lab.flags(model_name="micro_kws_xs", wanted_words=",".join(processor.wanted_words),
                      how_many_training_steps=steps, eval_step_interval=250, train_dir=str(out / "training"),
                      verbose=0)
    keras.utils.set_random_seed(0)
    model = build_model(flags.model_name, processor.model_settings)
    return train_and_convert(model, processor, flags, out).int8_path


def stream_figures(model_path, source_dir, noise_dir, split, minutes, out, name, runtime):
    """Metrics on a keyword stream and false alarms per hour on a keyword-free one."""
    settings = lab.model_settings(WANTED_WORDS)
    seconds = minutes * 60
    samples, truth = streaming.make_stream(source_dir, WANTED_WORDS, duration_s=seconds, split=split,
                                           noise_dir=noise_dir, seed=0)
    wav, _ = streaming.write_stream(out / f"{name}_stream.wav", samples, truth)
    detections = test_tflite.detect_keywords(model_path, wav, WANTED_WORDS, settings, runtime)
    metrics = streaming.stream_metrics(detections, truth)
    quiet, _ = streaming.make_stream(source_dir, WANTED_WORDS, duration_s=seconds, keyword_share=0.0,
                                     split=split, noise_dir=noise_dir, seed=1)
    quiet_wav, _ = streaming.write_stream(out / f"{name}_keyword_free.wav", quiet, [])
    false_alarms = test_tflite.detect_keywords(model_path, quiet_wav, WANTED_WORDS, settings, runtime)
    return {**metrics, "keyword_free_false_alarms_per_hour": streaming.false_alarms_per_hour(false_alarms, seconds)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--steps", default="2000,500")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--recordings", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "streaming")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data_dir = synthetic.default_dataset()
    processor = lab.audio_processor(data_dir, WANTED_WORDS)
    settings = processor.model_settings
    model_path = args.model or trained_model(processor, args.steps, args.out)
    runtime = test_tflite.device_runtime()
    clip_accuracy, _ = test_tflite.tflite_test(settings, processor, model_path, runtime=runtime)
    results = {"model": str(model_path), "runtime": runtime, "synthetic_clip_accuracy": round(clip_accuracy, 4),
               "synthetic": stream_figures(model_path, data_dir, None, "testing", args.minutes, args.out,
                                           "synthetic", runtime)}
    if args.recordings:
        real = test_tflite.evaluate_recordings(model_path, args.recordings, WANTED_WORDS, settings, runtime)
        results["real_clip_balanced_accuracy"] = round(real["balanced_accuracy"], 4)
        results["real"] = stream_figures(model_path, args.recordings, args.recordings / "_silence_", None,
                                         args.minutes, args.out, "real", runtime)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
