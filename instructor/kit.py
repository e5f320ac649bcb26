"""Copies of the kit: clean copies to grade in, the student release, and the solution overlay."""

import shutil
import subprocess
from pathlib import Path

from lab import ANSWERS_FILE, STUDENT_FILES  # noqa: F401  (the files students fill in)

ROOT = Path(__file__).resolve().parent.parent
# Never part of a copy: environments, data, outputs and caches.
SKIPPED_DIRS = {".git", ".venv", "build", "datasets", "training", "models", "results", "submissions",
                "__pycache__", ".pytest_cache", ".ipynb_checkpoints"}


def kit_files(root=ROOT):
    """Relative paths of the kit's files: what git tracks (a note or groups.csv left beside the kit is
    never copied into a grading copy or the student release), or every file outside a checkout."""
    root = Path(root)
    if (root / ".git").exists():
        listing = subprocess.run(["git", "ls-files", "--cached", "-z"],
                                 cwd=root, capture_output=True, check=True).stdout.decode()
        paths = [Path(p) for p in listing.split("\0") if p]
    else:
        paths = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    return sorted(p for p in paths if not SKIPPED_DIRS & set(p.parts) and (root / p).is_file())


def copy_kit(destination, root=ROOT, include_instructor=False):
    """Copies the kit into destination (without instructor/ unless asked); returns the folder."""
    destination = Path(destination)
    for path in kit_files(root):
        if path.parts[0] == "instructor" and not include_instructor:
            continue
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(root) / path, target)
    return destination


def overlay_solution(kit_dir, root=ROOT):
    """Replaces the student files of a kit copy (and the answers) with the reference solution."""
    for relative in STUDENT_FILES + [ANSWERS_FILE]:
        shutil.copy2(Path(root) / "instructor" / "solution" / Path(relative).name, Path(kit_dir) / relative)


GRADING_TESTS_DIR = Path("tests") / "student" / "grading"  # where a kit copy holds the grading-only tests


def add_grading_tests(kit_dir, root=ROOT):
    """Copies the grading-only tests (exact figures the public tests do not state) into the student
    tests of a kit copy, where they run with the student's tests and share their fixtures.

    The whole instructor/grading_tests/ folder goes to tests/student/grading/ under its own names
    (test_<group>_*.py, with any helper module or conftest beside them), so pytest collects its
    tests like any other and each counts in its rubric group (instructor/grade.py's test_group).
    """
    shutil.copytree(Path(root) / "instructor" / "grading_tests", Path(kit_dir) / GRADING_TESTS_DIR,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"), dirs_exist_ok=True)
