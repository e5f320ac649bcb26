"""Flow.ipynb as a document: its code parses, it follows the lab's sections, it has the parameters cell."""

import ast
import os
import re
import shutil
import subprocess
import sys

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
    return next(c.source for c in NOTEBOOK.cells if c.cell_type == "code" and "KIT_URL" in c.source)


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


@pytest.mark.slow
def test_the_submission_cells_run_in_a_kernel_whose_path_has_no_python(tmp_path):
    """Jupyter started as .venv/bin/jupyter (venv not activated) gives the kernel a PATH without the
    venv's python: the shell cells must use the kernel's own interpreter."""
    notebook = nbformat.read(ROOT / "Flow.ipynb", as_version=4)
    shell_cells = [c for c in notebook.cells if c.cell_type == "code" and "!{sys.executable}" in c.source]
    assert len(shell_cells) == 2, "expected the test cell and the submission cell"
    setup = nbformat.v4.new_code_cell(
        "import argparse, sys\nfrom pathlib import Path\nIN_COLAB = False\n"
        "FLAGS = argparse.Namespace(run_submission_checks=True)")
    probe = nbformat.v4.new_code_cell("!{sys.executable} -c \"print('the kernel python runs')\"\n!python -V")
    small = nbformat.v4.new_notebook(cells=[setup, probe, *shell_cells])
    path = tmp_path / "cells.ipynb"
    nbformat.write(small, path)
    script = (
        "import nbformat, sys\nfrom nbclient import NotebookClient\n"
        f"nb = nbformat.read({str(path)!r}, as_version=4)\n"
        f"NotebookClient(nb, timeout=1200, kernel_name='python3', resources={{'metadata': {{'path': {str(ROOT)!r}}}}}).execute()\n"
        f"nbformat.write(nb, {str(path)!r})\n")
    # A PATH with a shell and nothing else: IPython runs `!` lines through $SHELL or else `sh` on PATH.
    shell_only = tmp_path / "bin"
    shell_only.mkdir()
    (shell_only / "sh").symlink_to(shutil.which("sh"))
    unset = ("VIRTUAL_ENV", "PYTHONHOME", "SHELL")
    environment = {key: value for key, value in os.environ.items() if key not in unset}
    environment["PATH"] = str(shell_only)
    subprocess.run([sys.executable, "-c", script], env=environment, check=True, timeout=1500)
    executed = nbformat.read(path, as_version=4)
    outputs = ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in executed.cells]
    assert "the kernel python runs" in outputs[1] and "not found" in outputs[1]  # no python on PATH
    assert "passed" in outputs[2] or "failed" in outputs[2], outputs[2][-2000:]  # pytest ran
    assert "Names:" in outputs[3], outputs[3][-2000:]  # submit.py ran
