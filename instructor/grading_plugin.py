"""The grader's pytest plugin: in its test run, `student.*` are stand-ins for the jailed worker.

instructor/grade.py runs the student tests with `-p instructor.grading_plugin`; the tests then call
the student's functions as usual, but each call runs in the submission's jailed worker and only
its value comes back (instructor/jail.py). The environment says where the submission is:
MICROKWS_SUBMISSION_DIR (its folder), MICROKWS_STUDENT_CODE (the folder holding student/),
MICROKWS_TEST_SECONDS (a call's time limit), MICROKWS_STEP_SECONDS (the worker's CPU time) and
MICROKWS_HIDE (more folders the jail hides, os.pathsep between them).
"""

import os
from pathlib import Path

from instructor import jail

_worker = jail.StudentProcess(
    own_dir=os.environ["MICROKWS_SUBMISSION_DIR"], student_code_dir=os.environ["MICROKWS_STUDENT_CODE"],
    kit_dir=Path.cwd(), call_seconds=float(os.environ.get("MICROKWS_TEST_SECONDS", "120")),
    cpu_seconds=int(os.environ.get("MICROKWS_STEP_SECONDS", "900")),
    hide=[path for path in os.environ.get("MICROKWS_HIDE", "").split(os.pathsep) if path])
jail.install(_worker)


def pytest_unconfigure(config):
    _worker.close()
