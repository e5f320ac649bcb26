"""Fixtures shared by tests/ and instructor/tests/: the lab's settings, a small synthetic dataset
made once per run, and a briefly trained and converted micro_kws_xs."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

SMALL_WORDS = ["yes", "no", "up", "down", "left", "right"]
SMALL_SPEAKERS = 40


@pytest.fixture(scope="session")
def model_settings():
    """The lab's settings for yes/no: 4 labels, 49 x 40 features."""
    import lab

    return lab.model_settings("yes,no")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A synthetic Speech-Commands-style set: 40 speakers, six words (a few seconds to make)."""
    import synthetic

    return synthetic.make_synthetic_dataset(
        tmp_path_factory.mktemp("synthetic") / "speech", seed=0, speakers=SMALL_SPEAKERS, words=SMALL_WORDS
    )


@pytest.fixture(scope="session")
def audio_processor(small_dataset):
    """The lab's AudioProcessor for yes/no on the small synthetic set."""
    import lab

    return lab.audio_processor(small_dataset, "yes,no")


def lab_flags(tmp_path, **overrides):
    """The notebook's FLAGS (lab.flags) with a short schedule, writing into tmp_path."""
    import lab

    return lab.flags(**{"how_many_training_steps": "200,100", "eval_step_interval": 100,
                        "train_dir": str(tmp_path / "training"), "models_dir": str(tmp_path / "models"),
                        "verbose": 0, **overrides})


@pytest.fixture(scope="session")
def trained_xs(tmp_path_factory, audio_processor, model_settings):
    """micro_kws_xs trained for 300 steps on the small set: (model, flags, best checkpoint, test accuracy)."""
    import keras

    import checkpoints
    import models
    import train

    keras.utils.set_random_seed(0)  # the same starting weights and data order in every run
    flags = lab_flags(tmp_path_factory.mktemp("trained"))
    model = models.get_model(model_settings, "micro_kws_xs", model_name=flags.model_name)
    _, test_accuracy, run_dir = train.train(model, audio_processor, flags)
    return model, flags, checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(run_dir)), test_accuracy


@pytest.fixture(scope="session")
def converted_xs(trained_xs, audio_processor, tmp_path_factory):
    """The trained micro_kws_xs as float32 and int8 .tflite files: (float path, int8 path)."""
    import convert

    model, flags, checkpoint, _ = trained_xs
    out = tmp_path_factory.mktemp("converted")
    float_path = convert.convert(model, audio_processor, checkpoint, False, "fp32", out / "xs.tflite")
    int8_path = convert.convert(model, audio_processor, checkpoint, True, "int8", out / "xs_quantized.tflite")
    return float_path, int8_path


@pytest.fixture(scope="session")
def untrained_int8(audio_processor, model_settings, tmp_path_factory):
    """ds_cnn, cnn and dnn with seeded random weights, converted to int8: {name: (Keras model, .tflite path)}.
    Operators, sizes, MACs and memory plans do not depend on the weights."""
    import keras

    import convert
    import models

    keras.utils.set_random_seed(1)
    out = tmp_path_factory.mktemp("untrained")
    built = {name: models.get_model(model_settings, name) for name in ("ds_cnn", "cnn", "dnn")}
    return {name: (model, convert.convert(model, audio_processor, None, True, "int8", out / f"{name}.tflite"))
            for name, model in built.items()}


@pytest.fixture(scope="session")
def environment_without_tflite_micro(tmp_path_factory):
    """Environment variables for a subprocess in which tflite_micro cannot be imported, as on macOS,
    Windows or Linux on ARM: a package of that name ahead on PYTHONPATH raises ImportError."""
    blocker = tmp_path_factory.mktemp("blocker") / "tflite_micro"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('tflite_micro made unimportable by a test')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")])}
