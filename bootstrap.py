#!/usr/bin/env python3
"""Sets up the kit's environment and runs a job of the lab with it, on any platform with Python.

    python bootstrap.py flow [run_flow.py options]     the whole lab, headless, on the synthetic set
    python bootstrap.py test [pytest options]          the kit's own tests (and the instructor's)
    python bootstrap.py student-tests [pytest options] the student tests, as graders run them
    python bootstrap.py submit [submit.py options]     checks your work and writes submission.zip
    python bootstrap.py jupyter [lab|notebook]         opens Flow.ipynb in Jupyter (lab by default)
    python bootstrap.py install                        only the environment

On Windows use `py bootstrap.py ...` (or `python`); `make flow` / `make test` call this script.
It creates `.venv` beside this file with the running Python (3.10 to 3.13), installs
requirements.txt with the exact versions of constraints.txt (the semester lock), and runs the
job with the environment's Python, so nothing needs activating. A second run reuses the
environment until either file changes; an environment without pip is made anew.
Only the standard library is used here: it runs before anything is installed.
"""

import hashlib
import importlib.util
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# TensorFlow 2.21 publishes wheels for CPython 3.10 to 3.13 only (none for 3.14).
SUPPORTED_PYTHONS = ((3, 10), (3, 13))
SUGGESTED_PYTHON = "3.12"
REQUIREMENT_FILES = ("requirements.txt", "constraints.txt")
# What `test` runs: the kit's tests and the instructor's, quick and slow ones. The student release
# has no instructor/ folder, so only the folders present are run.
TEST_PATHS = ("tests/kit", "instructor/tests")
JOBS = {
    "flow": "the whole lab, headless, on the synthetic set",
    "test": "the kit's own tests (and the instructor's, where instructor/ is present)",
    "student-tests": "the student tests (tests/student), as graders run them",
    "submit": "checks your work and writes submission.zip (submit.py)",
    "jupyter": "opens Flow.ipynb in Jupyter Lab (`jupyter notebook` for the classic one)",
    "install": "only the environment",
}
PIP_LINES_SHOWN = 15


class SetupProblem(Exception):
    """The environment cannot be made; the message says why and what to do."""


# --- The Python and the machine -------------------------------------------------------------

def python_install_lines(system, job="flow"):
    """How to get a suitable Python on this kind of machine, and to run `job` with it."""
    version = SUGGESTED_PYTHON
    if system == "Windows":
        own = [f"winget install Python.Python.{version}", f"py -{version} bootstrap.py {job}"]
    elif system == "Darwin":
        own = [f"brew install python@{version}", f"python{version} bootstrap.py {job}"]
    else:
        own = [f"Ubuntu: sudo add-apt-repository ppa:deadsnakes/ppa && sudo apt install python{version}-venv",
               f"python{version} bootstrap.py {job}"]
    return own + [f"any platform: uv python install {version}, then python{version} bootstrap.py {job}"]


def python_problem(version=sys.version_info, system=platform.system(), job="flow"):
    """Why this Python cannot run the kit (with how to get one that can), or None."""
    low, high = SUPPORTED_PYTHONS
    if low <= tuple(version[:2]) <= high:
        return None
    lines = python_install_lines(system, job)
    return (f"MicroKWS needs Python {low[0]}.{low[1]} to {high[0]}.{high[1]} (TensorFlow 2.21 has no "
            f"packages for other versions); this is Python {'.'.join(map(str, version[:3]))}.\n"
            f"Install Python {SUGGESTED_PYTHON} beside it and run this script with that one:\n"
            + "\n".join(f"    {line}" for line in lines))


def platform_problem(system=platform.system(), machine=platform.machine(), pointer_bits=8 * struct.calcsize("P")):
    """Why TensorFlow cannot be installed for this Python's platform, or None."""
    if pointer_bits != 64:
        return ("This Python is a 32-bit one; TensorFlow needs a 64-bit Python "
                f"(on Windows: winget install Python.Python.{SUGGESTED_PYTHON}).")
    if system == "Darwin" and machine == "x86_64":
        return ("This Python runs as an Intel (x86_64) program, and TensorFlow 2.21 has no packages for "
                "Intel Macs. On an Apple Silicon Mac use an arm64 Python (python.org's installer, or "
                f"`brew install python@{SUGGESTED_PYTHON}` from /opt/homebrew); on an Intel Mac use "
                "Google Colab (README, Google Colab).")
    if system == "Windows" and machine.upper() == "ARM64":
        return ("This Python is a Windows-on-ARM one, and TensorFlow 2.21 has no packages for it. Install "
                "the x64 Python from python.org (Windows runs it emulated), or use Google Colab.")
    return None


