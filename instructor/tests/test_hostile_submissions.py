"""instructor/grade.py against a student who has read it (#23, third round).

Each test builds one hostile submission and runs it through the grader's own path (main, grade_one,
measure), cheaply: no trained model is needed. A secret marker stands for the hidden text (the
reference solution, the grading tests) wherever the attack tries to reach it.
"""

import io
import json
import os
import re
import secrets
import zipfile
from pathlib import Path

import pytest

import lab
from instructor import grade, kit

STUDENT_CODE = {"student/metrics.py": "x = 1\n", "names.txt": "Ada Lovelace\n", "words.txt": "up,down\n"}


def _zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture
def marker():
    return f"microkws_secret_{secrets.token_hex(8)}"


@pytest.fixture
def graded_code(monkeypatch):
    """Stands in for the tests: records the student code each submission would be graded with."""
    seen = {}

    def run_tests(own_dir, kit_dir, student_code_dir, timeout, hide=(), words=None):
        seen.update({p.name: p.read_text(errors="replace") for p in Path(student_code_dir).rglob("*.py")})
        return []

    monkeypatch.setattr(grade, "run_tests", run_tests)
    return seen


# --- Gradescope: an upload of files, not a zip ---------------------------------------------------


def _upload(tmp_path, files):
    upload = tmp_path / "submission"
    for name, content in files.items():
        (upload / name).parent.mkdir(parents=True, exist_ok=True)
        (upload / name).write_text(content)
    return upload


def test_a_gradescope_upload_cannot_link_to_the_reference_solution(tmp_path, marker, graded_code):
    """A repository submitted to Gradescope may hold links: student/estimate.py pointing at
    /autograder/source/instructor/solution/estimate.py would be graded as the student's own."""
    solution = tmp_path / "source" / "instructor" / "solution"
    solution.mkdir(parents=True)
    (solution / "estimate.py").write_text(f"# {marker}\n")
    upload = _upload(tmp_path, STUDENT_CODE)
    (upload / "student" / "estimate.py").symlink_to(solution / "estimate.py")
    results = tmp_path / "results.json"
    grade.main(["--gradescope", str(upload), str(results)])
    assert marker not in json.dumps(graded_code)
    assert "link" in json.loads(results.read_text())["output"]


def test_a_gradescope_upload_cannot_link_a_whole_folder_of_the_solution(tmp_path, marker, graded_code):
    solution = tmp_path / "source" / "instructor" / "solution"
    solution.mkdir(parents=True)
    (solution / "metrics.py").write_text(f"# {marker}\n")
    upload = _upload(tmp_path, {"names.txt": "Ada\n", "words.txt": "up,down\n", "mine/metrics.py": "x = 1\n"})
    (upload / "student").symlink_to(solution, target_is_directory=True)
    results = tmp_path / "results.json"
    grade.main(["--gradescope", str(upload), str(results)])
    assert marker not in json.dumps(graded_code)
    assert "link" in json.loads(results.read_text())["output"]


# --- Files the grader itself reads: JSON a student wrote -----------------------------------------


def _deep_json():
    return "[" * 100000 + "]" * 100000


def _row(tmp_path, files, datasets=()):
    return grade.grade_one(grade.Submission("eve", "", "", _zip(files)), tmp_path / "out", list(datasets), 60)


def test_a_deeply_nested_manifest_is_no_grader_error(tmp_path, graded_code):
    """A grader error is not a grade and is retried forever: a student must not be able to choose it."""
    row = _row(tmp_path, {**STUDENT_CODE, "manifest.json": _deep_json()})
    assert row["status"] == "graded" and row["submit_problems"] == "no readable manifest.json", row


def test_a_deeply_nested_model_provenance_is_no_grader_error(tmp_path, graded_code):
    row = _row(tmp_path, {**STUDENT_CODE, "models/kws_model_student_updown_quantized.tflite": b"TFL3",
                          "models/kws_model_student_updown_quantized.json": _deep_json()})
    assert row["status"] == "graded" and "not the JSON the kit writes" in row["error"], row


# --- Zip member names ------------------------------------------------------------------------------


def test_a_member_name_ending_in_a_newline_is_not_taken(tmp_path, graded_code, monkeypatch):
    """`$` in a regular expression also matches before a final newline: "names.txt\\n" is not names.txt."""
    copies = []
    real_copy_kit = kit.copy_kit
    monkeypatch.setattr(kit, "copy_kit", lambda destination: copies.append(real_copy_kit(destination)) or copies[-1])
    _row(tmp_path, {**STUDENT_CODE, "student/answers.md\n": "x", "words.txt\n": "x"})
    assert copies and not any("\n" in path.name for path in copies[0].rglob("*"))


