"""The kit's structure: no import circles, no private TensorFlow modules, no student code at import."""

import ast
import subprocess
import sys

from conftest import ROOT

KIT_FOLDERS = ["", "student", "instructor", "benchmarks"]


def _kit_modules():
    """{module name: path} of the kit's own Python files."""
    modules = {}
    for folder in KIT_FOLDERS:
        for path in sorted((ROOT / folder).glob("*.py")):
            name = path.stem if not folder else f"{folder}.{path.stem}"
            modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path, known):
    """The kit modules a file imports anywhere in it (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in known}
    return found


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return trail[trail.index(imported):] + [imported]
            if imported not in state:
                found = visit(imported, trail + [imported])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_kit_module_imports_another_that_imports_it_back():
    modules = _kit_modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_circle_through_a_chain():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_measuring_modules_run_models_through_runtimes_not_the_testing_helper():
    modules = _kit_modules()
    for name in ("estimate", "challenge"):
        assert "test_tflite" not in _imports(modules[name], modules), f"{name}.py imports test_tflite"


def test_no_kit_module_imports_private_tensorflow_lite_modules():
    for name, path in _kit_modules().items():
        assert "tensorflow.lite.python" not in path.read_text(encoding="utf-8"), name


def test_importing_the_kit_runs_no_student_code():
    code = ("import sys, estimate, challenge, graph, test_tflite, submit, convert, train, test;"
            "assert not any(m.startswith('student') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# How each of the lab's conventions looks when it is written out again instead of taken from lab.py.
RESTATED_CONVENTIONS = {
    "sample rate": r"\b16_?000\b",
    "clip length": r"clip_duration_ms\"?\s*[=:]\s*\d",
    "window": r"window_size_ms\"?\s*[=:]\s*\d",
    "stride": r"window_stride_ms\"?\s*[=:]\s*\d",
    "channel count": r"dct_coefficient_count\"?\s*[=:]\s*\d",
    "silence and unknown shares": (r"(silence|unknown)_percentage\"?\s*[=:]\s*\d"
                                   r"|\b100(\.0)?\s*/\s*\(|\b25(\.0)?,\s*25(\.0)?\b"),
    "speaker split": r"(validation|testing)_percentage\"?\s*[=:]\s*\d|\b10,\s*10\b",
    "extra classes": r"len\([\w.]*(wanted|words)[^+]*\+\s*2\b|\[2:\]|index \+ 2",
}
# Where a convention may be written: lab.py for the lab's, speech_commands.py for the dataset's.
CONVENTION_HOMES = {"lab", "speech_commands"}


def restated_conventions(text):
    """{convention: [line numbers]} of the lines of a Python file that write a lab convention out."""
    import re

    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        for name, pattern in RESTATED_CONVENTIONS.items():
            if re.search(pattern, code):
                found.setdefault(name, []).append(number)
    return found


def test_the_lab_s_settings_shares_and_split_are_written_once_in_lab_py():
    restated = {name: found for name, path in _kit_modules().items()
                if name not in CONVENTION_HOMES and (found := restated_conventions(path.read_text(encoding="utf-8")))}
    assert restated == {}


def test_the_convention_finder_finds_a_restated_window_share_and_split():
    text = ('processor = data.AudioProcessor(None, folder, 25.0, 25.0, words, 10, 10, settings)\n'
            'flags = argparse.Namespace(window_size_ms=30.0, sample_rate=16000)\n'
            'share = 100.0 / (len(words) + 2)\n')
    assert restated_conventions(text) == {"silence and unknown shares": [1, 3], "speaker split": [1], "window": [2],
                                          "sample rate": [2], "extra classes": [3]}


def test_the_notebook_s_parameters_cell_states_the_lab_s_values():
    import argparse
    import json
    import types

    import lab

    cells = json.loads((ROOT / "Flow.ipynb").read_text(encoding="utf-8"))["cells"]
    parameters = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    derived = cells[cells.index(parameters) + 1]
    namespace = {"argparse": argparse, "os": __import__("os"), "lab": lab,
                 "data": types.SimpleNamespace(DATA_URL="https://example.invalid/speech_commands.tar.gz")}
    exec("".join(parameters["source"]) + "".join(derived["source"]), namespace)
    notebook, expected = vars(namespace["FLAGS"]), vars(lab.flags(wanted_words=namespace["FLAGS"].wanted_words))
    assert {key: notebook.get(key) for key in expected} == expected
