#!/usr/bin/env python3
"""The main job: the whole lab (Flow.ipynb) run headless on the synthetic dataset.

    python run_flow.py [--out build/flow] [--steps 2000,500] [--eval-step-interval 250]
                       [--model micro_kws_xs] [--wanted-words yes,no] [--data-dir DIR]

Makes (or reuses) the synthetic dataset, runs every cell of Flow.ipynb with a short training
schedule, and writes into --out: the executed notebook, an HTML copy, the checkpoints, the float
and int8 .tflite models and the C array, and summary.json. Prints a short summary.

Settings reach the notebook as a cell inserted after its `parameters` cell, as papermill does.
With --data-dir the notebook uses that Speech-Commands-layout folder instead (no download).
While it runs, the terminal shows each section's title and every cell's output as it comes:
printed lines, the dataset's progress bar (as text: a notebook widget would never reach a
terminal) and Keras's training log.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from files import write_atomically

ROOT = Path(__file__).resolve().parent


def inject_parameters(notebook, overrides):
    """Inserts a cell setting FLAGS.<key> = value right after the cell tagged `parameters`."""
    index = next((i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])), None)
    if index is None:
        raise ValueError("Flow.ipynb has no cell tagged 'parameters'.")
    source = "# Parameters injected by run_flow.py\n" + "".join(
        f"FLAGS.{key} = {value!r}\n" for key, value in overrides.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(index + 1, cell)
    return notebook


# Progress bars as text in the headless run: tqdm.auto would draw a widget, which no terminal shows.
HEADLESS_SETUP = ("import tqdm.auto, tqdm.std\n"
                  "tqdm.auto.tqdm = tqdm.std.tqdm  # progress bars as text, for the terminal\n")


def inject_headless_setup(notebook):
    """Inserts HEADLESS_SETUP right after the injected parameters (before any cell shows progress)."""
    index = next(i for i, cell in enumerate(notebook.cells) if "injected-parameters" in cell.metadata.get("tags", []))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(HEADLESS_SETUP, metadata={"tags": ["headless-setup"]}))
    return notebook


def terminal_text(message):
    """What a kernel message shows in a terminal: ("stdout" or "stderr", text), or None.

    Printed text and progress bars pass as they are (carriage returns included); a result or a
    display shows its plain text; a picture shows as one line.
    """
    kind, content = message["msg_type"], message["content"]
    if kind == "stream":
        return content["name"], content["text"]
    if kind in ("execute_result", "display_data"):
        data = content.get("data", {})
        if "application/vnd.jupyter.widget-view+json" in data or "text/plain" not in data:
            return None
        if any(key.startswith("image/") for key in data):
            return "stdout", f"[picture: {data['text/plain']}]\n"
        return "stdout", data["text/plain"] + "\n"
    return None


class EchoingClient(NotebookClient):
    """A NotebookClient that also writes every cell's output to this process's terminal as it arrives."""

    def process_message(self, msg, cell, cell_index):
        shown = terminal_text(msg)
        if shown:
            stream = sys.stderr if shown[0] == "stderr" else sys.stdout
            stream.write(shown[1])
            stream.flush()
        return super().process_message(msg, cell, cell_index)


def section_of_each_cell(notebook):
    """{cell index: the title of the notebook section ("## ..." heading) the cell belongs to}."""
    sections, title = {}, None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            heading = next((line for line in cell.source.splitlines() if line.startswith("## ")), None)
            title = heading[3:].strip() if heading else title
        sections[index] = title
    return sections


def _section_printer(notebook):
    """nbclient hook: prints a section's title, with the time, when its first cell starts."""
    sections, shown = section_of_each_cell(notebook), set()
    started = time.time()

    def on_cell_start(cell, cell_index):
        title = sections.get(cell_index)
        if title and title not in shown:
            shown.add(title)
            print(f"[{time.time() - started:6.0f} s] {title}", flush=True)

    return on_cell_start


def run(out_dir, overrides, timeout=3600):
    """Executes Flow.ipynb with the overrides; writes the executed notebook and its HTML copy."""
    from nbconvert import HTMLExporter

    notebook = inject_headless_setup(inject_parameters(nbformat.read(ROOT / "Flow.ipynb", as_version=4), overrides))
    # coalesce_streams: the saved notebook keeps each bar's last state, not every redraw.
    client = EchoingClient(notebook, timeout=timeout, kernel_name="python3", coalesce_streams=True,
                           resources={"metadata": {"path": str(ROOT)}},
                           on_cell_start=_section_printer(notebook))
    try:
        client.execute()
    except CellExecutionError:
        write_atomically(out_dir / "Flow.failed.ipynb", nbformat.writes(notebook))
        raise
    write_atomically(out_dir / "Flow.ipynb", nbformat.writes(notebook))
    html, _ = HTMLExporter().from_notebook_node(notebook)
    write_atomically(out_dir / "Flow.html", html)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "flow")
    parser.add_argument("--steps", default="2000,500", help="how_many_training_steps")
    parser.add_argument("--eval-step-interval", type=int, default=250)
    parser.add_argument("--model", default="micro_kws_xs")
    parser.add_argument("--wanted-words", default="yes,no")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="use this dataset folder instead of the synthetic set")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    for previous in ("training", "models"):  # each run trains anew: no checkpoint of an earlier run is kept
        shutil.rmtree(out / previous, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    overrides = {
        "model_name": args.model,
        "wanted_words": args.wanted_words,
        "how_many_training_steps": args.steps,
        "eval_step_interval": args.eval_step_interval,
        "train_dir": str(out / "training"),
        "models_dir": str(out / "models"),
        "summary_path": str(out / "summary.json"),
        "run_submission_checks": False,
    }
    if args.data_dir:
        overrides.update(dataset="speech_commands", data_dir=str(args.data_dir.resolve()), data_url=None)
    else:
        overrides.update(dataset="synthetic")

    started = time.time()
    print(f"Running Flow.ipynb headless (training steps {args.steps}); output in {out}")
    try:
        run(out, overrides)
    except CellExecutionError as error:
        print(f"\nThe notebook failed; the executed part is in {out / 'Flow.failed.ipynb'}.\n{error}", file=sys.stderr)
        return 1
    summary = json.loads((out / "summary.json").read_text())
    print(f"\nDone in {time.time() - started:.0f} s: {summary['model']} on {summary['wanted_words']} "
          f"({summary['dataset']} data)")
    tflm = summary["int8_tflm_test_accuracy"]
    print(f"  test accuracy: Keras {summary['keras_test_accuracy']:.3f}, float .tflite "
          f"{summary['float_tflite_test_accuracy']:.3f}, int8 .tflite {summary['int8_tflite_test_accuracy']:.3f} "
          f"(TFLite-Micro {'not installed here' if tflm is None else f'{tflm:.3f}'})")
    arena = summary["ram_arena_total_bytes"]
    print(f"  int8 model: {summary['tflite_bytes']} B file, {summary['rom_weight_bytes']} B weights, "
          f"{summary['ram_best_case_bytes']} B activations (arena {'-' if arena is None else arena} B)")
    estimates = summary["student_estimates"]
    print(f"  your estimates: ROM {estimates['rom'] or 'not implemented yet'}, "
          f"RAM {estimates['ram'] or 'not implemented yet'}, "
          f"MACs {estimates['macs'] or 'not implemented yet'}")
    print(f"  notebook: {out / 'Flow.ipynb'} and {out / 'Flow.html'}")
    print(f"  models of run {summary['run']} (kept in its folder, copied into models/ for submit.py):",
          *summary["files"], sep="\n    ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
