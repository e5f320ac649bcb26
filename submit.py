#!/usr/bin/env python3
"""Checks your lab work and packs it into submission.zip for Moodle.

    python submit.py [--force] [--data-dir DIR] [--output submission.zip] [--skip-tests]

Before packing it checks: names.txt and words.txt are filled in, every file in student/ is
implemented (no stub left) and every question of student/answers.md answered, the model files
for your keywords exist and load, the student tests pass, and your int8 model meets the challenge
limits (challenge.toml; the accuracy is measured on the test split of the dataset the model was
trained on, as its provenance says: a model of other keywords than words.txt, or one whose
dataset is not here, is a problem). Where TFLite-Micro is not installed (macOS, Windows, Linux on
ARM), the tests and the challenge use LiteRT's reference kernels and the kit's memory planner
instead, and say so; the grader measures with TFLite-Micro. Problems are listed and nothing is written; --force packs
anyway and records the problems in the zip's manifest.

The zip holds only student/*.py and student/answers.md, the expected model files and the .json
beside each (provenance, quantization), names.txt, words.txt and manifest.json (kit version,
keywords, hashes, checks).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import lab
from lab import ANSWERS_FILE, STUDENT_FILES, read_names, read_words

ROOT = Path(__file__).resolve().parent
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")  # what the grader takes from student/
MAX_ZIP_BYTES = 20 * 1024 * 1024


def unanswered_questions(root=ROOT):
    """Problems of student/answers.md: missing, or questions still answered _TODO_."""
    path = Path(root) / ANSWERS_FILE
    if not path.is_file():
        return [f"{ANSWERS_FILE} is missing: restore it from the kit and answer its questions."]
    left = len(re.findall(r"^Answer:\s*_TODO_\s*$", path.read_text(encoding="utf-8"), flags=re.MULTILINE))
    return [f"{ANSWERS_FILE}: {left} question(s) still unanswered (_TODO_)."] if left else []


def unimplemented_student_files(modules=None):
    """Problems of the student files: missing, not importable, or still returning the stub's value.

    modules: {"metrics": ..., "callbacks": ..., "estimate": ..., "model": ...} to check instead of
    importing student/ (for tests).
    """
    import importlib

    import numpy as np

    if modules is None:
        missing = [f"{relative} is missing." for relative in STUDENT_FILES if not (ROOT / relative).is_file()]
        if missing:
            return missing
        try:
            modules = {name: importlib.import_module(f"student.{name}")
                       for name in ("metrics", "callbacks", "estimate", "model")}
        except Exception as error:  # a student file that does not even import
            return [f"student files do not import: {type(error).__name__}: {error}"]
    metrics, callbacks, estimates, student_model = (modules[k] for k in ("metrics", "callbacks", "estimate", "model"))
    problems = []
    checks = [
        ("student/metrics.py: get_student_metrics", lambda: metrics.get_student_metrics(np.eye(2, dtype=int), 0)),
        ("student/callbacks.py: get_student_callbacks", lambda: callbacks.get_student_callbacks() or None),
        ("student/estimate.py: estimate_rom", lambda: estimates.estimate_rom([([2, 2], "int8")])),
        ("student/estimate.py: estimate_ram", lambda: estimates.estimate_ram([(4, 4)])),
        ("student/estimate.py: estimate_fully_connected_macs",
         lambda: estimates.estimate_fully_connected_macs(1, 2, 3)),
        ("student/estimate.py: estimate_conv2d_macs", lambda: estimates.estimate_conv2d_macs(3, 3, 1, 2, 4, 4, 1, 1)),
        ("student/estimate.py: estimate_depthwise_conv2d_macs",
         lambda: estimates.estimate_depthwise_conv2d_macs(3, 3, 1, 2, 4, 4, 2, 1, 1)),
    ]
    for name, call in checks:
        try:
            if call() is None:
                problems.append(f"{name} is not implemented yet.")
        except Exception as error:
            problems.append(f"{name} fails: {type(error).__name__}: {error}")
    try:
        import models

        settings = lab.model_settings(["yes", "no"])
        if models.is_starting_point(student_model.create_student_model(settings), settings):
            problems.append("student/model.py still builds the micro_kws_xs starting point.")
    except Exception as error:
        problems.append(f"student/model.py fails: {type(error).__name__}: {error}")
    return problems


def check_model_files(paths):
    """Problems of the expected model files: missing or not loadable."""
    import estimate
    import runtimes

    problems = []
    for path in paths:
        if not (ROOT / path).is_file():
            problems.append(f"{path} is missing: train and convert your model in Flow.ipynb (sections 5 and 7).")
            continue
        try:
            runtimes.TFLiteModel(ROOT / path)
            estimate.load_model(ROOT / path)
        except Exception as error:
            problems.append(f"{path} does not load: {error}")
    return problems


def run_student_tests():
    """Runs tests/student; returns (passed, summary line)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/student"],
                            cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return result.returncode == 0, (lines[-1] if lines else result.stderr.strip()[-300:])


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_submission(output, files, manifest):
    """Writes the zip atomically: a temporary file renamed when complete and within the size cap."""
    from files import atomic_output

    with atomic_output(output) as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for relative in files:
                archive.write(ROOT / relative, relative)
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
        size = handle.tell()
        if size > MAX_ZIP_BYTES:
            raise ValueError(f"The submission would be {size / 2**20:.1f} MiB, "
                             f"over the {MAX_ZIP_BYTES / 2**20:.0f} MiB "
                             "cap: are your model files much larger than the challenge allows?")


