#!/usr/bin/env python3
"""Resolves the kit's requirements for every platform students use, without installing anything.

    python tools/check_platforms.py [--pythons 3.10,3.11,3.12,3.13] [--markdown]

For each target (Linux x86_64 and aarch64, macOS on Apple Silicon, Windows x86_64) and each
Python, pip resolves requirements.txt with the exact versions of constraints.txt, binary wheels
only, as `pip install --dry-run --platform ... --python-version ...` does. pip would evaluate
environment markers (`; sys_platform == "linux"`) for the machine it runs on, so this script
evaluates them for the target first and hands pip only the lines that apply there.
Asks the package index: not part of the default tests. Prints a table (Markdown with --markdown).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

ROOT = Path(__file__).resolve().parent.parent
# pip takes --platform tags literally: list every tag a machine of that kind accepts.
LINUX = [f"manylinux_2_{minor}_{{arch}}" for minor in range(28, 16, -1)] + ["manylinux2014_{arch}"]
MACOS = [f"macosx_{major}_0_{arch}" for major in (14, 13, 12, 11) for arch in ("arm64", "universal2")]
# name: (pip platform tags, marker environment)
TARGETS = {
    "Linux x86_64": ([t.format(arch="x86_64") for t in LINUX],
                     {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                      "os_name": "posix"}),
    "Linux aarch64": ([t.format(arch="aarch64") for t in LINUX],
                      {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64",
                       "os_name": "posix"}),
    "macOS arm64": (MACOS, {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                            "os_name": "posix"}),
    "Windows x86_64": (["win_amd64"], {"sys_platform": "win32", "platform_system": "Windows",
                                       "platform_machine": "AMD64", "os_name": "nt"}),
}
WATCHED = ("tensorflow", "keras", "ai-edge-litert", "tflite-micro", "numpy", "protobuf")


def marker_environment(target_environment, python):
    """The values environment markers see on the target with this Python ("3.11")."""
    return {"implementation_name": "cpython", "platform_python_implementation": "CPython",
            "python_version": python, "python_full_version": f"{python}.0", "platform_release": "",
            "platform_version": "", "implementation_version": f"{python}.0", **target_environment}


def lines_for_target(text, environment):
    """The requirement lines of a file that apply on the target, with their markers removed."""
    kept = []
    for line in text.splitlines():
        content = line.split("#", 1)[0].strip()
        if not content or content.startswith("-"):
            continue
        try:
            requirement = Requirement(content)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            kept.append(str(requirement))
    return kept


def resolve(target, python, work_dir):
    """pip's dry-run resolution for one target and Python: (ok, {package: version} or error)."""
    tags, target_environment = TARGETS[target]
    environment = marker_environment(target_environment, python)
    files = {}
    for name in ("requirements.txt", "constraints.txt"):
        path = Path(work_dir) / f"{target.replace(' ', '_')}-{python}-{name}"
        path.write_text("\n".join(lines_for_target((ROOT / name).read_text(), environment)) + "\n")
        files[name] = path
    report = Path(work_dir) / f"{target.replace(' ', '_')}-{python}-report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
               *[f"--platform={tag}" for tag in tags], "--target", str(Path(work_dir) / "target"),
               "-r", str(files["requirements.txt"]), "-c", str(files["constraints.txt"]), "--report", str(report)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [l.strip() for l in result.stderr.splitlines() if l.startswith("ERROR")]
        return False, (errors[0] if errors else result.stderr.strip()[-300:])
    installed = json.loads(report.read_text())["install"]
    return True, {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"] for item in installed}


def table(results, pythons, markdown):
    """One row per target, one column per Python: what resolved, or why not."""
    rows = []
    for target in TARGETS:
        cells = []
        for python in pythons:
            ok, found = results[target, python]
            if ok:
                micro = "with TFLite-Micro" if "tflite-micro" in found else "no TFLite-Micro"
                cells.append(f"ok: TF {found.get('tensorflow', '?')}, {micro}")
            else:
                cells.append(f"fails: {found[:120]}")
        rows.append([target, *cells])
    header = ["platform", *[f"Python {p}" for p in pythons]]
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
    pythons = args.pythons.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as work_dir:
        for target in TARGETS:
            for python in pythons:
                print(f"resolving for {target}, Python {python} ...", file=sys.stderr, flush=True)
                results[target, python] = resolve(target, python, work_dir)
    print(table(results, pythons, args.markdown))
    details = {f"{t} / {p}": {k: v for k, v in found.items() if k in WATCHED} if ok else found
               for (t, p), (ok, found) in results.items()}
    print(json.dumps(details, indent=1), file=sys.stderr)
    return 0 if all(ok for (t, _), (ok, _) in results.items() if t != "Linux aarch64") else 1


if __name__ == "__main__":
    sys.exit(main())
