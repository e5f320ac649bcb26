"""bootstrap.py: the set-up every platform shares (tested here on Linux, for Windows paths too).
No test runs pip or makes a real environment: the commands are handed to stand-ins."""

import subprocess
from pathlib import Path

import pytest

import bootstrap


def _kit(tmp_path):
    """A kit folder with requirement files, as bootstrap.py reads them."""
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "constraints.txt").write_text("numpy==2.4.6\n")
    return tmp_path


def _fake_python(venv_dir):
    python = bootstrap.venv_python(venv_dir)
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text("")
    return python


class FakePip:
    """Stands in for subprocess.run: `python -m pip --version` succeeds once pip is there."""

    def __init__(self, pip_present):
        self.pip_present = pip_present
        self.commands = []

    def __call__(self, command, **options):
        self.commands.append(command)
        return subprocess.CompletedProcess(command, 0 if self.pip_present else 1)


def _installing(code=0, lines=()):
    """Stands in for stream_output: records the pip commands, answers with an exit code and lines."""
    commands = []

    def stream(command):
        commands.append(command)
        return code, list(lines)
    stream.commands = commands
    return stream


# --- The Python and the machine ---------------------------------------------------------------

def test_the_environments_python_is_under_scripts_on_windows():
    assert bootstrap.venv_python(Path("kit/.venv"), os_name="nt") == Path("kit/.venv/Scripts/python.exe")


def test_the_environments_python_is_under_bin_elsewhere():
    assert bootstrap.venv_python(Path("kit/.venv"), os_name="posix") == Path("kit/.venv/bin/python")


@pytest.mark.parametrize("version", [(3, 10, 0), (3, 11, 2), (3, 12, 1), (3, 13, 1)])
def test_supported_pythons_are_accepted(version):
    assert bootstrap.python_problem(version) is None


@pytest.mark.parametrize("version", [(3, 9, 18), (3, 14, 0)])
def test_other_pythons_are_refused_naming_the_versions_that_work(version):
    problem = bootstrap.python_problem(version, system="Linux")
    assert "3.10 to 3.13" in problem and f"this is Python {version[0]}.{version[1]}.{version[2]}" in problem


@pytest.mark.parametrize("system, install_line, run_line", [
    ("Windows", "winget install Python.Python.3.12", "py -3.12 bootstrap.py submit"),
    ("Darwin", "brew install python@3.12", "python3.12 bootstrap.py submit"),
    ("Linux", "sudo apt install python3.12-venv", "python3.12 bootstrap.py submit"),
])
def test_python_3_14_is_refused_with_how_to_get_3_12_on_that_platform(system, install_line, run_line):
    problem = bootstrap.python_problem((3, 14, 0), system=system, job="submit")
    assert install_line in problem and run_line in problem
    assert "uv python install 3.12" in problem


def test_an_intel_mac_python_is_refused_with_colab_offered():
    problem = bootstrap.platform_problem("Darwin", "x86_64", 64)
    assert "Intel" in problem and "Colab" in problem


def test_windows_on_arm_and_32_bit_pythons_are_refused():
    assert "x64 Python" in bootstrap.platform_problem("Windows", "ARM64", 64)
    assert "64-bit Python" in bootstrap.platform_problem("Windows", "AMD64", 32)


@pytest.mark.parametrize("system, machine", [("Darwin", "arm64"), ("Windows", "AMD64"), ("Linux", "x86_64"),
                                             ("Linux", "aarch64")])
def test_the_served_platforms_are_accepted(system, machine):
    assert bootstrap.platform_problem(system, machine, 64) is None


# --- The environment ----------------------------------------------------------------------------

def test_the_install_uses_the_semester_lock(tmp_path):
    install = bootstrap.install_commands(Path("py"), _kit(tmp_path))[-1]
    assert install[install.index("-c") + 1] == str(tmp_path / "constraints.txt")
    assert "--quiet" not in install