def helper_modules(root):
    """(packed, problems): the student's own extra modules in student/ (imported by their files, so
    they travel with them), and the names the grader could not import."""
    extra = sorted(p for p in (Path(root) / "student").glob("*.py")
                   if f"student/{p.name}" not in STUDENT_FILES and p.name != "__init__.py")
    packed = [f"student/{p.name}" for p in extra if MODULE_NAME.match(p.name)]
    problems = [f"student/{p.name}: a module's name must be a Python name (letters, digits, _): rename it."
                for p in extra if not MODULE_NAME.match(p.name)]
    return packed, problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="pack even with problems (recorded in the manifest)")
    parser.add_argument("--data-dir", help="dataset for the accuracy check (default: the one the model was trained "
                        "on, from its provenance; SPEECH_COMMANDS_DIR for the real dataset)")
    parser.add_argument("--output", type=Path, default=ROOT / "submission.zip")
    parser.add_argument("--skip-tests", action="store_true", help="do not run tests/student")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import challenge

    settings = challenge.load_challenge()
    problems, checks = [], {}
    names = words = None
    try:
        names = read_names(ROOT)
    except ValueError as error:
        problems.append(str(error))
    try:
        words = read_words(ROOT, settings["groups"])
    except ValueError as error:
        problems.append(str(error))
    print(f"Names: {', '.join(names) if names else '-'}; keywords: {words or '-'}")

    helpers, helper_problems = helper_modules(ROOT)
    if helpers:
        print(f"Also packed, as your own helper modules: {', '.join(helpers)}")
    student_problems = unimplemented_student_files() + unanswered_questions(ROOT) + helper_problems
    problems += student_problems
    checks["student_files"] = "ok" if not student_problems else student_problems

    import runtimes

    runtime = runtimes.device_runtime()
    print(f"Device figures: {runtimes.DEVICE_FIGURES[runtime]}")
    checks["device_runtime"] = runtime

    model_files = challenge.expected_files(words, settings) if words else []
    file_problems = check_model_files(model_files)
    problems += file_problems
    checks["model_files"] = "ok" if not file_problems else file_problems

    if not args.skip_tests:
        passed, summary = run_student_tests()
        print(f"Student tests: {summary}")
        checks["student_tests"] = summary
        if not passed:
            problems.append(f"Student tests do not all pass ({summary}): run python -m pytest tests/student")

    int8_files = [f for f in model_files if f.endswith("_quantized.tflite")]
    dataset = None
    if int8_files and not file_problems:
        try:
            dataset = challenge.dataset_for_model(ROOT / int8_files[0], words, args.data_dir)
        except ValueError as error:
            problems.append(f"Challenge: {error}")
    report = None
    if dataset:
        try:
            report = challenge.measure_challenge(ROOT / int8_files[0], words, dataset)
        except ValueError as error:  # e.g. trained with other audio settings than the lab's
            problems.append(f"Challenge: {error}")
    if report:
        print(f"Challenge, measured on {dataset}:")
        challenge.print_report(report)
        checks["challenge"] = {"dataset": str(dataset), **report}
        problems += [f"Challenge: {name} = {row['value']} does not meet the limit {row['limit']}."
                     for name, row in report.items() if row["passed"] is False]
    else:
        checks["challenge"] = "not measured (no model file, or not its dataset)"
        print("Challenge: not measured (no model file, or not its dataset).")

    if problems:
        print("\nProblems:")
        for problem in problems:
            print(f"  - {problem}")
        if not args.force:
            print("\nNothing was written. Fix the problems, or run with --force to pack anyway.")
            return 1
    descriptions = [str(Path(f).with_suffix(".json")) for f in model_files]  # provenance and quantization
    files = [f for f in STUDENT_FILES + helpers + [ANSWERS_FILE] + model_files + descriptions
             + ["names.txt", "words.txt"]
             if (ROOT / f).is_file()]
    manifest = {
        "kit_version": (ROOT / "VERSION").read_text().strip(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "names": names, "keywords": words,
        "files": {f: sha256(ROOT / f) for f in files},
        "checks": checks, "problems": problems, "forced": bool(problems),
    }
    try:
        write_submission(args.output, files, manifest)
    except ValueError as error:
        print(f"\n{error}\nNothing was written.")
        return 1
    print(f"\nWrote {args.output} ({len(files)} files{', with problems recorded' if problems else ''}). "
          "Upload it to Moodle.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
