"""Flow.ipynb runs top to bottom headless, with the untouched student stubs."""

import json
import subprocess
import sys

import nbformat
import pytest

import run_flow
from conftest import ROOT


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


@pytest.mark.slow
def test_the_flow_writes_notebook_html_models_and_c_array(flow):
    out, _ = flow
    for name in ("Flow.ipynb", "Flow.html", "summary.json", "models/micro_kws_xs_yesno.tflite",
                 "models/micro_kws_xs_yesno_quantized.tflite", "models/micro_kws_xs_yesno_c/model_data.cc"):
        assert (out / name).is_file(), name


@pytest.mark.slow
def test_every_cell_ran_without_an_error(flow):
    out, _ = flow
    _, notebook = _outputs(out / "Flow.ipynb")
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells)
    assert not [o for c in code_cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.slow
def test_the_accuracies_are_printed(flow):
    out, _ = flow
    text, _ = _outputs(out / "Flow.ipynb")
    for runtime in ("float32, LiteRT", "int8, LiteRT", "int8, TFLite-Micro"):
        assert f"{runtime:<20} test accuracy = " in text


@pytest.mark.slow
def test_untouched_stubs_say_not_implemented_yet(flow):
    out, _ = flow
    text, _ = _outputs(out / "Flow.ipynb")
    assert text.count("not implemented yet") >= 4 and "Traceback" not in text


@pytest.mark.slow
def test_the_estimates_table_shows_tflite_micro_numbers(flow):
    out, _ = flow
    text, _ = _outputs(out / "Flow.ipynb")
    assert "RAM best case [B]" in text and "4000" in text


@pytest.mark.slow
def test_the_summary_is_printed(flow):
    out, stdout = flow
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ram_best_case_bytes"] == 4000 and summary["rom_weight_bytes"] == 8112
    assert "int8 .tflite" in stdout and "Flow.html" in stdout


@pytest.mark.slow
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
                            cwd=ROOT, capture_output=True, text=True, timeout=1200,
                            env=environment_without_tflite_micro)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return out, result.stdout


@pytest.mark.slow
def test_without_tflite_micro_the_flow_still_makes_the_int8_model_and_the_estimates(flow_without_tflite_micro):
    out, stdout = flow_without_tflite_micro
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "models" / "micro_kws_xs_yesno_quantized.tflite").is_file()
    assert summary["int8_tflm_test_accuracy"] is None
    assert summary["ram_best_case_bytes"] == 4000  # the kit's planner: TFLite-Micro's arena head
    assert "(TFLite-Micro not installed here)" in stdout


@pytest.mark.slow
def test_without_tflite_micro_the_notebook_says_in_one_line_why_it_skips(flow_without_tflite_micro):
    out, _ = flow_without_tflite_micro
    text, _ = _outputs(out / "Flow.ipynb")
    skipped = [line for line in text.splitlines() if line.startswith("TFLite-Micro accuracy skipped")]
    assert len(skipped) == 1 and "Linux x86_64 only" in skipped[0]
    assert "Arena head from the kit's planner" in text


@pytest.mark.slow
def test_the_headless_run_prints_each_section_as_it_starts(flow):
    _, stdout = flow
    assert "5. Training" in stdout and "10. Memory and compute estimates" in stdout


@pytest.mark.slow
def test_the_headless_run_streams_each_cells_output_to_the_terminal(flow):
    _, stdout = flow
    assert "New run run-" in stdout and "FLAGS.resume_run = 'run-" in stdout  # printed when the run starts
    assert "Epoch 1/" in stdout and "val_accuracy" in stdout  # Keras's training log, as it trains
    assert "Final test accuracy" in stdout and "[picture: <Figure size" in stdout
    assert stdout.index("New run run-") < stdout.index("Epoch 1/") < stdout.index("Final test accuracy")


@pytest.mark.slow
def test_the_converted_models_stay_in_their_run_and_models_holds_a_copy_for_submission(flow):
    out, _ = flow
    summary = json.loads((out / "summary.json").read_text())
    run_models = out / "training" / "micro_kws_xs_yes_no" / summary["run"] / "models"
    for name in ("micro_kws_xs_yesno.tflite", "micro_kws_xs_yesno_quantized.tflite",
                 "micro_kws_xs_yesno_quantized.json", "micro_kws_xs_yesno_c/model_data.cc", "stream.wav"):
        assert (run_models / name).is_file(), name
    for name in ("micro_kws_xs_yesno_quantized.tflite", "micro_kws_xs_yesno_quantized.json"):
        assert (out / "models" / name).read_bytes() == (run_models / name).read_bytes()
    assert not (out / "models" / "stream.wav").exists()


def _message(kind, **content):
    return {"msg_type": kind, "content": content}


def test_printed_text_and_progress_bars_reach_the_terminal_unchanged():
    assert run_flow.terminal_text(_message("stream", name="stderr", text="\r 40%|####")) == ("stderr", "\r 40%|####")
    assert run_flow.terminal_text(_message("stream", name="stdout", text="Epoch 1/5\n")) == ("stdout", "Epoch 1/5\n")


def test_a_result_shows_its_text_and_a_picture_one_line():
    result = _message("execute_result", data={"text/plain": "{'label_count': 4}"}, execution_count=3)
    assert run_flow.terminal_text(result) == ("stdout", "{'label_count': 4}\n")
    picture = _message("display_data",
                       data={"image/png": "iVBOR...", "text/plain": "<Figure size 640x480 with 1 Axes>"})
    assert run_flow.terminal_text(picture) == ("stdout", "[picture: <Figure size 640x480 with 1 Axes>]\n")


def test_kernel_bookkeeping_and_widgets_are_not_shown():
    assert run_flow.terminal_text(_message("status", execution_state="busy")) is None
    widget = _message("display_data", data={"application/vnd.jupyter.widget-view+json": {}, "text/plain": "HBox()"})
    assert run_flow.terminal_text(widget) is None


def test_the_headless_run_draws_progress_bars_as_text_after_the_parameters():
    notebook = nbformat.read(ROOT / "Flow.ipynb", as_version=4)
    notebook = run_flow.inject_headless_setup(run_flow.inject_parameters(notebook, {"model_name": "dnn"}))
    tags = [c.metadata.get("tags", []) for c in notebook.cells]
    index = tags.index(["injected-parameters"])
    assert tags[index + 1] == ["headless-setup"] and "tqdm.std.tqdm" in notebook.cells[index + 1].source
    dataset_cell = next(i for i, c in enumerate(notebook.cells) if "audio_processor = data.AudioProcessor(" in c.source)
    assert index + 1 < dataset_cell
