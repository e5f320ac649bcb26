"""The XLA switch of train.train (flags.jit_compile): off by default on a CPU, on when asked."""

import keras
import pytest

import models
import train
from conftest import lab_flags


def _trained(audio_processor, model_settings, tmp_path, **flags):
    keras.utils.set_random_seed(0)
    model = models.get_model(model_settings, "micro_kws_xs")
    flags = lab_flags(tmp_path, how_many_training_steps="10,5", eval_step_interval=15, **flags)
    _, test_accuracy, _ = train.train(model, audio_processor, flags)
    return model, test_accuracy


@pytest.mark.slow  # XLA compiles the training step: about 15 s on 2 idle cores
def test_training_compiles_with_xla_when_flags_ask_for_it(audio_processor, model_settings, tmp_path):
    model, test_accuracy = _trained(audio_processor, model_settings, tmp_path, jit_compile=True)
    assert model.jit_compile is True
    assert 0.0 <= test_accuracy <= 1.0


def test_without_the_flag_a_cpu_only_machine_trains_without_xla(audio_processor, model_settings, tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("Keras's default turns XLA on where a GPU is present.")
    model, _ = _trained(audio_processor, model_settings, tmp_path)
    assert model.jit_compile is False
