"""Flow.ipynb runs top to bottom headless, with the untouched student stubs."""

import json
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow(tmp_path_factory, small_dataset):
    out = tmp_path_factory.mktemp("flow")
    result = subprocess.run([sys.executable, "run_flow.py", "--steps", "60,20", "--eval-step-interval", "20",
                             "--data-dir", str(small_dataset), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return out, result.stdout


def _outputs(notebook_path):
    notebook = nbformat.read(notebook_path, as_version=4)
    text = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text.append(output.get("text", "") or json.dumps(output.get("data", {}).get("text/plain", "")))
    return "\n".join(text), notebook


def test_the_flow_writes_notebook_html_models_and_c_array(flow):
    out, _ = flow
    for name in ("Flow.ipynb", "Flow.html", "summary.json", "models/micro_kws_xs_yesno.tflite",
                 "models/micro_kws_xs_yesno_quantized.tflite", "models/micro_kws_xs_yesno_c/model_data.cc"):
        assert (out / name).is_file(), name


def test_every_cell_ran_without_an_error(flow):
    out, _ = flow
    _, notebook = _outputs(out / "Flow.ipynb")
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells)
    assert not [o for c in code_cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_the_accuracies_are_printed(flow):
    out, _ = flow
    text, _ = _outputs(out / "Flow.ipynb")
    assert "test accuracy =" in text and "on litert: test accuracy" in text and "on tflm: test accuracy" in text


def test_untouched_stubs_say_not_implemented_yet(flow):
    out, _ = flow
    text, _ = _outputs(out / "Flow.ipynb")
    assert text.count("not implemented yet") >= 4 and "Traceback" not in text


def test_the_estimates_table_shows_tflite_micro_numbers(flow):
    out, _ = flow
    text, _ = _outputs(out / "Flow.ipynb")
    assert "RAM best case [B]" in text and "4000" in text


def test_the_summary_is_printed(flow):
    out, stdout = flow
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ram_best_case_bytes"] == 4000 and summary["rom_weight_bytes"] == 8112
    assert "int8 .tflite" in stdout and "Flow.html" in stdout


def test_the_notebook_pictures_are_drawn(flow):
    out, _ = flow
    _, notebook = _outputs(out / "Flow.ipynb")
    pictures = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pictures) >= 5  # features, training curves, confusion matrix, graph, memory plan
