#!/usr/bin/env python3
"""Sets up the kit's environment and runs its main job or its tests, on any platform with Python.

    python bootstrap.py flow [run_flow.py options]     the whole lab, headless, on the synthetic set
    python bootstrap.py test [pytest options]          every test of the kit and the instructor tools
    python bootstrap.py install                        only the environment

On Windows use `py bootstrap.py flow` (or `python`); `make flow` / `make test` call this script.
It creates `.venv` beside this file with the running Python (3.10 to 3.13), installs
requirements.txt with the exact versions of constraints.txt (the semester lock), and runs the
job with the environment's Python. A second run reuses the environment until either file changes.
Only the standard library is used here: it runs before anything is installed.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
SUPPORTED_PYTHONS = ((3, 10), (3, 13))
REQUIREMENT_FILES = ("requirements.txt", "constraints.txt")
# What `test` runs: the kit's tests and the instructor's, quick and slow ones.
TEST_ARGUMENTS = ["-m", "pytest", "-q", "-m", "slow or not slow", "tests/kit", "instructor/tests"]


def python_problem(version=sys.version_info):
    """Why this Python cannot run the kit, or None."""
    low, high = SUPPORTED_PYTHONS
    if low <= tuple(version[:2]) <= high:
        return None
    return (f"MicroKWS needs Python {low[0]}.{low[1]} to {high[0]}.{high[1]}, this is "
            f"{version[0]}.{version[1]}. Run this script with a suitable Python, e.g. `py -3.11 "
            "bootstrap.py flow` on Windows or `python3.11 bootstrap.py flow` elsewhere.")


def venv_python(venv_dir=VENV, os_name=os.name):
    """The environment's interpreter: Scripts\\python.exe on Windows, bin/python elsewhere."""
    if os_name == "nt":
        return Path(venv_dir) / "Scripts" / "python.exe"
    return Path(venv_dir) / "bin" / "python"


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


def job_command(python, job, extra_arguments=()):
    """The command line of a job ("flow" or "test") run with the environment's Python."""
    if job == "flow":
        return [str(python), str(ROOT / "run_flow.py"), *extra_arguments]
    if job == "test":
        return [str(python), *TEST_ARGUMENTS, *extra_arguments]
    raise ValueError(f"Unknown job {job!r}: choose flow, test or install.")


def ensure_environment(venv_dir=VENV, root=ROOT, run=subprocess.run):
    """Creates the environment and installs the requirements unless they are installed already."""
    python = venv_python(venv_dir)
    stamp_file = Path(venv_dir) / ".requirements-installed"
    stamp = requirements_stamp(root)
    if python.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return python
    if not python.is_file():
        print(f"Creating the environment {venv_dir} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    stamp_file.unlink(missing_ok=True)  # a half-finished installation is never taken as complete
    print("Installing the kit's requirements (TensorFlow is large: a few minutes the first time) ...", flush=True)
    for command in install_commands(python, root):
        run(command, check=True)
    stamp_file.write_text(stamp + "\n")
    return python


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("flow", "test", "install"):
        print(__doc__)
        return 2
    problem = python_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        python = ensure_environment()
    except subprocess.CalledProcessError as error:
        print(f"Installing the requirements failed ({error}). Check the network or the package index, "
              "then run the same command again.", file=sys.stderr)
        return 1
    if argv[0] == "install":
        return 0
    return subprocess.run(job_command(python, argv[0], argv[1:]), cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
