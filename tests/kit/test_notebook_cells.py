"""Flow.ipynb as a document: its code parses, it follows the lab's sections, it has the parameters cell."""

import ast
import re

import nbformat

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
