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

Each stream is reported twice: with the firmware's RecognizeCommands settings (a one-second
average above 200), and with the averaging window and threshold chosen for this model on streams
of the synthetic validation split (streaming.choose_settings: the most keywords found, less the
wrong ones, with at most 10 false alarms per hour on a keyword-free stream three times --minutes
long), never on the streams it is measured on (those use other clips, noise and timing).
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import data  # noqa: E402
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


def scored_streams(model_path, source_dir, noise_dir, split, minutes, out, name, runtime, seeds=(0, 1),
                   keyword_free_minutes=None):
    """The model's scores, as the firmware computes them, on a `minutes` keyword stream (with its
    truth) and on a keyword-free one of keyword_free_minutes (default: as long), made with the two
    seeds: {"stream": (times_ms, scores), "truth", "keyword_free", "keyword_free_seconds"}."""
    settings = lab.model_settings(WANTED_WORDS)
    scored = {"keyword_free_seconds": (keyword_free_minutes or minutes) * 60}
    for kind, share, seed, seconds in (("stream", 0.5, seeds[0], minutes * 60),
                                       ("keyword_free", 0.0, seeds[1], scored["keyword_free_seconds"])):
        samples, truth = streaming.make_stream(source_dir, WANTED_WORDS, duration_s=seconds, keyword_share=share,
                                               split=split, noise_dir=noise_dir, seed=seed)
        wav, _ = streaming.write_stream(out / f"{name}_{kind}.wav", samples, truth)
        recording = data.load_recording(wav, settings["sample_rate"])
        scored[kind] = test_tflite.stream_scores(model_path, recording, settings, runtime)
        if kind == "stream":
            scored["truth"] = truth
    return scored


def stream_figures(scored, recognize_settings):
    """streaming.stream_figures of scored_streams' result with these RecognizeCommands settings ({}
    for the firmware's defaults)."""
    return streaming.stream_figures(scored["stream"], scored["truth"], scored["keyword_free"],
                                    scored["keyword_free_seconds"], WANTED_WORDS, **recognize_settings)


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
    # Other seeds than the measured streams' (other noise and timing), and a keyword-free stream three
    # times as long: in 10 minutes one false alarm is already 6 per hour.
    validation = scored_streams(model_path, data_dir, None, "validation", args.minutes, args.out,
                                "synthetic_validation", runtime, seeds=(2, 3), keyword_free_minutes=3 * args.minutes)
    chosen = streaming.choose_settings(streaming.settings_table(
        validation["stream"], validation["truth"], validation["keyword_free"], validation["keyword_free_seconds"],
        WANTED_WORDS))
    chosen_settings = {key: chosen[key] for key in ("average_window_ms", "detection_threshold")}
    results = {"model": str(model_path), "runtime": runtime, "synthetic_clip_accuracy": round(clip_accuracy, 4),
               "chosen_on_synthetic_validation": chosen}
    streams = {"synthetic": (data_dir, None, "testing")}
    if args.recordings:
        real = test_tflite.evaluate_recordings(model_path, args.recordings, WANTED_WORDS, settings, runtime)
        results["real_clip_balanced_accuracy"] = round(real["balanced_accuracy"], 4)
        streams["real"] = (args.recordings, args.recordings / "_silence_", None)
    for name, (source_dir, noise_dir, split) in streams.items():
        scored = scored_streams(model_path, source_dir, noise_dir, split, args.minutes, args.out, name, runtime)
        results[name] = {"firmware_defaults": stream_figures(scored, {}),
                         "chosen": stream_figures(scored, chosen_settings)}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
