"""A model is measured on the dataset it was trained on, as its provenance says, or not at all."""

import json
import shutil

import pytest

import challenge
import lab
import models
import provenance
import submit
import synthetic


def _model_with_provenance(folder, dataset, wanted_words=("yes", "no"), model_settings=None):
    """A stand-in model file with the <model>.json that convert.convert writes beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "kws_model_student_yesno_quantized.tflite"
    model.write_bytes(b"not read here")
    provenance = {"model_name": "kws_model_student", "wanted_words": list(wanted_words), "dataset": dataset,
                  "model_settings": model_settings or lab.model_settings(list(wanted_words))}
    model.with_suffix(".json").write_text(json.dumps({"provenance": provenance}))
    return model


@pytest.fixture
def real_copy(tmp_path, small_dataset):
    """A folder that looks like the real dataset: clips, but no synthetic marker."""
    copy = tmp_path / "speech_commands"
    shutil.copytree(small_dataset, copy)
    (copy / synthetic.MARKER_NAME).unlink()
    return copy


def test_a_synthetic_model_is_measured_on_the_set_it_was_trained_on(tmp_path, small_dataset):
    model = _model_with_provenance(tmp_path / "models", synthetic.describe_dataset(small_dataset))
    assert challenge.dataset_for_model(model, "yes,no") == small_dataset.resolve()


def test_a_model_of_other_keywords_than_words_txt_is_refused(tmp_path, small_dataset):
    model = _model_with_provenance(tmp_path / "models", synthetic.describe_dataset(small_dataset))
    with pytest.raises(ValueError, match="trained on the keywords yes,no, not up,down"):
        challenge.dataset_for_model(model, "up,down")


def test_a_real_model_is_not_measured_on_the_synthetic_set(tmp_path, small_dataset, real_copy):
    model = _model_with_provenance(tmp_path / "models", synthetic.describe_dataset(real_copy))
    with pytest.raises(ValueError, match="is not a speech commands dataset like the one"):
        challenge.dataset_for_model(model, "yes,no", small_dataset)


def test_a_real_model_whose_dataset_is_not_here_is_refused_with_what_to_do(tmp_path, real_copy, monkeypatch):
    model = _model_with_provenance(tmp_path / "models", synthetic.describe_dataset(real_copy))
    shutil.rmtree(real_copy)
    monkeypatch.delenv("SPEECH_COMMANDS_DIR", raising=False)
    with pytest.raises(ValueError, match="not on this machine: point --data-dir or SPEECH_COMMANDS_DIR"):
        challenge.dataset_for_model(model, "yes,no")


def test_speech_commands_dir_stands_in_for_a_real_dataset_moved_elsewhere(tmp_path, real_copy, monkeypatch):
    model = _model_with_provenance(tmp_path / "models", {"kind": "speech_commands", "path": "/nowhere/speech"})
    monkeypatch.setenv("SPEECH_COMMANDS_DIR", str(real_copy))
    assert challenge.dataset_for_model(model, "yes,no") == real_copy


def test_a_synthetic_set_of_another_recipe_is_not_taken_for_the_one_trained_on(tmp_path, small_dataset):
    described = synthetic.describe_dataset(small_dataset)
    described["settings"] = {**described["settings"], "seed": 99}
    model = _model_with_provenance(tmp_path / "models", described)
    with pytest.raises(ValueError, match="not a synthetic dataset like the one"):
        challenge.dataset_for_model(model, "yes,no", small_dataset)


def test_a_model_without_provenance_needs_a_named_dataset(tmp_path, small_dataset):
    model = tmp_path / "old_quantized.tflite"
    model.write_bytes(b"x")
    with pytest.raises(ValueError, match="has no provenance"):
        challenge.dataset_for_model(model, "yes,no")
    assert challenge.dataset_for_model(model, "yes,no", small_dataset) == small_dataset


def _kit_to_submit(tmp_path, monkeypatch, dataset, model_settings=None):
    """A student's kit folder for submit.py (stubs, names, yes,no) with stand-in model files whose
    provenance names dataset; the class's challenge.toml gets a yes,no group (it has none)."""
    kit = tmp_path / "kit"
    shutil.copytree(submit.ROOT / "student", kit / "student", ignore=shutil.ignore_patterns("__pycache__"))
    (kit / "VERSION").write_text("9.9.9\n")
    (kit / "names.txt").write_text("Ada Lovelace\n")
    (kit / "words.txt").write_text("yes,no\n")
    model = _model_with_provenance(kit / "models", synthetic.describe_dataset(dataset), model_settings=model_settings)
    shutil.copy(model, kit / "models" / "kws_model_student_yesno.tflite")
    monkeypatch.setattr(submit, "ROOT", kit)
    monkeypatch.setattr(submit, "check_model_files", lambda paths: [])  # the stand-in files do not load
    real_load_challenge = challenge.load_challenge
    monkeypatch.setattr(challenge, "load_challenge",
                        lambda *a, **k: {**real_load_challenge(*a, **k), "groups": {"group99": "yes,no"}})
    return kit