def test_a_changed_requirement_file_changes_the_stamp(tmp_path):
    before = bootstrap.requirements_stamp(_kit(tmp_path))
    (tmp_path / "constraints.txt").write_text("numpy==2.4.7\n")
    assert bootstrap.requirements_stamp(tmp_path) != before


def test_an_installed_environment_is_reused_without_running_pip(tmp_path):
    python = _fake_python(_kit(tmp_path) / ".venv")
    (tmp_path / ".venv" / ".requirements-installed").write_text(bootstrap.requirements_stamp(tmp_path) + "\n")
    run, stream = FakePip(pip_present=True), _installing()
    assert bootstrap.ensure_environment(tmp_path / ".venv", tmp_path, run=run, stream=stream) == python
    assert run.commands == [] and stream.commands == []


def test_a_missing_environment_is_created_and_installed(tmp_path):
    created, stream = [], _installing()
    python = bootstrap.ensure_environment(_kit(tmp_path) / ".venv", tmp_path, run=FakePip(pip_present=True),
                                          stream=stream, create=lambda d: created.append(_fake_python(d)))
    assert created == [python]
    assert stream.commands == bootstrap.install_commands(python, tmp_path)
    assert (tmp_path / ".venv" / ".requirements-installed").read_text().strip() == (
        bootstrap.requirements_stamp(tmp_path))


def test_an_environment_without_pip_is_made_anew(tmp_path):
    _fake_python(_kit(tmp_path) / ".venv")
    run = FakePip(pip_present=False)
    remade = []

    def create(venv_dir):
        remade.append(venv_dir)
        run.pip_present = True  # a fresh environment made with ensurepip has pip
    stream = _installing()
    bootstrap.ensure_environment(tmp_path / ".venv", tmp_path, run=run, stream=stream, create=create)
    assert remade == [tmp_path / ".venv"]
    assert len(stream.commands) == 2


def test_an_environment_still_without_pip_says_to_install_the_venv_package(tmp_path):
    _fake_python(_kit(tmp_path) / ".venv")
    stream = _installing()
    with pytest.raises(bootstrap.SetupProblem, match=r"sudo apt install python3\.\d+-venv"):
        bootstrap.ensure_environment(tmp_path / ".venv", tmp_path, run=FakePip(pip_present=False), stream=stream,
                                     create=lambda d: None)
    assert stream.commands == []


def test_a_real_environment_made_without_pip_is_recognised(tmp_path):
    bootstrap.venv.EnvBuilder(with_pip=False).create(tmp_path / ".venv")
    assert not bootstrap.has_pip(bootstrap.venv_python(tmp_path / ".venv"))
    assert bootstrap.has_pip(Path(bootstrap.sys.executable))


