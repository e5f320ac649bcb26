"""instructor/grade.py without grading: reading any zip, Moodle's layout, labels, scores, resuming."""

import csv
import io
import struct
import zipfile

from instructor import grade


def _zip(files, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _error_of(tmp_path, content):
    path = tmp_path / "odd.zip"
    path.write_bytes(content)
    [(label, _, _, found)] = grade.find_submissions(path)
    assert label == "odd" and isinstance(found, grade.SubmissionError)
    return str(found)


def test_an_encrypted_zip_is_a_row_not_a_crash(tmp_path):
    content = bytearray(_zip({"student/metrics.py": "x = 1\n"}))
    content[6] |= 1  # the local header's "encrypted" flag
    content[content.find(b"PK\x01\x02") + 8] |= 1  # and the central directory's
    row = grade.grade_one("odd", "", "", bytes(content), tmp_path / "out", None, 60)
    assert "encrypted" in row["error"], row


def test_an_unknown_compression_method_is_a_row_not_a_crash(tmp_path):
    content = bytearray(_zip({"student/metrics.py": "x = 1\n"}))
    central = content.find(b"PK\x01\x02")
    content[central + 10 : central + 12] = struct.pack("<H", 99)
    content[8:10] = struct.pack("<H", 99)
    row = grade.grade_one("odd", "", "", bytes(content), tmp_path / "out", None, 60)
    assert row["error"].startswith("NotImplementedError"), row


def test_corrupt_deflate_data_is_a_row_not_a_crash(tmp_path):
    content = bytearray(_zip({"student/metrics.py": "x = 1\n" * 200}, zipfile.ZIP_DEFLATED))
    data_start = 30 + len("student/metrics.py")
    content[data_start : data_start + 20] = b"\xff" * 20
    row = grade.grade_one("odd", "", "", bytes(content), tmp_path / "out", None, 60)
    assert row["error"].startswith(("error:", "BadZipFile")), row  # zlib.error or a CRC mismatch


def test_a_file_that_is_not_a_zip_says_so(tmp_path):
    assert "not a readable zip" in _error_of(tmp_path, b"just text")


def test_a_zip_holding_a_zip_beside_other_files_is_one_submission_not_a_moodle_bundle(tmp_path):
    path = tmp_path / "group7.zip"
    path.write_bytes(_zip({"names.txt": "Ada\n", "Ada Lovelace_101_assignsubmission_file_/submission.zip": b"x"}))
    assert [s[0] for s in grade.find_submissions(path)] == ["group7"]


def test_a_moodle_bundle_gives_a_row_per_student_with_caps_per_student(tmp_path):
    students = {f"Student {i}_{1000 + i}_assignsubmission_file_/submission.zip": _zip({"names.txt": f"S{i}\n"})
                for i in range(201)}
    path = tmp_path / "moodle.zip"
    path.write_bytes(_zip(students))
    found = grade.find_submissions(path)
    assert len(found) == 201 and all(isinstance(content, bytes) for *_, content in found)
    assert found[0][1:3] == ("Student 0", "1000")


def test_a_moodle_folder_without_a_zip_says_what_was_found(tmp_path):
    path = tmp_path / "moodle.zip"
    path.write_bytes(_zip({
        "Ada Lovelace_101_assignsubmission_file_/submission.zip": _zip({"names.txt": "Ada\n"}),
        "Alan Turing_102_assignsubmission_onlinetext_/onlinetext.html": "<p>my answers</p>",
    }))
    rows = {label: content for label, _, _, content in grade.find_submissions(path)}
    assert "found: onlinetext.html" in str(rows["Alan Turing_102_assignsubmission_onlinetext_"])


def test_two_submissions_with_one_name_get_unique_labels():
    labels = [s[0] for s in grade.unique_labels([("submission", "", "", b""), ("submission", "", "", b"")])]
    assert labels == ["submission", "submission-2"]


def test_no_label_writes_outside_the_results_folder(tmp_path):
    for label in ("..", ".", "../../etc", "a/../../b"):
        folder = grade._result_dir(tmp_path, label).resolve()
        assert folder.parent == tmp_path.resolve() and folder.name not in (".", ".."), label


def test_skipped_and_errored_tests_score_nothing(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest" tests="4">'
        '<testcase name="test_ok"/>'
        '<testcase name="test_failed"><failure message="wrong"/></testcase>'
        '<testcase name="test_error"><error message="boom"/></testcase>'
        '<testcase name="test_skipped"><skipped message="skipped by the student"/></testcase>'
        '</testsuite></testsuites>')
    results = {t["name"]: (t["status"], t["score"]) for t in grade.read_test_results(report)}
    assert results == {"test_ok": ("passed", 1), "test_failed": ("failed", 0), "test_error": ("failed", 0),
                       "test_skipped": ("skipped", 0)}


def test_rows_are_written_as_they_finish_and_a_rerun_keeps_them(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / f"{name}.zip").write_bytes(b"not a zip")
    out = tmp_path / "results"
    grade.main([str(tmp_path / "a.zip"), "--out", str(out)])
    assert [row["submission"] for row in csv.DictReader((out / "results.csv").open())] == ["a"]

    graded = []
    real_grade_one = grade.grade_one
    monkeypatch.setattr(grade, "grade_one", lambda label, *rest: graded.append(label) or real_grade_one(label, *rest))
    grade.main([str(tmp_path / "a.zip"), str(tmp_path / "b.zip"), "--out", str(out)])
    assert graded == ["b"]
    assert [row["submission"] for row in csv.DictReader((out / "results.csv").open())] == ["a", "b"]


def test_relative_paths_mean_the_folder_the_grader_was_started_in(tmp_path, monkeypatch):
    (tmp_path / "one.zip").write_bytes(b"not a zip")
    monkeypatch.chdir(tmp_path)
    grade.main(["one.zip", "--out", "results"])
    assert (tmp_path / "results" / "results.csv").is_file()


def test_a_process_a_step_leaves_running_is_killed_when_the_step_ends(tmp_path):
    import subprocess
    import sys
    import time

    marker = tmp_path / "written-later"
    later = tmp_path / "later.py"
    later.write_text(f"import pathlib, time\ntime.sleep(2)\npathlib.Path({str(marker)!r}).write_text('x')\n")
    starter = tmp_path / "starter.py"
    starter.write_text(f"import subprocess, sys\nsubprocess.Popen([sys.executable, {str(later)!r}])\n")
    code, output = grade.run_confined([sys.executable, str(starter)], tmp_path, timeout=60)
    assert code == 0, output
    time.sleep(3)
    assert not marker.exists()


def test_a_flood_of_output_is_capped_and_kept_out_of_the_graders_memory(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(grade, "OUTPUT_CAP_BYTES", 2**20)
    code, output = grade.run_confined([sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('x' * 65536)"],
                                      tmp_path, timeout=60)
    assert code != 0 and len(output) <= 4000


def test_a_step_over_its_time_limit_is_stopped(tmp_path):
    import sys

    import pytest

    with pytest.raises(grade.SubmissionError, match="did not finish within 1 s"):
        grade.run_confined([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, timeout=1)


def test_the_rubric_shares_each_groups_points_among_its_tests_and_skips_score_nothing():
    tests = [{"name": "a", "group": "metrics", "status": "passed", "output": ""},
             {"name": "b", "group": "metrics", "status": "skipped", "output": "skip"},
             {"name": "c", "group": "estimate", "status": "passed", "output": ""}]
    results = grade.score(tests, challenge_passed=True, rubric={"metrics": 10, "estimate": 20, "challenge": 5})
    points = {t["name"]: (t["score"], t["max_score"], t["status"]) for t in results["tests"]}
    assert points == {"metrics: a": (5, 5, "passed"), "metrics: b": (0, 5, "failed"),
                      "estimate: c": (20, 20, "passed"), "final challenge": (5, 5, "passed")}
    assert (results["score"], results["max_score"]) == (30, 35)


def test_tests_are_grouped_by_their_student_file():
    assert grade.test_group("tests.student.test_student_metrics") == "metrics"
    assert grade.test_group("tests.student.grading_test_estimate_exact") == "estimate"


def test_a_hanging_student_function_fails_its_own_tests_and_the_others_still_run(tmp_path):
    import os
    import subprocess
    import sys

    from instructor import kit

    copy = kit.copy_kit(tmp_path / "kit")
    kit.overlay_solution(copy)
    (copy / "student" / "metrics.py").write_text(
        "def get_student_metrics(confusion_matrix, idx):\n    while True:\n        pass\n")
    report = copy / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/student/test_student_metrics.py", "tests/student/test_student_callbacks.py",
                    f"--junitxml={report}"], cwd=copy, capture_output=True, timeout=600,
                   env={**os.environ, "MICROKWS_TEST_SECONDS": "1"})
    results = grade.read_test_results(report)
    metrics = [t for t in results if t["group"] == "metrics"]
    callbacks = [t for t in results if t["group"] == "callbacks"]
    assert metrics and all(t["status"] == "failed" and "ran over 1 s" in t["output"] for t in metrics)
    assert callbacks and all(t["status"] == "passed" for t in callbacks)


def test_totals_are_the_rubrics_whole_points_when_shares_do_not_divide_evenly():
    tests = [{"name": str(i), "group": "metrics", "status": "passed", "output": ""} for i in range(3)]
    results = grade.score(tests, challenge_passed=False, rubric={"metrics": 10, "challenge": 5})
    assert (results["score"], results["max_score"]) == (10, 15)


def test_a_group_whose_tests_never_ran_keeps_its_points_in_the_maximum_and_scores_nothing():
    tests = [{"name": "a", "group": "estimate", "status": "passed", "output": ""}]
    results = grade.score(tests, challenge_passed=False, rubric={"metrics": 10, "estimate": 20, "challenge": 5})
    assert (results["score"], results["max_score"]) == (20, 35)
    assert {"name": "metrics: no test of this group ran", "max_score": 10, "score": 0, "status": "failed",
            "output": ""} in results["tests"]


def test_a_test_file_that_cannot_be_collected_counts_in_its_own_group(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text('<testsuites><testsuite name="pytest" tests="1"><testcase classname="" '
                      'name="tests.student.test_student_metrics"><error message="collection failure"/></testcase>'
                      '</testsuite></testsuites>')
    assert [(t["group"], t["status"]) for t in grade.read_test_results(report)] == [("metrics", "failed")]
