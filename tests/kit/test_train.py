"""train.py: a short run learns, checkpoints are Keras 3 files, runs resume, several devices work."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import checkpoints
import lab
import models
import train
from conftest import ROOT, lab_flags

pytestmark = pytest.mark.slow


def test_a_short_run_beats_chance_by_a_wide_margin(trained_xs, audio_processor):
    _, _, _, test_accuracy = trained_xs
    counts = np.bincount(audio_processor.labels(audio_processor.Modes.TESTING))
    chance = counts.max() / counts.sum()
    assert test_accuracy > chance + 0.25, f"test accuracy {test_accuracy:.3f}, chance {chance:.3f}"


def test_the_best_checkpoint_is_a_keras_3_weights_file_named_by_accuracy(trained_xs):
    _, flags, checkpoint, _ = trained_xs
    path = Path(checkpoint)
    assert path.parent.parent.parent == Path(flags.train_dir) / "micro_kws_xs_yes_no"
    assert path.parent.parent.name.startswith("run-") and path.parent.name == "best"
    assert checkpoints.CHECKPOINT_PATTERN.search(path.name) and path.name.startswith("micro_kws_xs_")


def test_a_run_records_what_was_trained_on_what(trained_xs, small_dataset):
    _, _, checkpoint, _ = trained_xs
    record = checkpoints.read_run_record(checkpoint)
    assert record["model_name"] == "micro_kws_xs" and record["wanted_words"] == ["yes", "no"]
    assert record["dataset"]["kind"] == "synthetic" and record["dataset"]["path"] == str(small_dataset.resolve())
    assert record["model_settings"]["label_count"] == 4 and record["schedule"]["how_many_training_steps"] == "200,100"


def test_a_checkpoint_round_trips_into_a_new_model(trained_xs, model_settings):
    model, _, checkpoint, _ = trained_xs
    fresh = models.get_model(model_settings, "micro_kws_xs")
    checkpoints.load_checkpoint(fresh, checkpoint)
    reloaded = models.get_model(model_settings, "micro_kws_xs")
    checkpoints.load_checkpoint(reloaded, checkpoint)
    features = np.random.rand(5, 1960).astype("float32") * 26
    np.testing.assert_array_equal(fresh(features).numpy(), reloaded(features).numpy())


def test_testing_a_checkpoint_leaves_the_callers_model_as_it_was(trained_xs, model_settings, audio_processor):
    import test

    _, _, checkpoint, _ = trained_xs
    untrained = models.get_model(model_settings, "micro_kws_xs")
    before = [w.copy() for w in untrained.get_weights()]
    test.test(untrained, audio_processor, model_settings, checkpoint)
    for kept, now in zip(before, untrained.get_weights()):
        np.testing.assert_array_equal(kept, now)


def test_a_checkpoint_of_another_architecture_is_refused_clearly(trained_xs, model_settings):
    _, _, checkpoint, _ = trained_xs
    with pytest.raises(ValueError, match="does not fit model"):
        checkpoints.load_checkpoint(models.get_model(model_settings, "dnn"), checkpoint)


def test_latest_checkpoint_picks_the_best_accuracy(tmp_path):
    for name in ("m_0.500.weights.h5", "m_0.875.weights.h5", "m_0.750.weights.h5"):
        (tmp_path / name).write_bytes(b"")
    assert Path(checkpoints.latest_checkpoint(tmp_path)).name == "m_0.875.weights.h5"


def test_latest_checkpoint_in_an_empty_directory_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="Train first"):
        checkpoints.latest_checkpoint(tmp_path)


def test_steps_and_learning_rates_must_have_the_same_phases(tmp_path, audio_processor, model_settings):
    flags = lab_flags(tmp_path, how_many_training_steps="100,100,100", learning_rate="0.001,0.0001")
    with pytest.raises(ValueError, match="same number of phases"):
        train.train(models.get_model(model_settings, "micro_kws_xs"), audio_processor, flags)


def test_the_learning_rate_changes_at_the_end_of_each_phase():
    assert train._boundaries([12000, 3000]) == [12000]
    assert train._boundaries([100, 200, 300]) == [100, 300]


def _small_batch_norm_model(model_settings):
    """A convolution, batch normalization and a classifier on the lab's features, named "small_bn"."""
    inputs = keras.Input(shape=(model_settings["fingerprint_size"],))
    x = keras.layers.Reshape((model_settings["spectrogram_length"], model_settings["dct_coefficient_count"], 1))(inputs)
    x = keras.layers.Conv2D(8, (5, 4), strides=(2, 2), padding="same")(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(model_settings["label_count"], activation="softmax")(x)
    return keras.Model(inputs, outputs, name="small_bn")


class _Interrupt(keras.callbacks.Callback):
    """Stops the run like a Ctrl-C after the given epoch."""

    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_and_keeps_its_best_checkpoint(tmp_path, audio_processor, model_settings):
    # a model with batch normalization, so the run fits train.training_copy and resumes into a new one
    flags = lab_flags(tmp_path, model_name="small_bn", how_many_training_steps="150,50", eval_step_interval=50)
    model = _small_batch_norm_model(model_settings)
    run_dir = train.start_run(model, audio_processor, flags)  # as the notebook does: the run is named first
    with pytest.raises(KeyboardInterrupt):
        train.train(model, audio_processor, flags, extra_callbacks=[_Interrupt(after_epoch=1)], run_dir=run_dir)
    batch_norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert np.any(batch_norm.moving_mean.numpy() != 0), "the stopped run's statistics must be in the model"
    best_before = checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(run_dir))

    flags.resume_run = run_dir.name  # resuming is asked for by the run's name
    history, _, resumed_dir = train.train(_small_batch_norm_model(model_settings), audio_processor, flags)
    assert resumed_dir == run_dir
    assert len(history.history["loss"]) == 2, "the resumed run must continue at epoch 3 of 4"
    assert os.path.exists(best_before)
    best_accuracy_before = float(checkpoints.CHECKPOINT_PATTERN.search(best_before).group(1))
    assert checkpoints.best_accuracy(checkpoints.checkpoint_dir(run_dir)) >= best_accuracy_before


