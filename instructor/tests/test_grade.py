"""instructor/grade.py: good, hostile, broken and hanging submissions, one grading run (the hanging
one in a batch of its own, graded beside it); a model trained on the real dataset measured on it in
the same batch."""

import csv
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import challenge
from instructor import grade, kit

pytestmark = pytest.mark.slow


def _zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _good_submission(converted_xs):
    float_path, int8_path = converted_xs
    files = {relative: (kit.ROOT / "instructor" / "solution" / Path(relative).name).read_text()
             for relative in kit.STUDENT_FILES}
    files.update({
        "names.txt": "Ada Lovelace\n", "words.txt": "yes,no\n",
        "student/answers.md": (kit.ROOT / "instructor" / "solution" / "answers.md").read_text(),
        "models/kws_model_student_yesno_quantized.tflite": int8_path.read_bytes(),
        "models/kws_model_student_yesno.tflite": float_path.read_bytes(),
        "models/kws_model_student_yesno_quantized.json": int8_path.with_suffix(".json").read_text(),
    })
    return files


def _with_a_yes_no_group(patch):
    """The class's challenge.toml with a group of the keywords the test model was trained on
    (yes,no is no group's: the notebook's untouched example)."""
    real_load_challenge = challenge.load_challenge

    def load_challenge(*args, **kwargs):
        settings = real_load_challenge(*args, **kwargs)
        settings["groups"] = {**settings["groups"], "group99": "yes,no"}
        return settings

    patch.setattr(challenge, "load_challenge", load_challenge)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, converted_xs, small_dataset):
    with pytest.MonkeyPatch.context() as patch:
        _with_a_yes_no_group(patch)
        yield _grade_a_batch(tmp_path_factory.mktemp("grading"), converted_xs, small_dataset)


HANG_TIMEOUT = 30  # the hanging batch's --timeout: what the grader waits before it gives up


