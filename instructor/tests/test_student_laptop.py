"""The student's laptop: no TFLite-Micro (macOS, Windows, Linux on ARM) and a folder with a space in
its path. There the reference solution passes every student test and submit.py writes the zip; the
grader keeps TFLite-Micro."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import types
import zipfile

import pytest

import runtimes
from instructor import kit

WORDS = "yesno"


def _student_conftest():
    """tests/student/conftest.py, imported from its file (pytest would import it as `conftest`)."""
    spec = importlib.util.spec_from_file_location("student_conftest", kit.ROOT / "tests" / "student" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pytest_config(plugins):
    return types.SimpleNamespace(pluginmanager=types.SimpleNamespace(hasplugin=lambda name: name in plugins))


def test_the_student_tests_use_the_kit_fallback_where_tflite_micro_is_missing(monkeypatch):
    monkeypatch.setattr(runtimes, "tflite_micro_available", lambda: False)
    assert _student_conftest().device_runtime_here(_pytest_config(set())) == "litert_reference"


def test_the_grader_runs_the_student_tests_on_tflite_micro_even_where_it_is_missing(monkeypatch):
    monkeypatch.setattr(runtimes, "tflite_micro_available", lambda: False)
    conftest = _student_conftest()
    assert conftest.device_runtime_here(_pytest_config({conftest.GRADING_PLUGIN})) == "tflm"
    assert f'"-p", "{conftest.GRADING_PLUGIN}"' in (kit.ROOT / "instructor" / "grade.py").read_text()


def _student_kit(folder, converted):
    """A kit copy as a student would hand it in: the reference solution, names, keywords and the
    reference design trained briefly as kws_model_student (converted_student) as the model files."""
    copy = kit.copy_kit(folder)
    kit.overlay_solution(copy)
    (copy / "names.txt").write_text("Ada Lovelace\n")
    (copy / "words.txt").write_text("yes,no\n")
    (copy / "models").mkdir()
    for source, name in zip(converted, (f"kws_model_student_{WORDS}", f"kws_model_student_{WORDS}_quantized")):
        shutil.copy2(source, copy / "models" / f"{name}.tflite")
        shutil.copy2(source.with_suffix(".json"), copy / "models" / f"{name}.json")
    # A model trained for seconds: this lane checks the path to the zip, not the accuracy (every
    # dataset kind's threshold relaxed); yes,no is no group's keywords, so the copy gets such a group.
    limits, count = re.subn(r"(?m)^min_int8_test_accuracy = \S+", "min_int8_test_accuracy = 0.0",
                            (copy / "challenge.toml").read_text())
    assert count >= 1, "challenge.toml has no min_int8_test_accuracy line to relax"
    limits, count = re.subn(r"(?m)^\[groups\]$", '[groups]\ngroup99 = "yes,no"', limits)
    assert count == 1, "challenge.toml has no [groups] table"
    (copy / "challenge.toml").write_text(limits)
    return copy


@pytest.fixture(scope="module")
def converted_student(tmp_path_factory, audio_processor, model_settings):
    """The reference design (instructor/solution/model.py) trained briefly as kws_model_student and
    converted, as a student's notebook would: (float path, int8 path), each with its provenance, so
    that submit.py's challenge finds the model student/model.py builds, under the challenge's name."""
    import keras

    import checkpoints
    import convert
    import train
    from conftest import lab_flags
    from instructor.solution.model import create_student_model

    keras.utils.set_random_seed(0)
    flags = lab_flags(tmp_path_factory.mktemp("trained_student"), model_name="kws_model_student",
                      how_many_training_steps="20,0", eval_step_interval=20)
    model = create_student_model(model_settings)
    model.name = "kws_model_student"
    _, _, run_dir = train.train(model, audio_processor, flags)
    checkpoint = checkpoints.latest_checkpoint(checkpoints.checkpoint_dir(run_dir))
    out = tmp_path_factory.mktemp("converted_student")
    return (convert.convert(model, audio_processor, checkpoint, False, "fp32", out / "student.tflite"),
            convert.convert(model, audio_processor, checkpoint, True, "int8", out / "student_quantized.tflite"))


@pytest.fixture(scope="module")
def submitted(tmp_path_factory, converted_student, environment_without_tflite_micro):
    """submit.py run in "Lab 1/kit" with tflite_micro unimportable: (kit folder, its output)."""
    copy = _student_kit(tmp_path_factory.mktemp("laptop") / "Lab 1" / "kit", converted_student)
    result = subprocess.run([sys.executable, "submit.py"], cwd=copy, capture_output=True, text=True, timeout=1500,
                            env=environment_without_tflite_micro)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return copy, result.stdout


@pytest.mark.slow
def test_tflite_micro_is_unimportable_in_the_lane(environment_without_tflite_micro):
    result = subprocess.run([sys.executable, "-c", "import test_tflite; print(test_tflite.device_runtime())"],
                            cwd=kit.ROOT, capture_output=True, text=True, env=environment_without_tflite_micro)
    assert result.stdout.strip() == "litert_reference", result.stderr[-2000:]


@pytest.mark.slow
def test_every_student_test_passes_without_tflite_micro(submitted):
    copy, _ = submitted
    with zipfile.ZipFile(copy / "submission.zip") as archive:
        summary = json.loads(archive.read("manifest.json"))["checks"]["student_tests"]
    passed = re.match(r"(\d+) passed", summary)
    assert passed and int(passed[1]) >= 30 and not re.search(r"failed|error|skipped", summary), summary


@pytest.mark.slow
def test_submit_says_in_one_line_that_it_used_the_fallback(submitted):
    _, stdout = submitted
    lines = [line for line in stdout.splitlines() if line.startswith("Device figures:")]
    assert len(lines) == 1 and "LiteRT's reference kernels and the kit's memory planner" in lines[0], stdout[-3000:]


@pytest.mark.slow
def test_submit_writes_a_finished_zip_of_what_belongs(submitted):
    copy, _ = submitted
    with zipfile.ZipFile(copy / "submission.zip") as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    models = {f"models/kws_model_student_{WORDS}{suffix}" for suffix in
              (".tflite", ".json", "_quantized.tflite", "_quantized.json")}
    assert names == set(kit.STUDENT_FILES) | {kit.ANSWERS_FILE, "names.txt", "words.txt", "manifest.json"} | models
    assert not manifest["forced"] and manifest["problems"] == []
    assert set(manifest["files"]) == names - {"manifest.json"}


@pytest.mark.slow
def test_the_challenge_is_measured_on_the_fallback(submitted):
    copy, _ = submitted
    with zipfile.ZipFile(copy / "submission.zip") as archive:
        checks = json.loads(archive.read("manifest.json"))["checks"]
    assert checks["device_runtime"] == "litert_reference"
    assert checks["challenge"]["int8_test_accuracy"]["source"].startswith("litert_reference")
    import estimate

    plans = estimate.compare_plans(estimate.load_model(copy / "models" / f"kws_model_student_{WORDS}_quantized.tflite"))
    assert checks["challenge"]["ram_bytes"]["value"] == plans["greedy"]  # the kit's planner
    assert plans["tflite_micro_head"] in (None, plans["greedy"])  # TFLite-Micro's arena head, where it runs here
    assert "kit's planner" in checks["challenge"]["ram_bytes"]["source"]
