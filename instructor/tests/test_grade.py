"""instructor/grade.py: good, hostile, broken and hanging submissions, one grading run."""

import csv
import io
import json
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


@pytest.fixture(scope="module")
def graded(tmp_path_factory, converted_xs, small_dataset):
    folder = tmp_path_factory.mktemp("grading")
    good = _good_submission(converted_xs)
    hanging = {**good, "student/metrics.py": "while True:\n    pass\n"}
    moodle = _zip({
        "Ada Lovelace_101_assignsubmission_file_/submission.zip": _zip(good),
        "Alan Turing_102_assignsubmission_file_/submission.zip": _zip(hanging),
    })
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
    grade.main([str(folder / name) for name in ("moodle.zip", "hostile.zip", "broken.zip", "cheat.zip")]
               + ["--out", str(out), "--jobs", "2", "--timeout", "120", "--data-dir", str(small_dataset)])
    rows = {row["submission"]: row for row in csv.DictReader((out / "results.csv").open())}
    return rows, out


def test_a_good_submission_passes_every_test(graded):
    rows, _ = graded
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    assert row["error"] == "" and int(row["tests_passed"]) == int(row["tests_total"]) >= 30, row


def test_moodle_folders_map_to_the_student(graded):
    rows, _ = graded
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    assert (row["student"], row["student_id"], row["names"], row["keywords"]) == ("Ada Lovelace", "101", "Ada Lovelace", "yes,no")


def test_the_challenge_is_measured_from_the_model_file(graded):
    rows, _ = graded
    row = rows["Ada Lovelace_101_assignsubmission_file_"]
    # ROM: every constant of the file, 8112 B of weights and biases and 24 B of RESHAPE shapes
    assert (int(row["rom_bytes"]), int(row["ram_bytes"]), int(row["macs"])) == (8136, 4000, 48000)
    assert 0 <= float(row["int8_test_accuracy"]) <= 1


def test_a_hanging_submission_fails_alone(graded):
    rows, _ = graded
    assert "did not finish" in rows["Alan Turing_102_assignsubmission_file_"]["error"]


def test_a_hostile_zip_is_refused(graded):
    rows, _ = graded
    assert "refused member path" in rows["hostile"]["error"]


def test_a_file_that_is_not_a_zip_is_reported(graded):
    rows, _ = graded
    assert "not a readable zip" in rows["broken"]["error"]


def test_a_submission_cannot_replace_the_tests(graded):
    rows, _ = graded
    row = rows["cheat"]
    assert int(row["tests_passed"]) == 0 and int(row["tests_total"]) >= 30, row


def test_each_submission_gets_gradescope_results(graded):
    _, out = graded
    results = json.loads((out / "Ada_Lovelace_101_assignsubmission_file_" / "results.json").read_text())
    rubric = challenge.load_challenge()["rubric"]
    student_points = sum(points for group, points in rubric.items() if group != "challenge")
    assert results["max_score"] == pytest.approx(sum(rubric.values()))
    assert results["score"] >= student_points - 1e-6  # every student test passed
    assert all({"name", "score", "max_score", "status", "output"} <= set(t) for t in results["tests"])
    assert {t["status"] for t in results["tests"]} <= {"passed", "failed"} and "output" in results


def test_the_answers_are_put_beside_the_results_for_the_grader(graded):
    _, out = graded
    answers = (out / "Ada_Lovelace_101_assignsubmission_file_" / "answers.md").read_text()
    assert "## 6. Clips versus the stream" in answers


def test_gradescope_mode_grades_an_upload_and_writes_gradescopes_results(tmp_path, converted_xs, small_dataset):
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