def venv_python(venv_dir=VENV, os_name=os.name):
    """The environment's interpreter: Scripts\\python.exe on Windows, bin/python elsewhere."""
    if os_name == "nt":
        return Path(venv_dir) / "Scripts" / "python.exe"
    return Path(venv_dir) / "bin" / "python"


def no_pip_advice(version=sys.version_info):
    """What to do when this Python cannot put pip into a new environment."""
    name = f"python{version[0]}.{version[1]}-venv"
    return (f"This Python cannot put pip into a new environment (its `ensurepip` module is missing or failed). "
            f"On Debian or Ubuntu install it: sudo apt install {name}; then run the same command again. "
            f"Elsewhere, use a Python from python.org, Homebrew or `uv python install {SUGGESTED_PYTHON}`.")


# --- The environment --------------------------------------------------------------------------

def requirements_stamp(root=ROOT):
    """A digest of the requirement files: the environment is remade when it changes."""
    digest = hashlib.sha256()
    for name in REQUIREMENT_FILES:
        path = Path(root) / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()


def install_commands(python, root=ROOT):
    """The pip commands that install the kit's requirements into the environment of `python`."""
    constraints = ["-c", str(Path(root) / "constraints.txt")] if (Path(root) / "constraints.txt").is_file() else []
    return [
        [str(python), "-m", "pip", "install", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--progress-bar", "on", "-r", str(Path(root) / "requirements.txt"),
         *constraints],
    ]


def has_pip(python, run=subprocess.run):
    """Whether the environment's Python starts and can run pip."""
    try:
        return run([str(python), "-m", "pip", "--version"], capture_output=True).returncode == 0
    except OSError:  # an interpreter that cannot start (its base Python was removed or replaced)
        return False


def create_environment(venv_dir):
    """Makes a new environment with pip in venv_dir, replacing whatever was there."""
    venv_dir = Path(venv_dir)
    if importlib.util.find_spec("ensurepip") is None:
        raise SetupProblem(no_pip_advice())
    if venv_dir.is_symlink():
        raise SetupProblem(f"{venv_dir} is a link to {os.readlink(venv_dir)}, which is not a working environment; "
                           "repair that environment or remove the link, then run the same command again.")
    shutil.rmtree(venv_dir, ignore_errors=True)
    try:
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    except subprocess.CalledProcessError as error:
        shutil.rmtree(venv_dir, ignore_errors=True)
        raise SetupProblem(no_pip_advice()) from error


def last_lines(text, count=PIP_LINES_SHOWN):
    """The last non-empty lines of a program's output, as a terminal would have left them: colour
    codes removed, and of a line redrawn with carriage returns (a progress bar) its last state."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    lines = [line.split("\r")[-1].rstrip() for line in text.split("\n")]
    return [line for line in lines if line.strip()][-count:]


def stream_output(command):
    """Runs a command, passing its output on to the terminal as it comes, and returns
    (exit code, its last lines). pip's progress bar stays live when the terminal is one."""
    environment = dict(os.environ, FORCE_COLOR="1") if sys.stdout.isatty() else None
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment)
    terminal = getattr(sys.stdout, "buffer", None)
    kept = b""
    for chunk in iter(lambda: process.stdout.read1(4096), b""):
        if terminal:
            terminal.write(chunk)
            terminal.flush()
        else:
            print(chunk.decode("utf-8", errors="replace"), end="", flush=True)
        kept = (kept + chunk)[-16384:]
    return process.wait(), last_lines(kept.decode("utf-8", errors="replace"))


