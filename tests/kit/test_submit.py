"""submit.py: it names what is missing, writes nothing half-done, and packs only what belongs."""

import json
import shutil
import types
import zipfile

import pytest

import lab
import submit

STUBS = {
    "metrics": types.SimpleNamespace(get_student_metrics=lambda matrix, idx: None),
    "callbacks": types.SimpleNamespace(get_student_callbacks=lambda: []),
    "estimate": types.SimpleNamespace(
        estimate_rom=lambda tensors: None, estimate_ram=lambda layers: None,
        estimate_fully_connected_macs=lambda *a: None, estimate_conv2d_macs=lambda *a: None,
        estimate_depthwise_conv2d_macs=lambda *a: None),
}


@pytest.fixture
def kit_dir(tmp_path, monkeypatch):
    """A folder standing in for the kit: the student files, VERSION, names.txt and words.txt."""
    shutil.copytree(submit.ROOT / "student", tmp_path / "student", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "VERSION").write_text("9.9.9\n")
    (tmp_path / "names.txt").write_text("# names\nAda Lovelace\nAlan Turing\n")
    (tmp_path / "words.txt").write_text("# keywords\nyes,no\n")
    monkeypatch.setattr(submit, "ROOT", tmp_path)
    return tmp_path


def test_names_are_read_without_comments(kit_dir):
    assert lab.read_names(kit_dir) == ["Ada Lovelace", "Alan Turing"]


def test_an_empty_names_file_says_what_to_write(kit_dir):
    (kit_dir / "names.txt").write_text("# only a comment\n")
    with pytest.raises(ValueError, match="write your names"):
        lab.read_names(kit_dir)


def test_a_missing_words_file_says_what_to_create(kit_dir):
    (kit_dir / "words.txt").unlink()
    with pytest.raises(ValueError, match="words.txt is missing"):
        lab.read_words(kit_dir)


def test_keywords_of_no_group_are_refused_with_the_groups(kit_dir):
    (kit_dir / "words.txt").write_text("cat,dog\n")
    with pytest.raises(ValueError, match="no group's keyword set.*yes,no"):
        lab.read_words(kit_dir, {"default": "yes,no", "group01": "up,down"})


def test_malformed_keywords_are_refused(kit_dir):
    (kit_dir / "words.txt").write_text("Yes; No\n")
    with pytest.raises(ValueError, match="comma-separated"):
        lab.read_words(kit_dir)


def test_every_stub_is_reported_as_not_implemented():
    import models

    settings = lab.model_settings(["yes", "no"])
    starting_point = types.SimpleNamespace(create_student_model=lambda s: models.get_model(settings, "micro_kws_xs"))
    problems = submit.unimplemented_student_files({**STUBS, "model": starting_point})
    assert len(problems) == 8 and all("not implemented" in p or "starting point" in p for p in problems), problems


def test_missing_model_files_are_named_with_what_to_do(kit_dir):
    problems = submit.check_model_files(["models/kws_model_student_yesno_quantized.tflite"])
    assert problems == ["models/kws_model_student_yesno_quantized.tflite is missing: train and convert your "
                        "model in Flow.ipynb (sections 5 and 7)."]


def test_with_problems_nothing_is_written(kit_dir):
    assert submit.main(["--skip-tests", "--output", str(kit_dir / "submission.zip")]) == 1
    assert not (kit_dir / "submission.zip").exists()


def test_force_packs_only_what_belongs_and_records_the_problems(kit_dir, monkeypatch):
    import challenge

    real_load_challenge = challenge.load_challenge  # a class with a yes,no group (challenge.toml has none)
    monkeypatch.setattr(challenge, "load_challenge",
                        lambda *a, **k: {**real_load_challenge(*a, **k), "groups": {"group99": "yes,no"}})
    (kit_dir / "datasets").mkdir()
    (kit_dir / "datasets" / "big.wav").write_bytes(b"0" * 1000)
    assert submit.main(["--skip-tests", "--force", "--output", str(kit_dir / "submission.zip")]) == 0
    with zipfile.ZipFile(kit_dir / "submission.zip") as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert names == {"student/metrics.py", "student/callbacks.py", "student/estimate.py", "student/model.py",
                     "student/answers.md", "names.txt", "words.txt", "manifest.json"}
    assert manifest["forced"] and any("missing" in p for p in manifest["problems"])
    assert manifest["kit_version"] == "9.9.9" and manifest["keywords"] == "yes,no"
    assert set(manifest["files"]) == names - {"manifest.json"}


def test_an_oversized_submission_is_refused_and_leaves_no_zip(kit_dir, monkeypatch):
    monkeypatch.setattr(submit, "MAX_ZIP_BYTES", 100)
    assert submit.main(["--skip-tests", "--force", "--output", str(kit_dir / "submission.zip")]) == 1
    assert [p.name for p in kit_dir.iterdir() if "submission" in p.name] == []


def test_unanswered_questions_are_counted(kit_dir):
    assert submit.unanswered_questions(kit_dir) == ["student/answers.md: 6 question(s) still unanswered (_TODO_)."]
    answers = kit_dir / "student" / "answers.md"
    answers.write_text(answers.read_text().replace("_TODO_", "Because."))
    assert submit.unanswered_questions(kit_dir) == []


def test_the_notebook_keywords_come_from_words_txt_or_yes_no_while_it_is_empty(kit_dir):
    (kit_dir / "words.txt").write_text("# Your group's keywords\n")
    assert lab.notebook_keywords(kit_dir) == "yes,no"
    (kit_dir / "words.txt").write_text("up,down\n")
    assert lab.notebook_keywords(kit_dir) == "up,down"


def test_a_helper_module_of_the_student_is_packed_and_named(kit_dir, capsys):
    (kit_dir / "student" / "helpers.py").write_text("def mean(values):\n    return sum(values) / len(values)\n")
    assert submit.main(["--skip-tests", "--force", "--output", str(kit_dir / "submission.zip")]) == 0
    with zipfile.ZipFile(kit_dir / "submission.zip") as archive:
        assert "student/helpers.py" in archive.namelist()
    assert "helper modules: student/helpers.py" in capsys.readouterr().out


def test_a_module_the_grader_could_not_import_is_a_problem_with_what_to_do(kit_dir):
    (kit_dir / "student" / "my-helpers.py").write_text("x = 1\n")
    packed, problems = submit.helper_modules(kit_dir)
    assert packed == [] and problems and "rename it" in problems[0]


def test_without_tflite_micro_submit_says_in_one_line_which_figures_it_uses(kit_dir, monkeypatch, capsys):
    import runtimes

    monkeypatch.setattr(runtimes, "tflite_micro_available", lambda: False)
    assert submit.main(["--skip-tests", "--force", "--output", str(kit_dir / "submission.zip")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Device figures:")]
    assert lines == [f"Device figures: {runtimes.DEVICE_FIGURES['litert_reference']}"]
    with zipfile.ZipFile(kit_dir / "submission.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["checks"]["device_runtime"] == "litert_reference"
