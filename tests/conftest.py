"""Shared fixtures: the lab's model settings and a small synthetic dataset made once per run."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL_WORDS = ["yes", "no", "up", "down", "left", "right"]


@pytest.fixture(scope="session")
def model_settings():
    """The lab's settings for yes/no: 4 labels, 49 x 40 features."""
    import models

    return models.prepare_model_settings(4, 16000, 1000, 30.0, 20.0, 40)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A synthetic Speech-Commands-style set: 20 speakers, six words (a few seconds to make)."""
    import synthetic

    return synthetic.make_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic") / "speech", seed=0, speakers=20, words=SMALL_WORDS
    )


@pytest.fixture(scope="session")
def audio_processor(small_dataset, model_settings):
    """The lab's AudioProcessor for yes/no on the small synthetic set."""
    import data

    return data.AudioProcessor(
        data_url=None,
        data_dir=small_dataset,
        silence_percentage=25.0,
        unknown_percentage=25.0,
        wanted_words=["yes", "no"],
        validation_percentage=10,
        testing_percentage=10,
        model_settings=model_settings,
        micro=True,
    )
