"""Flow.ipynb as a document: its code parses, it follows the lab's sections, it has the parameters cell."""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

NOTEBOOK = nbformat.read(ROOT / "Flow.ipynb", as_version=4)


def test_every_code_cell_is_valid_python():
    for index, cell in enumerate(NOTEBOOK.cells):
        if cell.cell_type == "code":
            source = "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in cell.source.splitlines())
            ast.parse(source, filename=f"Flow.ipynb cell {index}")


def test_exactly_one_cell_is_tagged_parameters():
    tagged = [c for c in NOTEBOOK.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "FLAGS.how_many_training_steps = \"12000,3000\"" in tagged[0].source


def test_the_sections_follow_the_lab():
    headings = [line for c in NOTEBOOK.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    expected = ["Set-up", "Imports", "Training parameters", "Keras model", "dataset", "Training", "Testing",
                "Quantization", "converted models", "converted model", "estimates", "Final challenge", "Submission"]
    assert len(headings) == len(expected)
    for heading, word in zip(headings, expected):
        assert word.lower() in heading.lower(), (heading, word)


def _kit_finder_cell():
    """The first cell as Python (its %pip lines turned into the calls IPython makes of them)."""
    from IPython.core.inputtransformer2 import TransformerManager

    source = next(c.source for c in NOTEBOOK.cells if c.cell_type == "code" and "KIT_URL" in c.source)
    return TransformerManager().transform_cell(source)


def test_outside_colab_and_outside_the_kit_the_notebook_says_in_one_line_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, "-c", _kit_finder_cell()], cwd=tmp_path, capture_output=True, text=True)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "start Jupyter from the kit's folder" in last