# --- The measurement: a hostile model file, and what comes back from its jail ----------------------


@pytest.fixture
def hostile_model(tmp_path):
    """A submission folder with a model file and a provenance that makes challenge.py crash."""
    own = tmp_path / "batch" / "submission"
    (own / "scratch").mkdir(parents=True)
    kit_dir = own / "kit"
    (kit_dir / "models").mkdir(parents=True)
    (kit_dir / "models" / "kws_model_student_updown_quantized.tflite").write_bytes(b"\0\0\0\0TFL3" + b"\0" * 64)
    (kit_dir / "models" / "kws_model_student_updown_quantized.json").write_text(
        json.dumps({"provenance": {"dataset": {"kind": "synthetic", "settings": "mine"}}}))
    return own, kit_dir


def test_a_crash_of_the_measurement_shows_no_traceback(hostile_model, tmp_path):
    """A traceback quotes the source lines it passes through: the reference formulas are copied
    beside the model, and a line of them must never reach results.json."""
    own, kit_dir = hostile_model
    (tmp_path / "data").mkdir()
    datasets = [(tmp_path / "data", {"kind": "synthetic", "settings": "mine"})]
    with pytest.raises(grade.SubmissionError) as failed:
        grade.measure(own, kit_dir, "up,down", datasets, 300)
    message = str(failed.value)
    assert "could not be measured" in message and "KeyError" in message, message
    assert "Traceback" not in message and 'File "' not in message and "wanted_words" not in message, message


def test_a_measurement_message_keeps_only_the_challenges_own_error_line(marker):
    output = (f"Traceback (most recent call last):\n  File \"reference_estimate.py\", line 7, in estimate_rom\n"
              f"    total += elements * {marker}[dtype]\nKeyError: 'float64'\n")
    assert marker not in grade.measurement_failure(output)
    assert grade.measurement_failure(output).endswith("(it stopped with KeyError)")
    refused = "some log line\nerror: models/x.tflite is not a TFLite model (no TFL3 flatbuffer identifier).\n"
    assert grade.measurement_failure(refused).endswith("is not a TFLite model (no TFL3 flatbuffer identifier).")
    assert grade.measurement_failure(f"{marker}Error: boom\n").endswith("(it stopped with an error)")
    assert grade.measurement_failure("error: no arena report:\nline two\n").endswith("no arena report: line two")
    assert grade.measurement_failure("error: op \x1b[2J<script>\n").endswith("op ??2J?script?")  # no markup, no escapes
    assert marker not in grade.measurement_failure(f"error: refused\nTraceback (most recent call last):\n  {marker}\n"
                                                   "KeyError: 'x'\n")


def _measure_writing(report_files, tmp_path, monkeypatch, hostile_model):
    """measure() with a measurement that writes report_files (what a process that a hostile model
    took over could write in its one writable folder)."""
    own, kit_dir = hostile_model

    def run_confined(command, cwd, timeout, env=None, memory_bytes=None):
        for name, make in report_files.items():
            make(own / "report" / name)
        return 0, ""

    monkeypatch.setattr(grade, "run_confined", run_confined)
    return grade.measure(own, kit_dir, "up,down", [(tmp_path / "data", {"kind": "synthetic", "settings": "mine"})], 60)


def test_the_measurements_report_sets_no_other_column(tmp_path, monkeypatch, hostile_model):
    report = {"int8_test_accuracy": {"value": 0.95, "limit": 0.9, "passed": True},
              "status": {"value": "graded", "passed": True}, "score": {"value": 50, "passed": True}}
    with pytest.raises(grade.SubmissionError, match="report"):
        _measure_writing({"challenge-report.json": lambda p: p.write_text(json.dumps(report))},
                         tmp_path, monkeypatch, hostile_model)


def test_a_measurement_report_that_is_a_link_is_not_followed(tmp_path, monkeypatch, hostile_model, marker):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"rom_bytes": {"value": 1, "limit": 2, "passed": True, "source": marker}}))
    with pytest.raises(grade.SubmissionError, match="report"):
        _measure_writing({"challenge-report.json": lambda p: p.symlink_to(secret)}, tmp_path, monkeypatch,
                         hostile_model)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_measurement_report_that_is_a_pipe_does_not_hang_the_grader(tmp_path, monkeypatch, hostile_model):
    with pytest.raises(grade.SubmissionError, match="report"):
        _measure_writing({"challenge-report.json": lambda p: os.mkfifo(p)}, tmp_path, monkeypatch, hostile_model)


