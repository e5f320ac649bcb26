#!/usr/bin/env python3
"""Resolves the kit's requirements for every platform students use, without installing anything.

    python tools/check_platforms.py [--pythons 3.10,3.11,3.12,3.13] [--markdown]

For each target (Linux x86_64 and aarch64, macOS on Apple Silicon, Windows x86_64) and each
Python, `uv pip compile` resolves requirements.txt with the exact versions of constraints.txt,
binary wheels only, for that platform (`--python-platform`) and Python (`--python-version`).
uv evaluates every environment marker for the target, those inside the dependencies too, so
a Windows-only dependency is checked for Windows even when this runs on Linux.
Every target counts in the exit code (1 when any resolution fails). Needs uv
(`python -m pip install "uv==0.13.*"`, which `make platforms` does) and the package index.
Prints a table (Markdown with --markdown): what resolved, or why not, and which row is the
machine this runs on (where the kit can also be installed and tested for real).
"""

import argparse
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name: (uv's --python-platform, environment for uv). TensorFlow 2.21's wheels need glibc 2.28
# on Linux and macOS 12 on Apple Silicon: the oldest systems checked are those.
TARGETS = {
    "Linux x86_64 (glibc 2.28 or later)": ("x86_64-manylinux_2_28", {}),
    "Linux aarch64 (glibc 2.28 or later)": ("aarch64-manylinux_2_28", {}),
    "macOS arm64 (12 or later)": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "12.0"}),
    "Windows x86_64": ("x86_64-pc-windows-msvc", {}),
}
# (platform.system(), platform.machine()) of a machine: the target it is.
MACHINES = {("Linux", "x86_64"): "Linux x86_64 (glibc 2.28 or later)",
            ("Linux", "aarch64"): "Linux aarch64 (glibc 2.28 or later)",
            ("Darwin", "arm64"): "macOS arm64 (12 or later)",
            ("Windows", "AMD64"): "Windows x86_64"}
WATCHED = ("tensorflow", "keras", "ai-edge-litert", "tflite-micro", "numpy", "protobuf")


def compile_command(target, python, root=ROOT, python_executable=sys.executable):
    """uv's resolution of the kit's requirements for one target and Python ("3.11")."""
    return [python_executable, "-m", "uv", "pip", "compile", "--no-config", "--quiet", "--no-header",
            "--no-annotate", "--python-platform", TARGETS[target][0], "--python-version", python,
            "--only-binary", ":all:", str(Path(root) / "requirements.txt"), "-c", str(Path(root) / "constraints.txt")]


def parse_resolution(text):
    """{package: version} from uv's output ("name==version" lines)."""
    found = {}
    for line in text.splitlines():
        content = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in content:
            name, version = content.split("==", 1)
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


def failure_reason(stderr):
    """The one clause of uv's error that says why: the package and the tag it lacks."""
    text = " ".join(stderr.replace("╰─▶", " ").replace("cause:", " ").split())  # uv wraps long lines
    found = re.search(r"Because (.+?)(?: and you require|, we can conclude|$)", text)
    if found:
        return found.group(1).replace("`", "")
    errors = [line.strip() for line in stderr.splitlines() if line.strip().startswith("error:")]
    return errors[0] if errors else (text[-300:] or "uv failed without a message")


def resolve(target, python, run=subprocess.run, root=ROOT):
    """One target and Python: (True, {package: version}) or (False, why it fails)."""
    result = run(compile_command(target, python, root), capture_output=True, text=True,
                 env=dict(os.environ, **TARGETS[target][1]))
    if result.returncode != 0:
        return False, failure_reason(result.stderr)
    return True, parse_resolution(result.stdout)


def this_machine(system=platform.system(), machine=platform.machine(), version=sys.version_info):
    """(target, "3.11") of the machine this runs on, or None when it is none of the targets."""
    target = MACHINES.get((system, machine))
    return (target, f"{version[0]}.{version[1]}") if target else None


def exit_code(results):
    """0 when every target and Python resolves, else 1: no target is left out."""
    return 0 if all(ok for ok, _ in results.values()) else 1


def table(results, pythons, markdown, here=None):
    """One row per target, one column per Python: what resolved, or why not; how it was checked."""
    rows = []
    for target in TARGETS:
        cells = []
        for python in pythons:
            ok, found = results[target, python]
            if ok:
                micro = "with TFLite-Micro" if "tflite-micro" in found else "no TFLite-Micro"
                cells.append(f"ok: TF {found.get('tensorflow', '?')}, {micro}")
            else:
                cells.append(f"fails: {found[:150]}")
        checked = f"resolved; this machine (Python {here[1]})" if here and here[0] == target else "resolved only"
        rows.append([target, *cells, checked])
    header = ["platform", *[f"Python {p}" for p in pythons], "how checked"]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in [header, *rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pythons", default="3.10,3.11,3.12,3.13")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("uv") is None:
        print(f'The platform check needs uv in this Python ({sys.executable}): python -m pip install "uv==0.13.*" '
              "(make platforms installs it).", file=sys.stderr)
        return 2
    pythons = args.pythons.split(",")
    results = {}
    for target in TARGETS:
        for python in pythons:
            print(f"resolving for {target}, Python {python} ...", file=sys.stderr, flush=True)
            results[target, python] = resolve(target, python)
    print(table(results, pythons, args.markdown, this_machine()))
    details = {f"{t} / {p}": {k: v for k, v in found.items() if k in WATCHED} if ok else found
               for (t, p), (ok, found) in results.items()}
    print(json.dumps(details, indent=1), file=sys.stderr)
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