def test_outside_colab_in_the_kit_folder_the_kit_finder_does_nothing():
    result = subprocess.run([sys.executable, "-c", _kit_finder_cell() + "\nprint(os.getcwd())"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == str(ROOT)


def test_the_kit_finder_is_the_first_code_cell():
    first = next(c for c in NOTEBOOK.cells if c.cell_type == "code")
    assert "KIT_URL" in first.source


def _shell_cells(notebook):
    """The cells that run the kit's Python from the shell (`!"{sys.executable}" ...`)."""
    return [c for c in notebook.cells if c.cell_type == "code" and '!"{sys.executable}"' in c.source]


def _execute(cells, path, kit_dir, python, environment=None):
    """Runs the cells (saved as `path`) in a fresh kernel started by `python` in kit_dir; returns
    each cell's text output."""
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    script = (
        "import nbformat, sys\nfrom nbclient import NotebookClient\n"
        f"nb = nbformat.read({str(path)!r}, as_version=4)\n"
        f"NotebookClient(nb, timeout=1200, kernel_name='python3', "
        f"resources={{'metadata': {{'path': {str(kit_dir)!r}}}}}).execute()\n"
        f"nbformat.write(nb, {str(path)!r})\n")
    subprocess.run([str(python), "-c", script], env=environment, check=True, timeout=1500, cwd=kit_dir)
    executed = nbformat.read(path, as_version=4)
    return ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in executed.cells]


def test_every_shell_cell_quotes_the_python_it_runs():
    """A path with a space ("My Drive", "Lab 1") splits an unquoted {sys.executable} in two."""
    shell_lines = [line.strip() for c in NOTEBOOK.cells if c.cell_type == "code"
                   for line in c.source.splitlines() if line.strip().startswith("!")]
    assert len(shell_lines) == 2, shell_lines
    assert all(line.startswith('!"{sys.executable}" ') for line in shell_lines), shell_lines


@pytest.fixture(scope="module")
def student_jupyter(tmp_path_factory):
    """The notebook's shell cells as a student's Jupyter runs them, in one kernel: the kit in
    "Lab 1/microkws" with its .venv inside (the kernel's python has a space in its path), and Jupyter
    started as .venv/bin/jupyter with the venv not activated (the kernel's PATH holds a shell and no
    python). The kit copy's tests are one quick test. Returns (kit folder, each cell's text output):
    the kit finder, the setup (prints sys.executable), a probe of the PATH, the test cell, the
    submission cell."""
    tmp_path = tmp_path_factory.mktemp("student_jupyter")
    kit = tmp_path / "Lab 1" / "microkws"
    shutil.copytree(ROOT, kit, ignore=shutil.ignore_patterns(
        ".git", ".venv", "datasets", "build", "training", "models", "tests", "instructor", "benchmarks", "docs",
        "__pycache__", ".pytest_cache"))
    (kit / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (kit / "tests").mkdir()
    (kit / "tests" / "test_quick.py").write_text("def test_runs():\n    assert True\n")
    notebook = nbformat.read(ROOT / "Flow.ipynb", as_version=4)
    kit_finder = next(c for c in notebook.cells if c.cell_type == "code")
    shell_cells = _shell_cells(notebook)
    assert len(shell_cells) == 2, "expected the test cell and the submission cell"
    setup = nbformat.v4.new_code_cell("import argparse\nFLAGS = argparse.Namespace(run_submission_checks=True)\n"
                                      "print(sys.executable)")
    probe = nbformat.v4.new_code_cell('!"{sys.executable}" -c "print(\'the kernel python runs\')"\n!python -V')
    # A PATH with a shell and nothing else: IPython runs `!` lines through $SHELL or else `sh` on PATH.
    shell_only = tmp_path / "bin"
    shell_only.mkdir()
    (shell_only / "sh").symlink_to(shutil.which("sh"))
    unset = ("VIRTUAL_ENV", "PYTHONHOME", "SHELL")
    environment = {key: value for key, value in os.environ.items() if key not in unset}
    environment["PATH"] = str(shell_only)
    outputs = _execute([kit_finder, setup, probe, *shell_cells], tmp_path / "cells.ipynb", kit,
                       kit / ".venv" / "bin" / "python", environment)
    return kit, outputs


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the kit copy links .venv/bin/python")
def test_the_submission_cells_run_in_a_kernel_whose_path_has_no_python(student_jupyter):
    """Jupyter started as .venv/bin/jupyter (venv not activated) gives the kernel a PATH without the
    venv's python: the shell cells must use the kernel's own interpreter."""
    _, outputs = student_jupyter
    assert "the kernel python runs" in outputs[2] and "not found" in outputs[2]  # no python on PATH
    assert "1 passed" in outputs[3], outputs[3][-2000:]  # pytest ran
    assert "Names:" in outputs[4], outputs[4][-2000:]  # submit.py ran


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the kit copy links .venv/bin/python")
def test_the_notebook_shell_cells_run_from_a_kit_folder_with_a_space_in_its_path(student_jupyter):
    """The kit in "Lab 1/microkws" with its .venv inside: the kernel's python has a space in its path."""
    kit, outputs = student_jupyter
    assert " " in outputs[1] and outputs[1].strip().startswith(str(kit)), outputs[1]  # the path the cells must quote
    assert "1 passed" in outputs[3], outputs[3][-2000:]
    assert "Names:" in outputs[4], outputs[4][-2000:]


def _as_colab(source, content_dir):
    """The first cell as Colab runs it: google.colab imported, /content replaced by content_dir."""
    fake_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    return fake_colab + source.replace('"/content/microkws"', repr(str(content_dir / "microkws")))


def test_in_colab_with_no_kit_url_and_no_zip_the_first_cell_says_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, "-c", _as_colab(_kit_finder_cell(), tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "CalledProcessError" not in result.stderr
    assert "No kit to start from: upload the student kit's microkws.zip" in last and "set KIT_URL" in last
    assert not (tmp_path / "microkws").exists()


def test_in_colab_a_kit_url_git_cannot_fetch_is_named_with_gits_reason(tmp_path):
    source = _kit_finder_cell().replace('KIT_URL = ""', f"KIT_URL = {str(tmp_path / 'no-such-repo')!r}")
    result = subprocess.run([sys.executable, "-c", _as_colab(source, tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "git could not fetch the kit from KIT_URL" in last and "no-such-repo" in last