def test_the_training_curves_plot_loss_and_accuracy():
    history = keras.callbacks.History()
    history.history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]}
    figure = train.plot_history(history)
    assert [axis.get_ylabel() for axis in figure.axes] == ["loss", "accuracy"]
    assert all(len(axis.lines) == 2 for axis in figure.axes)


def test_training_runs_on_two_devices_with_mirrored_strategy(small_dataset, tmp_path):
    script = textwrap.dedent(f"""
        import sys, tensorflow as tf
        sys.path.insert(0, {str(ROOT)!r})
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, lab, train
        from conftest import lab_flags
        from pathlib import Path
        settings = lab.model_settings("yes,no")
        processor = lab.audio_processor({str(small_dataset)!r}, "yes,no")
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():  # with batch normalization: fitted as a training copy
            inputs = keras.Input(shape=(settings["fingerprint_size"],))
            x = keras.layers.Reshape((settings["spectrogram_length"], settings["dct_coefficient_count"], 1))(inputs)
            x = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, (5, 4), strides=(2, 2))(x))
            outputs = keras.layers.Dense(settings["label_count"], activation="softmax")(keras.layers.Flatten()(x))
            model = keras.Model(inputs, outputs, name="small_bn")
        flags = lab_flags(Path({str(tmp_path)!r}), model_name="small_bn", how_many_training_steps="20,20",
                          eval_step_interval=20)
        history, accuracy, run_dir = train.train(model, processor, flags)
        print("REPLICAS", strategy.num_replicas_in_sync, "EPOCHS", len(history.history["loss"]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert "REPLICAS 2 EPOCHS 2" in result.stdout, result.stderr[-3000:]


def test_runs_of_different_models_and_keywords_in_one_train_dir_each_load_their_own_weights(
        tmp_path, audio_processor, small_dataset, model_settings):

    up_down = lab.audio_processor(small_dataset, "up,down")
    runs = []
    for name, processor in (("micro_kws_xs", audio_processor), ("dnn", up_down)):  # dnn: fitted as a copy
        flags = lab_flags(tmp_path, model_name=name, how_many_training_steps="40,10", eval_step_interval=50)
        model = models.get_model(model_settings, name, model_name=name)
        _, _, run_dir = train.train(model, processor, flags)
        runs.append((name, run_dir, checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(run_dir)), model))
    (xs_name, xs_run, xs_checkpoint, xs_model), (dnn_name, dnn_run, dnn_checkpoint, dnn_model) = runs
    assert xs_run != dnn_run and Path(dnn_run).parent.name == "dnn_up_down"
    assert checkpoints.read_run_record(dnn_checkpoint)["wanted_words"] == ["up", "down"]
    for name, checkpoint, trained in ((xs_name, xs_checkpoint, xs_model), (dnn_name, dnn_checkpoint, dnn_model)):
        fresh = models.get_model(model_settings, name)
        checkpoints.load_checkpoint(fresh, checkpoint)
        for loaded, kept in zip(fresh.get_weights(), trained.get_weights()):
            np.testing.assert_array_equal(loaded, kept)


def test_a_new_run_keeps_its_own_best_even_when_an_earlier_run_was_better(tmp_path, audio_processor, model_settings):
    first = lab_flags(tmp_path, how_many_training_steps="100,0", eval_step_interval=50)
    _, _, first_run = train.train(models.get_model(model_settings, "micro_kws_xs"), audio_processor, first)
    second = lab_flags(tmp_path, how_many_training_steps="1,0", eval_step_interval=1, learning_rate="0.0,0.0")
    _, _, second_run = train.train(models.get_model(model_settings, "micro_kws_xs"), audio_processor, second)
    assert second_run != first_run
    checkpoint = checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(second_run))  # saved, though worse
    assert Path(checkpoint).parent.parent == second_run


def test_resuming_a_run_that_does_not_exist_lists_the_runs_there(tmp_path, audio_processor, model_settings):
    flags = lab_flags(tmp_path, resume_run="run-20990101-000000")
    with pytest.raises(ValueError, match="No run 'run-20990101-000000' to resume .*Runs of this model"):
        train.train(models.get_model(model_settings, "micro_kws_xs"), audio_processor, flags)


def test_a_checkpoint_of_other_keywords_count_is_refused_before_loading(trained_xs):
    _, _, checkpoint, _ = trained_xs
    three_classes = models.get_model(lab.model_settings(["yes"]), "micro_kws_xs")
    with pytest.raises(ValueError, match="trained for 4 classes .*yes, no.*has 3"):
        checkpoints.load_checkpoint(three_classes, checkpoint)


def test_the_checkpoint_folder_before_any_training_says_to_train_first():
    with pytest.raises(ValueError, match="No training run yet"):
        checkpoints.checkpoint_dir(None)


def test_training_a_model_again_starts_from_fresh_weights(tmp_path, audio_processor, model_settings):
    model = models.get_model(model_settings, "micro_kws_xs")
    model.set_weights([np.full_like(w, 0.5) for w in model.get_weights()])  # what an earlier run left
    flags = lab_flags(tmp_path, how_many_training_steps="1,0", eval_step_interval=1, learning_rate="0.0,0.0")
    train.train(model, audio_processor, flags)  # a learning rate of 0: the weights stay where training began
    kernel = model.get_weights()[0]
    assert not np.all(kernel == 0.5) and len(np.unique(kernel)) > 10


def test_a_model_that_is_not_flags_model_name_is_refused_before_a_run_starts(tmp_path, audio_processor, model_settings):
    flags = lab_flags(tmp_path, model_name="kws_model_student")
    with pytest.raises(ValueError, match=r"model is 'micro_kws_xs' but FLAGS.model_name is 'kws_model_student'.*"
                                         r"run the model cell \(section 3\) again"):
        train.train(models.get_model(model_settings, "micro_kws_xs"), audio_processor, flags)
    assert not (tmp_path / "training").exists()


def test_a_run_is_named_before_training_with_how_to_resume_it(tmp_path, audio_processor, model_settings, capsys):
    flags = lab_flags(tmp_path)
    run_dir = train.start_run(models.get_model(model_settings, "micro_kws_xs"), audio_processor, flags)
    assert (run_dir / "run.json").is_file() and not (run_dir / "best").exists()
    train.print_run_start(run_dir)
    assert f"FLAGS.resume_run = '{run_dir.name}'" in capsys.readouterr().out


def test_a_run_records_the_architecture_it_trained(trained_xs, model_settings):
    import json

    _, _, checkpoint, _ = trained_xs
    architecture = checkpoints.read_run_record(checkpoint)["architecture"]
    rebuilt = keras.models.model_from_json(json.dumps(architecture))
    built = models.get_model(model_settings, "micro_kws_xs")
    assert [type(layer) for layer in rebuilt.layers] == [type(layer) for layer in built.layers]
    assert rebuilt.count_params() == built.count_params() and "compile_config" not in architecture


# --- Batch normalization trained with TensorFlow's fused kernel -----------------------------------

def test_fused_batch_normalization_normalizes_and_differentiates_as_keras_does():
    import tensorflow as tf

    stock = keras.layers.BatchNormalization(momentum=0.9)
    fused = train.BatchNormalization(momentum=0.9)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (16, 12, 10, 8)), tf.float32)
    weights = tf.constant(rng.normal(size=x.shape), tf.float32)  # a loss whose gradients are not all zero
    for layer in (stock, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 8))
    results = []
    for layer in (stock, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights)
        results.append((y, *tape.gradient(loss, [x, layer.gamma, layer.beta])))
    for ours, keras_ in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, keras_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean, stock.moving_mean, rtol=1e-5, atol=1e-6)
    # the batch's sample variance: n / (n - 1) with n = 16 x 12 x 10 values per channel
    np.testing.assert_allclose(fused.moving_variance, stock.moving_variance, rtol=1e-2)


def test_the_training_copy_infers_as_the_model_and_its_weights_files_load_into_the_model(tmp_path, model_settings):
    model = _small_batch_norm_model(model_settings)
    copy = train.training_copy(model)
    assert copy is not model
    fused = [layer for layer in copy.layers if type(layer) is train.BatchNormalization]
    assert len(fused) == 1
    x = np.random.default_rng(1).uniform(0, 26, (4, model_settings["fingerprint_size"])).astype("float32")
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    fused[0].moving_mean.assign(np.full(8, 0.25))  # as training would change it
    copy.save_weights(tmp_path / "copy.weights.h5")
    model.load_weights(tmp_path / "copy.weights.h5")
    for loaded, written in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(loaded, written)


def test_a_model_without_batch_normalization_is_fitted_as_it_is(model_settings):
    model = models.get_model(model_settings, "micro_kws_xs")
    assert train.training_copy(model) is model


class _Scale(keras.layers.Layer):
    """A student's own layer whose configuration Keras cannot rebuild it from (no get_config)."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor


def test_the_training_copy_shares_every_layer_but_batch_normalization():
    inputs = keras.Input(shape=(12, 10, 1))
    x = _Scale(3.0)(keras.layers.Conv2D(4, (3, 3))(inputs))
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    copy = train.training_copy(model)
    shared = [layer is original for layer, original in zip(copy.layers[1:], model.layers[1:])]  # [0]: its input
    assert shared == [True, True, False, True, True]
