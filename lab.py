"""The lab's conventions, each written once.

The notebook's parameters cell (section 2) is the handout: it states the lab's settings for
students to read and change. Everything else in the kit (run_flow.py, submit.py, the challenge,
the grader, the tests and the benchmarks) takes them from here, so an instructor who changes a
convention of the lab changes it in this file, and a test checks that the notebook's cell agrees.

    flags()             the notebook's FLAGS with the lab's values (overrides as keyword arguments)
    model_settings()    the sizes the lab's audio settings give for some keywords
    audio_processor()   the lab's data.AudioProcessor for some keywords on a dataset
    keywords(), keyword_stem(), label_count(), class_share()   the keyword rules
    read_words(), read_names()                                 the group's words.txt and names.txt

No TensorFlow at import: submit.py and the grader read the conventions without it.
"""

import argparse
import re
from pathlib import Path

import speech_commands

ROOT = Path(__file__).resolve().parent

# Audio: the dataset's one-second clips at its sample rate (speech_commands.py).
SAMPLE_RATE = speech_commands.SAMPLE_RATE
CLIP_DURATION_MS = speech_commands.CLIP_DURATION_MS

# Features: 30 ms windows every 20 ms, 40 channels -> 49 x 40 values per clip.
WINDOW_SIZE_MS = 30.0
WINDOW_STRIDE_MS = 20.0
FEATURE_CHANNELS = 40  # dct_coefficient_count, the name TensorFlow's speech_commands example uses

AUDIO_SETTINGS = {
    "sample_rate": SAMPLE_RATE,
    "clip_duration_ms": CLIP_DURATION_MS,
    "window_size_ms": WINDOW_SIZE_MS,
    "window_stride_ms": WINDOW_STRIDE_MS,
    "dct_coefficient_count": FEATURE_CHANNELS,
}

# Percent of speakers held out for validation and for testing (the dataset's hash rule).
VALIDATION_PERCENTAGE = 10
TESTING_PERCENTAGE = 10

# The classes besides the keywords, first in every label list: silence and unknown.
EXTRA_CLASSES = tuple(speech_commands.prepare_words_list([]))

DEFAULT_KEYWORDS = "yes,no"  # until words.txt names the group's keywords

# What a group fills in and hands in, and where the instructor's challenge is described.
STUDENT_FILES = ["student/metrics.py", "student/callbacks.py", "student/estimate.py", "student/model.py"]
ANSWERS_FILE = "student/answers.md"
CHALLENGE_FILE = ROOT / "challenge.toml"

KEYWORD_LINE = re.compile(r"[a-z]+(,[a-z]+)*")  # what words.txt holds, e.g. "up,down"


def keywords(wanted_words):
    """The keywords as a list, from "yes,no" or ["yes", "no"] (spaces ignored)."""
    if isinstance(wanted_words, str):
        wanted_words = wanted_words.split(",")
    return [word.strip() for word in wanted_words if word.strip()]


def keyword_stem(wanted_words):
    """The keywords as they appear in file names: "yes,no" -> "yesno"."""
    return "".join(keywords(wanted_words))


def label_count(wanted_words):
    """The number of classes: the keywords plus silence and unknown."""
    return len(keywords(wanted_words)) + len(EXTRA_CLASSES)


def class_share(wanted_words):
    """The percentage of silence and of unknown examples: each as common as one keyword."""
    return 100.0 / label_count(wanted_words)


def model_settings(wanted_words, audio_settings=None):
    """The sizes (models.prepare_model_settings) of the lab's audio settings for these keywords;
    audio_settings: other values for some of them (e.g. {"window_size_ms": 40.0})."""
    import models

    return models.prepare_model_settings(label_count(wanted_words), **{**AUDIO_SETTINGS, **(audio_settings or {})})


def audio_processor(data_dir, wanted_words, settings=None, **options):
    """The lab's data.AudioProcessor of these keywords on data_dir: micro features, silence and
    unknown each one keyword's share, the lab's speaker split. settings: model settings other
    than the lab's (a run's own); options go to data.AudioProcessor (e.g. stored_variants)."""
    import data

    share = class_share(wanted_words)
    return data.AudioProcessor(
        data_url=None,
        data_dir=data_dir,
        silence_percentage=share,
        unknown_percentage=share,
        wanted_words=keywords(wanted_words),
        validation_percentage=VALIDATION_PERCENTAGE,
        testing_percentage=TESTING_PERCENTAGE,
        model_settings=settings or model_settings(wanted_words),
        micro=True,
        **options,
    )


def flags(**overrides):
    """The notebook's FLAGS with the lab's values (section 2 of Flow.ipynb states the same ones),
    the derived values (num_classes, the silence and unknown shares) included; overrides replace
    values, and the derived ones follow a changed wanted_words."""
    wanted_words = overrides.get("wanted_words", DEFAULT_KEYWORDS)
    return argparse.Namespace(**{
        "model_name": "micro_kws_xs",
        "dataset": "speech_commands",
        "wanted_words": wanted_words,
        "num_classes": label_count(wanted_words),
        "background_volume": 0.1,
        "background_frequency": 0.8,
        "silence_percentage": class_share(wanted_words),
        "unknown_percentage": class_share(wanted_words),
        "time_shift_ms": 100.0,
        "time_mask_frames": 0,
        "frequency_mask_channels": 0,
        "validation_percentage": VALIDATION_PERCENTAGE,
        "testing_percentage": TESTING_PERCENTAGE,
        **AUDIO_SETTINGS,
        "how_many_training_steps": "12000,3000",
        "learning_rate": "0.001,0.0001",
        "eval_step_interval": 400,
        "batch_size": 100,
        "train_dir": "training",
        "resume_run": None,
        "models_dir": "models",
        "submission_run": None,
        **overrides,
    })


def read_lines(path):
    """Non-empty lines of a text file without # comments."""
    lines = [line.split("#", 1)[0].strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def read_names(root=ROOT):
    """The group's names from names.txt (one per line)."""
    path = Path(root) / "names.txt"
    if not path.is_file():
        raise ValueError("names.txt is missing: create it with your names, one per line.")
    names = read_lines(path)
    if not names:
        raise ValueError("names.txt has no names: write your names into it, one per line.")
    return names


def read_words(root=ROOT, groups=None):
    """The group's keywords from words.txt ("up,down"), checked against challenge.toml's groups."""
    path = Path(root) / "words.txt"
    if not path.is_file():
        raise ValueError("words.txt is missing: create it with your group's keywords, e.g. 'up,down'.")
    lines = read_lines(path)
    if len(lines) != 1 or not KEYWORD_LINE.fullmatch(lines[0].replace(" ", "")):
        raise ValueError("words.txt must hold one line of comma-separated keywords, e.g. 'up,down'.")
    words = lines[0].replace(" ", "")
    if groups and words not in groups.values():
        raise ValueError(f"words.txt says '{words}', which is no group's keyword set in challenge.toml "
                         f"({', '.join(sorted(groups.values()))}).")
    return words


def notebook_keywords(root=ROOT, default=DEFAULT_KEYWORDS):
    """FLAGS.wanted_words for the notebook: words.txt's keywords, or `default` while it holds none.

    words.txt is the one place for the group's keywords: the notebook trains on them and submit.py
    packs and checks the models of them, so the two cannot disagree.
    """
    path = Path(root) / "words.txt"
    if not path.is_file() or not read_lines(path):
        return default
    return read_words(root)