def _start_a_batch_with_a_hanging_submission(folder, good, small_dataset):
    """grade.py, in its own process, on a Moodle bundle whose first submission never finishes and
    whose second is not a zip: both must get their rows. It runs while the main batch is graded: the
    hang waits (sleeps) out the grader's --timeout instead of taking a core from the other batch."""
    hanging = {**good, "student/metrics.py": "import time\nwhile True:\n    time.sleep(1)\n"}
    (folder / "hanging.zip").write_bytes(_zip({
        "Alan Turing_102_assignsubmission_file_/submission.zip": _zip(hanging),
        "Grace Hopper_103_assignsubmission_file_/submission.zip": b"this is not a zip",
    }))
    return subprocess.Popen(
        [sys.executable, str(kit.ROOT / "instructor" / "grade.py"), "--moodle", str(folder / "hanging.zip"),
         "--out", str(folder / "hanging_results"), "--jobs", "1", "--timeout", str(HANG_TIMEOUT),
         "--data-dir", str(small_dataset)], cwd=kit.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _grade_a_batch(folder, converted_xs, small_dataset):
    good = _good_submission(converted_xs)
    hanging_batch = _start_a_batch_with_a_hanging_submission(folder, good, small_dataset)
    try:
        rows, out, code = _grade_the_main_batch(folder, good, small_dataset)
        output, _ = hanging_batch.communicate(timeout=600)
    finally:
        if hanging_batch.poll() is None:  # the main batch failed: no grader left running behind the test
            hanging_batch.kill()
            hanging_batch.communicate()
    hanging_rows = list(csv.DictReader((folder / "hanging_results" / "results.csv").open()))
    rows.update({row["submission"]: row for row in hanging_rows})
    return rows, out, {"main": code, "hanging": hanging_batch.returncode, "hanging_output": output}


def _grade_the_main_batch(folder, good, small_dataset):
    """A Moodle bundle with the good submission, a hostile zip, a file that is not a zip and a
    submission that tries to replace the tests, graded in this process: (rows, out, exit code)."""
    moodle = _zip({"Ada Lovelace_101_assignsubmission_file_/submission.zip": _zip(good)})
    (folder / "moodle.zip").write_bytes(moodle)
    (folder / "hostile.zip").write_bytes(_zip({**good, "../outside.py": "print('escaped')"}))
    (folder / "broken.zip").write_bytes(b"this is not a zip")
    stub_files = {relative: (kit.ROOT / relative).read_text() for relative in kit.STUDENT_FILES}
    (folder / "cheat.zip").write_bytes(_zip({
        **stub_files, "names.txt": "Eve\n", "words.txt": "yes,no\n",
        "tests/student/test_student_metrics.py": "def test_nothing():\n    pass\n",
        "conftest.py": "raise SystemExit\n",
    }))
    out = folder / "results"
    code = grade.main(["--moodle", str(folder / "moodle.zip")]
                      + [str(folder / name) for name in ("hostile.zip", "broken.zip", "cheat.zip")]
                      + ["--out", str(out), "--jobs", "2", "--timeout", "120", "--data-dir", str(small_dataset)])
    return {row["submission"]: row for row in csv.DictReader((out / "results.csv").open())}, out, code


def test_a_good_submission_passes_every_test(graded):
    rows, _, _ = graded
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    assert (row["status"] == "graded" and row["error"] == ""
            and int(row["tests_passed"]) == int(row["tests_total"]) >= 30), row


def test_a_graded_row_counts_the_grading_only_tests(graded):
    rows, out, _ = graded
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    expected = len(list((kit.ROOT / "instructor" / "grading_tests").glob("test_*.py")))
    assert int(row["grading_tests_passed"]) == int(row["grading_tests_total"]) >= max(expected, 1), row
    results = json.loads((out / row["results_folder"] / "results.json").read_text())
    assert any("(grading):" in test["name"] and test["max_score"] > 0 for test in results["tests"])
    assert int(rows["cheat"]["grading_tests_total"]) == int(row["grading_tests_total"])
    assert int(rows["cheat"]["grading_tests_passed"]) == 0


def test_moodle_folders_map_to_the_student(graded):
    rows, _, _ = graded
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    assert (row["student"], row["student_id"], row["names"], row["keywords"]) == (
        "Ada Lovelace", "101", "Ada Lovelace", "yes,no")


def test_the_challenge_is_measured_from_the_model_file(graded):
    rows, _, _ = graded
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    # ROM: every constant of the file, 8112 B of weights and biases and 24 B of RESHAPE shapes
    assert (int(row["rom_bytes"]), int(row["ram_bytes"]), int(row["macs"])) == (8136, 4000, 48000)
    assert 0 <= float(row["int8_test_accuracy"]) <= 1


def test_a_hanging_submission_fails_alone_as_a_grader_error_not_a_grade(graded):
    rows, _, codes = graded
    row = rows["Alan Turing_102_assignsubmission_file_"]
    assert "did not finish" in row["error"] and row["status"] == "grader-error" and row["score"] == ""
    after = rows["Grace Hopper_103_assignsubmission_file_"]  # the batch went on to the next one
    assert after["status"] == "refused-submission" and "not a zip" in after["error"]
    assert codes["hanging"] == 1, codes["hanging_output"][-2000:]  # the TA is told: a rerun retries it
    assert codes["main"] == 0  # no grader error in the batch without it


def test_a_hostile_zip_is_refused(graded):
    rows, _, _ = graded
    assert "refused member path" in rows["hostile"]["error"] and rows["hostile"]["status"] == "refused-submission"


def test_a_file_that_is_not_a_zip_is_reported(graded):
    rows, _, _ = graded
    assert "not a readable zip" in rows["broken"]["error"]


def test_a_submission_cannot_replace_the_tests(graded):
    rows, _, _ = graded
    row = rows["cheat"]
    assert int(row["tests_passed"]) == 0 and int(row["tests_total"]) >= 30, row


def test_each_submission_gets_gradescope_results(graded):
    rows, out, _ = graded
    folder = rows["Ada Lovelace_101_assignsubmission_file_"]["results_folder"]
    results = json.loads((out / folder / "results.json").read_text())
    rubric = challenge.load_challenge()["rubric"]
    student_points = sum(points for group, points in rubric.items() if group != "challenge")
    assert results["max_score"] == pytest.approx(sum(rubric.values()))
    assert results["score"] >= student_points - 1e-6  # every student test passed (the challenge aside)
    assert rows["Ada Lovelace_101_assignsubmission_file_"]["score"] == str(results["score"])
    assert all({"name", "score", "max_score", "status", "output"} <= set(t) for t in results["tests"])
    assert {t["status"] for t in results["tests"]} <= {"passed", "failed"} and "output" in results


def test_the_answers_are_put_beside_the_results_for_the_grader(graded):
    rows, out, _ = graded
    folder = out / rows["Ada Lovelace_101_assignsubmission_file_"]["results_folder"]
    answers = (folder / "answers.txt").read_text()
    assert "## 6. Clips versus the stream" in answers


def test_gradescope_mode_grades_an_upload_and_writes_gradescopes_results(tmp_path, converted_xs, small_dataset,
                                                                        monkeypatch):
    _with_a_yes_no_group(monkeypatch)
    upload = tmp_path / "submission"
    for name, content in _good_submission(converted_xs).items():
        (upload / name).parent.mkdir(parents=True, exist_ok=True)
        (upload / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    results_path = tmp_path / "results" / "results.json"
    assert grade.main(["--gradescope", str(upload), str(results_path), "--data-dir", str(small_dataset),
                       "--timeout", "300"]) == 0
    results = json.loads(results_path.read_text())
    assert {"score", "max_score", "tests", "output"} <= set(results) and results["tests"]
    assert all(t["status"] in ("passed", "failed") for t in results["tests"])


def test_a_model_trained_on_the_real_dataset_is_measured_on_it_in_the_same_batch(tmp_path, converted_xs,
                                                                                 small_dataset, monkeypatch):
    """A mixed class: beside the synthetic-trained rows, a real-trained model is measured on the real
    --data-dir (here a copy of the small set without its synthetic marker: a dataset of real kind)."""
    import synthetic

    _with_a_yes_no_group(monkeypatch)
    real = shutil.copytree(small_dataset, tmp_path / "speech_commands",
                           ignore=shutil.ignore_patterns(synthetic.MARKER_NAME))
    _, int8_path = converted_xs
    own_dir = tmp_path / "batch" / "submission"
    (own_dir / "scratch").mkdir(parents=True)
    models = own_dir / "kit" / "models"
    models.mkdir(parents=True)
    shutil.copy2(int8_path, models / "kws_model_student_yesno_quantized.tflite")
    description = json.loads(int8_path.with_suffix(".json").read_text())
    description["provenance"]["dataset"] = synthetic.describe_dataset(real)
    (models / "kws_model_student_yesno_quantized.json").write_text(json.dumps(description))
    datasets = grade.describe_datasets([small_dataset, real])
    report, kind = grade.measure(own_dir, own_dir / "kit", "yes,no", datasets, timeout=600)
    assert kind == "speech_commands" and 0 <= report["int8_test_accuracy"]["value"] <= 1
    assert report["rom_bytes"]["value"] == 8136  # every constant of the file, as the challenge counts ROM


def test_the_challenge_checks_the_file_is_the_model_student_model_py_builds(graded):
    rows, _, _ = graded
    # The good submission's student/model.py is the reference design, its files micro_kws_xs.
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    assert "architecture" in row["challenge_failed"].split("; ") and row["challenge_passed"] == "False", row