def test_a_plain_measurement_report_fills_the_figures(tmp_path, monkeypatch, hostile_model):
    figures = {name: {"value": 1, "limit": 2, "passed": True, "source": "x"}
               for name in ("int8_test_accuracy", "rom_bytes", "ram_bytes", "macs")}
    report, kind = _measure_writing({"challenge-report.json": lambda p: p.write_text(json.dumps(figures))},
                                    tmp_path, monkeypatch, hostile_model)
    assert report == figures and kind == "synthetic"



# --- The measurement's jail: what a process that a hostile model took over could read ---------------

READ_ALL = """
import os, sys
found = []
for path in sys.argv[1:]:
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                found.append(open(os.path.join(folder, name), errors="replace").read())
            except OSError:
                pass
print("\\n".join(found))
"""


def test_the_measurement_cannot_read_the_grading_tests_or_the_student_code(tmp_path, monkeypatch, marker):
    from instructor import jail

    if not jail.jail_mode():
        pytest.skip("no jail on this machine")
    own = tmp_path / "batch" / "submission"
    (own / "scratch").mkdir(parents=True)
    kit_dir = own / "kit"
    (kit_dir / "models").mkdir(parents=True)
    (kit_dir / "models" / "kws_model_student_updown_quantized.tflite").write_bytes(b"TFL3")
    (kit_dir / "tests" / "student" / "grading").mkdir(parents=True)
    (kit_dir / "tests" / "student" / "grading" / "test_estimate_exact.py").write_text(f"# {marker}\n")
    (own / "student_code" / "student").mkdir(parents=True)
    (own / "student_code" / "student" / "metrics.py").write_text(f"# {marker}\n")
    (tmp_path / "data").mkdir()
    seen = {}

    def run_confined(command, cwd, timeout, env=None, memory_bytes=None):
        import subprocess

        start = len(command) - command[::-1].index(str(kit.ROOT / "challenge.py")) - 1  # the last: the program
        reader = [*command[:start], "-c", READ_ALL, str(jail.inside(own, own))]
        run = subprocess.run(reader, env=env, capture_output=True, text=True, timeout=120)
        seen["output"] = run.stdout + run.stderr
        return 1, ""

    monkeypatch.setattr(grade, "run_confined", run_confined)
    with pytest.raises(grade.SubmissionError):
        grade.measure(own, kit_dir, "up,down", [(tmp_path / "data", {"kind": "synthetic", "settings": None})], 60)
    assert "TFL3" in seen["output"]  # it does read the model
    assert marker not in seen["output"]


# --- Values that would crash the grader's own report ------------------------------------------------


def test_a_value_nested_thousands_deep_is_described_without_crashing_the_report():
    """A failure message that raises inside pytest's report hook stops the grader's pytest: no report,
    a grader error the student chose."""
    from instructor import jail

    value = []
    for _ in range(5000):
        value = [value, (value,)]
    try:
        assert value == "expected"
    except AssertionError:
        excinfo = pytest.ExceptionInfo.from_current()
    message = jail.failure_message("tests/student/test_student_metrics.py::test_recall", "test_recall", excinfo,
                                   [value])
    assert message.startswith("recall: a check failed") and "list of 2 items" in message


def test_text_files_the_grader_reads_itself_are_capped(tmp_path, graded_code, monkeypatch):
    """names.txt, words.txt and manifest.json are read by the grader's own process (no memory limit):
    50 MiB of newlines would be 50 million lines in its memory, per job."""
    read = []
    real_read_lines = lab.read_lines
    monkeypatch.setattr(lab, "read_lines", lambda path: read.append(Path(path).name) or real_read_lines(path))
    row = _row(tmp_path, {**STUDENT_CODE, "names.txt": "\n" * (grade.TEXT_CAP_BYTES + 1)})
    assert row["status"] == "refused-submission" and "names.txt" in row["error"], row
    assert "names.txt" not in read


def _encoded_in_numbers(text):
    """What a student function can hand back to smuggle text out through a failure message: arrays
    with no elements whose dimensions are the text's bytes, strings and lists whose lengths are."""
    import numpy as np

    codes = list(text.encode())
    return [np.zeros([0, *codes[:4]], "float32"), "x" * codes[4], [[0] * c for c in codes[5:8]],
            np.zeros([0, *codes[8:12]], "int8"), np.zeros(codes[12:14], "int8")]


