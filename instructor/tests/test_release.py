"""instructor/release.py: the student kit holds no solution, and its notebook and tests run."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from instructor import kit, release

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return release.build_release(tmp_path_factory.mktemp("release"), make_zip=True)


def test_the_release_has_no_instructor_material(released):
    assert not (released / "instructor").exists()
    assert (released.parent / "microkws.zip").is_file()


def _answer_lines(name):
    """The lines of a reference solution file that hold answers: code, not docs, imports or defs."""
    lines = {line.strip() for line in (kit.ROOT / "instructor" / "solution" / name).read_text().splitlines()}
    return {line for line in lines if len(line) > 20 and not line.startswith(("#", '"', "def ", "import ", "from "))}


def test_the_release_contains_no_reference_solution_code(released):
    solution_lines = set().union(*(_answer_lines(name) for name in ("metrics.py", "callbacks.py", "estimate.py")))
    assert len(solution_lines) >= 8
    for path in released.rglob("*.py"):
        leaked = solution_lines & {line.strip() for line in path.read_text().splitlines()}
        assert not leaked, f"{path.relative_to(released)} holds reference solution lines: {sorted(leaked)}"


def test_the_release_keeps_the_student_stubs(released):
    for relative in kit.STUDENT_FILES:
        assert (released / relative).read_text() == (kit.ROOT / relative).read_text()


def _released_module(released, name):
    """A module of the release itself (not the instructor's kit), imported from its file."""
    spec = importlib.util.spec_from_file_location(f"released_{name}", released / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(command, cwd):
    return subprocess.run([str(argument) for argument in command], cwd=cwd, capture_output=True, text=True,
                          timeout=1200)


def test_the_release_test_command_collects_every_test_of_the_release(released):
    """The release's own `make test` (its bootstrap.py's test job) names only folders the release
    holds (pytest refuses a missing one), and every test module imports without instructor/."""
    bootstrap = _released_module(released, "bootstrap")
    command = bootstrap.job_command(Path(sys.executable), "test", ["-p", "no:cacheprovider", "--collect-only"])
    assert not any("instructor" in str(argument) for argument in command), command
    result = _run(command, released)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ tests collected", result.stdout), result.stdout[-2000:]


def test_the_release_tests_that_read_instructor_material_pass_without_it(released):
    """The release is the kit's tracked files without instructor/, so a quick test can only behave
    otherwise there if it reads instructor/; those files are found by their text and run (the rest
    run on the same code in the kit's own test run)."""
    readers = sorted(path.relative_to(released).as_posix() for path in (released / "tests").rglob("test_*.py")
                     if "instructor" in path.read_text())
    assert "tests/kit/test_structure.py" in readers
    result = _run([sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", *readers],
                  released)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout), result.stdout[-2000:]


def test_the_released_notebook_runs(released, small_dataset):
    result = subprocess.run([sys.executable, "run_flow.py", "--steps", "40,20", "--eval-step-interval", "20",
                             "--data-dir", str(small_dataset), "--out", str(released / "build" / "flow")],
                            cwd=released, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert (released / "build" / "flow" / "Flow.html").is_file()


def test_only_the_files_git_tracks_are_released_or_graded(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "data.py").write_text("# tracked\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "data.py"], check=True)
    (tmp_path / "groups.csv").write_text("Group,First name,Last name\n")  # the instructor's, never committed
    assert [str(path) for path in kit.kit_files(tmp_path)] == ["data.py"]