def test_submit_names_the_missing_dataset_instead_of_measuring_on_another(tmp_path, real_copy, monkeypatch, capsys):
    kit = _kit_to_submit(tmp_path, monkeypatch, real_copy)
    shutil.rmtree(real_copy)
    monkeypatch.delenv("SPEECH_COMMANDS_DIR", raising=False)
    assert submit.main(["--skip-tests", "--output", str(kit / "submission.zip")]) == 1
    assert "not on this machine" in capsys.readouterr().out
    assert not (kit / "submission.zip").exists()


def test_the_challenge_command_line_can_measure_without_the_feature_cache(tmp_path, small_dataset, monkeypatch):
    model = _model_with_provenance(tmp_path / "models", synthetic.describe_dataset(small_dataset))
    asked = {}
    monkeypatch.setattr(challenge, "measure_challenge", lambda *args, **options: asked.update(options) or {})
    monkeypatch.setattr(challenge, "print_report", lambda report: None)
    challenge.main([str(model), "--wanted-words", "yes,no", "--no-cache"])
    assert asked["cache"] is False
    challenge.main([str(model), "--wanted-words", "yes,no"])
    assert asked["cache"] is True


def _window_40_settings():
    """The model settings of a run whose FLAGS.window_size_ms was 40 (still 49 x 40 features)."""
    return models.prepare_model_settings(4, 16000, 1000, 40.0, 20.0, 40)


def test_a_40_ms_window_still_gives_the_lab_s_feature_size():
    # Why the input size alone cannot catch it: the settings themselves must be compared.
    assert _window_40_settings()["fingerprint_size"] == lab.model_settings(["yes", "no"])["fingerprint_size"]


def test_settings_other_than_the_lab_s_are_named_in_the_notebook_s_terms():
    assert provenance.setting_problems(_window_40_settings(), ["yes", "no"]) == [
        "FLAGS.window_size_ms = 40 (the lab's is 30)"]
    assert provenance.setting_problems(lab.model_settings(["yes", "no"]), ["yes", "no"]) == []


def test_the_challenge_refuses_a_model_trained_with_another_window(tmp_path, small_dataset, capsys):
    model = _model_with_provenance(tmp_path / "models", synthetic.describe_dataset(small_dataset),
                                   model_settings=_window_40_settings())
    with pytest.raises(SystemExit) as stopped:
        challenge.main([str(model), "--wanted-words", "yes,no"])
    assert stopped.value.code == 2
    assert "FLAGS.window_size_ms = 40 (the lab's is 30)" in capsys.readouterr().err


def test_submit_refuses_a_model_trained_with_another_window(tmp_path, small_dataset, monkeypatch, capsys):
    kit = _kit_to_submit(tmp_path, monkeypatch, small_dataset, model_settings=_window_40_settings())
    assert submit.main(["--skip-tests", "--output", str(kit / "submission.zip")]) == 1
    assert "FLAGS.window_size_ms = 40 (the lab's is 30)" in capsys.readouterr().out
    assert not (kit / "submission.zip").exists()