def test_a_python_without_ensurepip_is_told_to_install_the_venv_package(tmp_path, monkeypatch):
    monkeypatch.setattr(bootstrap.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(bootstrap.SetupProblem, match="-venv"):
        bootstrap.create_environment(tmp_path / ".venv")
    assert not (tmp_path / ".venv").exists()


def test_a_linked_environment_is_never_deleted(tmp_path):
    shared = tmp_path / "shared-venv"
    (shared / "lib").mkdir(parents=True)
    (tmp_path / ".venv").symlink_to(shared)
    with pytest.raises(bootstrap.SetupProblem, match="is a link"):
        bootstrap.create_environment(tmp_path / ".venv")
    assert (shared / "lib").is_dir()


def test_a_failed_installation_leaves_no_stamp_and_shows_pips_last_lines(tmp_path):
    _fake_python(_kit(tmp_path) / ".venv")
    pip_said = ["Collecting tensorflow==2.21.0", "ERROR: Could not install packages due to an OSError: "
                "[Errno 28] No space left on device"]
    with pytest.raises(bootstrap.SetupProblem) as failure:
        bootstrap.ensure_environment(tmp_path / ".venv", tmp_path, run=FakePip(pip_present=True),
                                     stream=_installing(code=1, lines=pip_said))
    assert pip_said[1] in str(failure.value)
    assert "disk is full" in str(failure.value)
    assert not (tmp_path / ".venv" / ".requirements-installed").exists()


@pytest.mark.parametrize("pip_line, advice", [
    ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device", "disk is full"),
    ("HINT: This error might have occurred since this system does not have Windows Long Path support enabled.",
     "long paths"),
    ("ERROR: No matching distribution found for tensorflow==2.21.0", "no package for this platform"),
    ("WARNING: Retrying ... Failed to establish a new connection: [Errno -3] Temporary failure in name resolution",
     "could not reach the package index"),
    ("ERROR: something pip has never said before", "Read pip's lines above"),
])
def test_the_advice_after_a_failed_install_follows_what_pip_said(pip_line, advice):
    assert advice in bootstrap.pip_advice(["Collecting numpy", pip_line])


def test_pips_last_lines_keep_the_last_state_of_a_redrawn_progress_bar():
    output = ("Collecting tensorflow\n\x1b[32m  10/600 MB\x1b[0m\r\x1b[2K  600/600 MB\n\n"
              "\x1b[31mERROR: No matching distribution\x1b[0m\n")
    assert bootstrap.last_lines(output) == ["Collecting tensorflow", "  600/600 MB", "ERROR: No matching distribution"]
    assert bootstrap.last_lines(output, count=1) == ["ERROR: No matching distribution"]


def test_stream_output_passes_the_output_on_and_keeps_its_tail(capfd):
    code, lines = bootstrap.stream_output(
        [bootstrap.sys.executable, "-c", "import sys; print('first'); print('last', file=sys.stderr); sys.exit(3)"])
    assert code == 3 and lines == ["first", "last"]
    assert "first" in capfd.readouterr().out


# --- The jobs ----------------------------------------------------------------------------------------

def test_the_test_job_runs_the_kit_and_instructor_tests_in_the_full_kit(tmp_path):
    (tmp_path / "tests" / "kit").mkdir(parents=True)
    (tmp_path / "instructor" / "tests").mkdir(parents=True)
    command = bootstrap.job_command(Path("py"), "test", root=tmp_path)
    assert command[1:] == ["-m", "pytest", "-q", "-m", "slow or not slow", "tests/kit", "instructor/tests"]


def test_the_test_job_runs_only_the_kit_tests_in_the_student_release(tmp_path):
    (tmp_path / "tests" / "kit").mkdir(parents=True)
    command = bootstrap.job_command(Path("py"), "test", root=tmp_path)
    assert command[-1] == "tests/kit" and "instructor/tests" not in command


@pytest.mark.skipif(not (bootstrap.ROOT / "instructor" / "tests").is_dir(),
                    reason="the student release has no instructor/")
def test_this_kits_test_job_runs_the_instructor_tests_too():
    command = bootstrap.job_command(Path("py"), "test")
    assert command[-2:] == ["tests/kit", "instructor/tests"]


def test_student_tests_and_submit_run_with_the_environments_python_and_pass_arguments_on():
    assert bootstrap.job_command(Path("py"), "student-tests", ["-x"]) == ["py", "-m", "pytest", "-q", "tests/student",
                                                                          "-x"]
    assert bootstrap.job_command(Path("py"), "submit", ["--force"]) == ["py", str(bootstrap.ROOT / "submit.py"),
                                                                        "--force"]


def test_jupyter_opens_the_notebook_in_lab_unless_notebook_is_asked_for():
    assert bootstrap.job_command(Path("py"), "jupyter") == ["py", "-m", "jupyter", "lab", "Flow.ipynb"]
    assert bootstrap.job_command(Path("py"), "jupyter", ["notebook", "--no-browser"]) == [
        "py", "-m", "jupyter", "notebook", "Flow.ipynb", "--no-browser"]


def test_an_unknown_job_is_named_and_the_jobs_are_listed(capsys):
    assert bootstrap.main(["sumbit"]) == 2
    message = capsys.readouterr().err
    assert "'sumbit'" in message
    assert all(job in message for job in ("flow", "test", "install", "submit", "student-tests", "jupyter"))