def test_failure_messages_carry_no_numbers_a_student_chose_to_smuggle_text_out(marker):
    """Where no jail hides the reference solution (no namespaces: Gradescope's container may be one)
    the worker can read it; shapes and lengths in failure messages must not carry it to results.json."""
    from instructor import jail

    try:
        assert marker == "expected"
    except AssertionError:
        excinfo = pytest.ExceptionInfo.from_current()
    message = jail.failure_message("tests/student/test_student_metrics.py::test_recall", "test_recall", excinfo,
                                   _encoded_in_numbers(marker))
    numbers = [int(n) for n in re.findall(r"\d+", re.sub(r"(float|int)\d+", "", message.split("handed back:")[1]))]
    assert numbers and max(numbers) <= jail.SHOWN_NUMBER_CAP and len(numbers) <= 15, message
    assert "ndarray float32" in message and "list of" in message, message


def test_small_shapes_and_lengths_are_still_shown_to_help_the_student():
    import numpy as np

    from instructor import jail

    assert jail.describe(np.zeros((2, 3), "float32")) == "ndarray float32 of shape (2, 3)"
    assert jail.describe("x" * 32) == "str of 32 characters"
    assert jail.describe({"recall": "a", "precision": "b", "f1_score": "c"}) == "dict of 3 items (keys str, values str)"
    assert jail.describe([1, 2.0]) == "list of 2 items (float, int)"


@pytest.mark.slow  # converts a model and measures it on the small synthetic set
def test_a_real_model_is_still_measured_in_the_narrowed_jail(tmp_path, small_dataset):
    """The measurement sees only the model files, the formulas and its report folder: enough."""
    import importlib.util

    import models
    import synthetic

    spec = importlib.util.spec_from_file_location("student_conftest", kit.ROOT / "tests" / "student" / "conftest.py")
    student_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(student_conftest)
    own = tmp_path / "batch" / "submission"
    (own / "scratch").mkdir(parents=True)
    kit_dir = own / "kit"
    (kit_dir / "models").mkdir(parents=True)
    model = models.get_model(lab.model_settings(["up", "down"]), "micro_kws_xs")
    student_conftest.convert_int8(model, kit_dir / "models" / "kws_model_student_updown_quantized.tflite")
    report, kind = grade.measure(own, kit_dir, "up,down", [(small_dataset, synthetic.describe_dataset(small_dataset))],
                                 600)
    assert kind == "synthetic" and set(grade.CHALLENGE_FIGURES) <= set(report)
    assert report["rom_bytes"]["value"] > 0 and report["macs"]["value"] > 0


# --- The grading-only tests: their names and places are hidden text too ------------------------------


def _failed(name):
    try:
        assert name == "expected"
    except AssertionError:
        return pytest.ExceptionInfo.from_current()


def test_a_grading_only_tests_name_and_place_never_reach_its_failure_message(marker):
    """Their names may state the exact figures they check (test_micro_kws_xs_needs_48000_macs)."""
    from instructor import jail

    name = f"test_{marker}_needs_48000_macs"
    message = jail.failure_message(f"tests/student/grading/test_estimate_exact.py::{name}", name, _failed(name), [7])
    assert marker not in message and "48000" not in message and "grading/" not in message, message
    assert message.startswith("a grading-only check: a check failed"), message


def test_grading_only_test_names_never_reach_results_json(tmp_path, marker):
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest" tests="2">'
        f'<testcase classname="tests.student.grading.test_estimate_exact" name="test_{marker}_needs_48000_macs"/>'
        '<testcase classname="tests.student.test_student_estimate" name="test_rom_counts_every_weight"/>'
        '</testsuite></testsuites>')
    results = grade.score(grade.read_test_results(report), False, {"estimate": 20, "challenge": 10})
    names = [test["name"] for test in results["tests"]]
    assert marker not in json.dumps(results) and "48000" not in json.dumps(results), names
    assert "estimate (grading): grading-only check 1" in names and "estimate: test_rom_counts_every_weight" in names


def test_a_check_the_challenge_adds_counts_in_passing_but_sets_no_column(tmp_path, monkeypatch, hostile_model):
    figures = {name: {"value": 1, "limit": 2, "passed": True, "source": "x"}
               for name in ("int8_test_accuracy", "rom_bytes", "ram_bytes", "macs")}
    figures["operators"] = {"value": "CONV_2D, TRANSPOSE_CONV", "limit": "allowed", "passed": False}
    report, _ = _measure_writing({"challenge-report.json": lambda p: p.write_text(json.dumps(figures))},
                                 tmp_path, monkeypatch, hostile_model)
    assert report["operators"]["passed"] is False
