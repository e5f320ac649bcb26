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
    for runtime in ("float32, LiteRT", "int8, LiteRT", "int8, TFLite-Micro"):
        assert f"{runtime:<20} test accuracy = " in text


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


@pytest.fixture(scope="module")
def flow_without_tflite_micro(tmp_path_factory, small_dataset, environment_without_tflite_micro):
    """The flow where tflite-micro cannot be imported, as on macOS, Windows or Linux on ARM."""
    out = tmp_path_factory.mktemp("flow-no-tflm")
    result = subprocess.run([sys.executable, "run_flow.py", "--steps", "40,20", "--eval-step-interval", "20",
                             "--data-dir", str(small_dataset), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=1200, env=environment_without_tflite_micro)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return out, result.stdout


def test_without_tflite_micro_the_flow_still_makes_the_int8_model_and_the_estimates(flow_without_tflite_micro):
    out, stdout = flow_without_tflite_micro
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "models" / "micro_kws_xs_yesno_quantized.tflite").is_file()
    assert summary["int8_tflm_test_accuracy"] is None
    assert summary["ram_best_case_bytes"] == 4000  # the kit's planner: TFLite-Micro's arena head
    assert "(TFLite-Micro not installed here)" in stdout


def test_without_tflite_micro_the_notebook_says_in_one_line_why_it_skips(flow_without_tflite_micro):
    out, _ = flow_without_tflite_micro
    text, _ = _outputs(out / "Flow.ipynb")
    skipped = [line for line in text.splitlines() if line.startswith("TFLite-Micro accuracy skipped")]
    assert len(skipped) == 1 and "Linux x86_64 only" in skipped[0]
    assert "Arena head from the kit's planner" in text


def test_the_headless_run_prints_each_section_as_it_starts(flow):
    _, stdout = flow
    assert "5. Training" in stdout and "10. Memory and compute estimates" in stdout
