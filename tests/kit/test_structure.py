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


def test_the_lab_audio_settings_are_written_once():
    literal = ", ".join(["16000", "1000", "30.0", "20.0", "40"])
    holders = [name for name, path in _kit_modules().items() if literal in path.read_text(encoding="utf-8")]
    holders += [p.name for p in (ROOT / "tests").rglob("*.py") if literal in p.read_text(encoding="utf-8")]
    assert holders == []
