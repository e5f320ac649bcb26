"""A model trained with other audio settings than the lab's (FLAGS.window_size_ms = 40, which still
gives 49 x 40 features) is refused by challenge.py, submit.py and the grader with the setting named,
or, where challenge.toml says audio_settings = "recorded", measured with the settings it was trained with."""

import shutil

import pytest

import challenge
import lab
import submit
from instructor import grade

WINDOW_40 = {"window_size_ms": 40.0}
REFUSAL = "FLAGS.window_size_ms = 40 (the lab's is 30)"


@pytest.fixture(scope="module")
def window_40_model(tmp_path_factory, small_dataset):
    """kws_model_student (the micro_kws_xs architecture) trained briefly on 40 ms windows and converted
    to int8, in a student's kit folder: (kit folder, int8 path)."""
    import keras

    import checkpoints
    import convert
    import models
    import train
    from conftest import lab_flags

    keras.utils.set_random_seed(0)
    kit = tmp_path_factory.mktemp("window_40") / "kit"
    settings = lab.model_settings("yes,no", WINDOW_40)
    processor = lab.audio_processor(small_dataset, "yes,no", settings)
    flags = lab_flags(kit, model_name="kws_model_student", how_many_training_steps="20,0", eval_step_interval=20,
                      window_size_ms=40.0)
    model = models.get_model(settings, "micro_kws_xs", model_name="kws_model_student")
    _, _, run_dir = train.train(model, processor, flags)
    checkpoint = checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(run_dir))
    paths = convert.model_paths(kit / "models", "kws_model_student", "yes,no")
    convert.convert(model, processor, checkpoint, False, "fp32", paths["float"])
    convert.convert(model, processor, checkpoint, True, "int8", paths["int8"])
    return kit, paths["int8"]


def test_the_run_records_the_window_it_was_trained_with(window_40_model):
    import provenance

    _, int8_path = window_40_model
    assert provenance.read(int8_path)["model_settings"]["window_size_samples"] == 640


def test_challenge_py_refuses_it_naming_the_window(window_40_model, capsys):
    _, int8_path = window_40_model
    with pytest.raises(SystemExit) as stopped:
        challenge.main([str(int8_path), "--wanted-words", "yes,no"])
    assert stopped.value.code == 2 and REFUSAL in capsys.readouterr().err


def test_submit_py_refuses_it_naming_the_window_and_writes_nothing(window_40_model, monkeypatch, capsys):
    kit, _ = window_40_model
    shutil.copytree(submit.ROOT / "student", kit / "student", ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True)
    (kit / "VERSION").write_text("9.9.9\n")
    (kit / "names.txt").write_text("Ada Lovelace\n")
    (kit / "words.txt").write_text("yes,no\n")
    monkeypatch.setattr(submit, "ROOT", kit)
    real_load_challenge = challenge.load_challenge
    monkeypatch.setattr(challenge, "load_challenge",
                        lambda *a, **k: {**real_load_challenge(*a, **k), "groups": {"group99": "yes,no"}})
    assert submit.main(["--skip-tests", "--output", str(kit / "submission.zip")]) == 1
    assert REFUSAL in capsys.readouterr().out
    assert not (kit / "submission.zip").exists()


def test_the_grader_refuses_it_naming_the_window(window_40_model, small_dataset, tmp_path):
    import synthetic

    kit, _ = window_40_model
    own_dir = tmp_path / "submission"
    (own_dir / "scratch").mkdir(parents=True)
    shutil.copytree(kit / "models", own_dir / "kit" / "models")
    datasets = [(small_dataset, synthetic.describe_dataset(small_dataset))]
    with pytest.raises(grade.SubmissionError, match=r"FLAGS\.window_size_ms = 40 \(the lab's is 30\)"):
        grade.measure(own_dir, own_dir / "kit", "yes,no", datasets, timeout=600)


def test_where_the_challenge_keeps_recorded_settings_it_is_measured_on_40_ms_features(window_40_model, small_dataset):
    _, int8_path = window_40_model
    settings = challenge.load_challenge()
    settings["model"]["audio_settings"] = "recorded"
    assert challenge.measurement_settings(int8_path, "yes,no", settings)["window_size_samples"] == 640
    report = challenge.measure_challenge(int8_path, "yes,no", small_dataset, settings=settings)
    assert 0 <= report["int8_test_accuracy"]["value"] <= 1