def pip_advice(pip_lines):
    """What to do after a failed pip install, read from pip's last lines."""
    text = "\n".join(pip_lines)
    if "No space left on device" in text:
        return ("The disk is full. The environment takes about 3 GB: free space (README, Troubleshooting), "
                "then run the same command again.")
    if "Long Path support" in text:
        return ("Windows refused a long file path inside the environment. Enable long paths (README, Set-up, "
                "Windows) or move the kit to a short folder such as C:\\kit, then run the same command again.")
    if re.search(r"No matching distribution|Could not find a version that satisfies", text):
        return (f"The package index has no package for this platform and Python "
                f"({platform.system()} {platform.machine()}, Python {platform.python_version()}). "
                "README, Platforms lists the ones the kit serves; Google Colab serves everyone.")
    if re.search(r"Could not fetch URL|NewConnectionError|Max retries exceeded|Temporary failure in name "
                 r"resolution|ProxyError|SSLError|timed out|ConnectionError|Network is unreachable", text):
        return ("pip could not reach the package index. Check the network (or the proxy: pip reads "
                "HTTPS_PROXY), then run the same command again; what was downloaded is kept in pip's cache.")
    return "Read pip's lines above for the cause, fix it, then run the same command again."


def ensure_environment(venv_dir=VENV, root=ROOT, run=subprocess.run, stream=stream_output,
                       create=create_environment):
    """Creates the environment and installs the requirements unless they are installed already.
    An environment without a Python or without pip is made anew. Raises SetupProblem."""
    python = venv_python(venv_dir)
    stamp_file = Path(venv_dir) / ".requirements-installed"
    stamp = requirements_stamp(root)
    if python.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return python
    if not python.is_file() or not has_pip(python, run):
        what = "Creating" if not Path(venv_dir).exists() else "Making anew (it has no working Python or pip)"
        print(f"{what} the environment {venv_dir} ...", flush=True)
        create(venv_dir)
        if not python.is_file() or not has_pip(python, run):
            raise SetupProblem(no_pip_advice())
    stamp_file.unlink(missing_ok=True)  # a half-finished installation is never taken as complete
    print("Installing the kit's requirements (TensorFlow is large: a few minutes the first time) ...", flush=True)
    for command in install_commands(python, root):
        code, pip_lines = stream(command)
        if code != 0:
            shown = "\n".join(f"    {line}" for line in pip_lines)
            raise SetupProblem(f"Installing the requirements failed (pip exited with {code}). pip's last lines:\n"
                               f"{shown}\n{pip_advice(pip_lines)}")
    stamp_file.write_text(stamp + "\n")
    return python


# --- The jobs -----------------------------------------------------------------------------------

def job_command(python, job, extra_arguments=(), root=ROOT):
    """The command line of a job run with the environment's Python (from the kit's folder)."""
    extra_arguments = list(extra_arguments)
    if job == "flow":
        return [str(python), str(Path(root) / "run_flow.py"), *extra_arguments]
    if job == "test":
        present = [path for path in TEST_PATHS if (Path(root) / path).is_dir()]
        return [str(python), "-m", "pytest", "-q", "-m", "slow or not slow", *present, *extra_arguments]
    if job == "student-tests":
        return [str(python), "-m", "pytest", "-q", "tests/student", *extra_arguments]
    if job == "submit":
        return [str(python), str(Path(root) / "submit.py"), *extra_arguments]
    if job == "jupyter":
        interface = extra_arguments.pop(0) if extra_arguments[:1] in (["lab"], ["notebook"]) else "lab"
        return [str(python), "-m", "jupyter", interface, "Flow.ipynb", *extra_arguments]
    raise ValueError(unknown_job_message(job))


def unknown_job_message(job):
    """Names the job that does not exist and lists those that do."""
    listing = "\n".join(f"    {name:<14} {what}" for name, what in JOBS.items())
    return f"bootstrap.py has no job {job!r}. Its jobs:\n{listing}\nExample: python bootstrap.py flow"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if argv else 2
    job, extra_arguments = argv[0], argv[1:]
    if job not in JOBS:
        print(unknown_job_message(job), file=sys.stderr)
        return 2
    problem = python_problem(job=job) or platform_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        python = ensure_environment()
    except SetupProblem as error:
        print(error, file=sys.stderr)
        return 1
    if job == "install":
        return 0
    try:
        return subprocess.run(job_command(python, job, extra_arguments), cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
