"""Proof that the student tests (with the grading-only ones) can fail and can pass: stubs fail every
one, the solution none."""

import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from instructor import kit

pytestmark = pytest.mark.slow


def _run_student_tests(kit_dir):
    report = kit_dir / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/student",
                    f"--junitxml={report}"], cwd=kit_dir, capture_output=True, text=True, timeout=900)
    suite = ElementTree.parse(report).getroot().find("testsuite")
    return {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}


def test_every_student_test_passes_with_the_reference_solution(tmp_path):
    copy = kit.copy_kit(tmp_path / "kit")
    kit.overlay_solution(copy)
    kit.add_grading_tests(copy)
    counts = _run_student_tests(copy)
    assert counts["tests"] >= 30 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts


def test_every_student_test_fails_with_the_shipped_stubs(tmp_path):
    copy = kit.copy_kit(tmp_path / "kit")
    kit.add_grading_tests(copy)
    counts = _run_student_tests(copy)
    assert counts["tests"] >= 30 and counts["failures"] + counts["errors"] == counts["tests"], counts
