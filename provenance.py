"""A model's provenance: what its training run records, and how a measurement uses it.

Every training run writes run.json (record), and every model converted from the run carries a
copy in the <model>.json beside the .tflite file (convert.py). What measures a model (the
notebook's challenge check, submit.py, challenge.py, the grader) reads it back (read) and either
measures the model with the audio settings it was trained with or refuses it when they are not
the lab's (challenge.toml's [model] audio_settings decides; see setting_problems).
"""

import datetime
import json
from pathlib import Path

import lab

# The audio settings as the notebook's FLAGS name them, with how a run records each
# (model_settings holds them as sample counts) and how to show the recorded value.
SETTING_FLAGS = {
    "sample_rate": ("FLAGS.sample_rate", lambda value, rate: f"{value}"),
    "desired_samples": ("FLAGS.clip_duration_ms", lambda value, rate: f"{value * 1000 / rate:g}"),
    "window_size_samples": ("FLAGS.window_size_ms", lambda value, rate: f"{value * 1000 / rate:g}"),
    "window_stride_samples": ("FLAGS.window_stride_ms", lambda value, rate: f"{value * 1000 / rate:g}"),
    "dct_coefficient_count": ("FLAGS.dct_coefficient_count", lambda value, rate: f"{value}"),
}
SPLIT_FLAGS = {"validation_percentage": lab.VALIDATION_PERCENTAGE, "testing_percentage": lab.TESTING_PERCENTAGE}


def run_record(model, audio_processor, flags, architecture):
    """What a training run records in its run.json: the model and its architecture, the keywords,
    the dataset, every audio setting (as model_settings), the shares and the split, the
    augmentation and the schedule. architecture: model.to_json() as a dict."""
    import synthetic

    return {
        "model_name": flags.model_name,
        "wanted_words": list(audio_processor.wanted_words),
        "dataset": synthetic.describe_dataset(audio_processor.data_dir),
        "model_settings": dict(audio_processor.model_settings),
        "micro": audio_processor.micro,
        "examples": {
            "silence_percentage": audio_processor.silence_percentage,
            "unknown_percentage": audio_processor.unknown_percentage,
            "validation_percentage": audio_processor.validation_percentage,
            "testing_percentage": audio_processor.testing_percentage,
            "background_volume": flags.background_volume,
            "background_frequency": flags.background_frequency,
            "time_shift_ms": flags.time_shift_ms,
            "time_mask_frames": getattr(flags, "time_mask_frames", 0),
            "frequency_mask_channels": getattr(flags, "frequency_mask_channels", 0),
        },
        "schedule": {"how_many_training_steps": str(flags.how_many_training_steps),
                     "learning_rate": str(flags.learning_rate), "batch_size": flags.batch_size},
        "architecture": architecture,
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def read(tflite_path):
    """The provenance recorded beside a converted model (its <model>.json), or None without one."""
    path = Path(tflite_path).with_suffix(".json")
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("provenance")
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{path} is damaged ({error}): convert the model again in the notebook.") from error


def setting_problems(recorded, wanted_words):
    """How the audio settings a model was trained with (its run's model_settings) differ from the
    lab's, one line per setting in the notebook's FLAGS names; [] when they are the lab's.

    Why the settings themselves are compared: a 40 ms window still gives 49 x 40 features, so a
    model measured on the lab's features would be graded on features it never saw, unnoticed.
    """
    expected = lab.model_settings(wanted_words)
    rate = recorded.get("sample_rate") or expected["sample_rate"]
    return [f"{flag} = {shown(recorded[key], rate)} (the lab's is {shown(expected[key], expected['sample_rate'])})"
            for key, (flag, shown) in SETTING_FLAGS.items() if key in recorded and recorded[key] != expected[key]]


def split_problems(provenance):
    """How the speaker split a model was trained with differs from the lab's; [] when it is the
    lab's. Another split would put test speakers into training: no measurement can take it."""
    examples = (provenance or {}).get("examples") or {}
    return [f"FLAGS.{key} = {examples[key]:g} (the lab's is {value})"
            for key, value in SPLIT_FLAGS.items() if key in examples and examples[key] != value]
