"""The grader's pytest plugin: in its test run, `student.*` are stand-ins for the jailed worker.

instructor/grade.py runs the student tests with `-p instructor.grading_plugin`; the tests then call
the student's functions as usual, but each call runs in the submission's jailed worker and only
its value comes back (instructor/jail.py). The environment says where the submission is:
MICROKWS_SUBMISSION_DIR (its folder), MICROKWS_STUDENT_CODE (the folder holding student/),
MICROKWS_TEST_SECONDS (a call's time limit), MICROKWS_STEP_SECONDS (the worker's CPU time) and
MICROKWS_HIDE (more folders the jail hides, os.pathsep between them).

Two more guards, because this process reads what student code sends:
- its own memory is capped (jail.GRADER_MEMORY_BYTES) from the start: a returned model too large
  to rebuild fails its test instead of swallowing the machine;
- a failure's message (shown to the student in results.json) is rewritten in the grader's words:
  the test that failed, where, and the type and shape of what the student code handed back, never
  the values themselves (a returned text could be anything the student code read).
"""

import os
import re
from pathlib import Path

import pytest

from instructor import jail

jail.limit_own_memory()
_worker = jail.StudentProcess(
    own_dir=os.environ["MICROKWS_SUBMISSION_DIR"], student_code_dir=os.environ["MICROKWS_STUDENT_CODE"],
    kit_dir=Path.cwd(), call_seconds=float(os.environ.get("MICROKWS_TEST_SECONDS", "120")),
    cpu_seconds=int(os.environ.get("MICROKWS_STEP_SECONDS", "900")),
    hide=[path for path in os.environ.get("MICROKWS_HIDE", "").split(os.pathsep) if path])
jail.install(_worker)


def pytest_sessionfinish(session):
    """After the tests: the architecture student/model.py builds for the submission's keywords
    (MICROKWS_WORDS), asked of the worker once and written by this process (model.to_json()) to
    MICROKWS_ARCHITECTURE, for the measurement to compare with the submitted .tflite. If the
    student's code cannot build it, no file is written (its own tests fail already)."""
    words, target = os.environ.get("MICROKWS_WORDS"), os.environ.get("MICROKWS_ARCHITECTURE")
    if not words or not target:
        return
    try:
        import challenge

        architecture = challenge.student_keras_model(words).to_json()
    except Exception:  # noqa: BLE001 - whatever the student's model does is the student's
        return
    Path(target).write_text(architecture)


def pytest_unconfigure(config):
    _worker.close()


def pytest_runtest_setup(item):
    _worker.received.clear()  # what this test receives, for its failure message


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.longrepr = _message(jail.failure_message, item.nodeid, item.name, call.excinfo, _worker.received)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        grader_words = re.search(r"student/\w+\.py could not be imported: [^\n]*", str(report.longrepr))
        what = "could not be collected" + (": " + grader_words[0] if grader_words else "")
        report.longrepr = _message(jail.failure_message, collector.nodeid, Path(str(collector.path)).name, None, [],
                                   what)


def _message(write, *args):
    """The failure message, or a plain one if writing it fails on what the student code handed back:
    an exception in these hooks would stop the grader's pytest (no report: a grader error)."""
    try:
        return write(*args)
    except Exception:  # noqa: BLE001
        return "failed (the grader could not describe what the student code handed back)"
