"""bootstrap.py: the set-up every platform shares (tested here on Linux, for Windows paths too)."""

from pathlib import Path

import pytest

import bootstrap


def test_the_environments_python_is_under_scripts_on_windows():
    assert bootstrap.venv_python(Path("kit/.venv"), os_name="nt") == Path("kit/.venv/Scripts/python.exe")


def test_the_environments_python_is_under_bin_elsewhere():
    assert bootstrap.venv_python(Path("kit/.venv"), os_name="posix") == Path("kit/.venv/bin/python")


@pytest.mark.parametrize("version", [(3, 10, 0), (3, 11, 7), (3, 13, 1)])
def test_supported_pythons_are_accepted(version):
    assert bootstrap.python_problem(version) is None


@pytest.mark.parametrize("version", [(3, 9, 18), (3, 14, 0)])
def test_other_pythons_are_refused_with_what_to_run_instead(version):
    problem = bootstrap.python_problem(version)
    assert "3.10 to 3.13" in problem and "py -3.11 bootstrap.py flow" in problem


def test_the_install_uses_the_semester_lock(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "constraints.txt").write_text("numpy==2.4.6\n")
    install = bootstrap.install_commands(Path("py"), tmp_path)[-1]
    assert install[install.index("-c") + 1] == str(tmp_path / "constraints.txt")
    assert "--quiet" not in install


def test_a_changed_requirement_file_changes_the_stamp(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "constraints.txt").write_text("numpy==2.4.6\n")
    before = bootstrap.requirements_stamp(tmp_path)
    (tmp_path / "constraints.txt").write_text("numpy==2.4.7\n")
    assert bootstrap.requirements_stamp(tmp_path) != before


def test_an_installed_environment_is_reused_without_running_pip(tmp_path):
    python = bootstrap.venv_python(tmp_path / ".venv")
    python.parent.mkdir(parents=True)
    python.write_text("")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / ".venv" / ".requirements-installed").write_text(bootstrap.requirements_stamp(tmp_path) + "\n")
    calls = []
    assert bootstrap.ensure_environment(tmp_path / ".venv", tmp_path, run=calls.append) == python
    assert calls == []


def test_a_failed_installation_leaves_no_stamp(tmp_path):
    python = bootstrap.venv_python(tmp_path / ".venv")
    python.parent.mkdir(parents=True)
    python.write_text("")
    (tmp_path / "requirements.txt").write_text("numpy\n")

    def fail(command, check):
        raise bootstrap.subprocess.CalledProcessError(1, command)

    with pytest.raises(bootstrap.subprocess.CalledProcessError):
        bootstrap.ensure_environment(tmp_path / ".venv", tmp_path, run=fail)
    assert not (tmp_path / ".venv" / ".requirements-installed").exists()


def test_the_test_job_runs_the_same_pytest_command_as_ci():
    command = bootstrap.job_command(Path("py"), "test")
    assert command[1:] == ["-m", "pytest", "-q", "-m", "slow or not slow", "tests/kit", "instructor/tests"]
