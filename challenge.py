"""The final challenge: its limits (challenge.toml) and a check of an int8 model against them.

Every number is measured from the .tflite file itself, never taken from the student: accuracy on
the test split of the dataset at hand, weight bytes from the graph, best-case RAM from
TFLite-Micro's arena, MACs from MAC formulas (the student's in the kit; the grader passes the
reference ones).
"""

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

import estimate
from test_tflite import tflite_test

CHALLENGE_FILE = Path(__file__).resolve().parent / "challenge.toml"


def load_challenge(path=CHALLENGE_FILE):
    """The challenge settings, with a clear error for a missing or malformed file."""
    path = Path(path)
    try:
        settings = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{path} is missing: the instructor's challenge file belongs to the kit.") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from error
    for section, keys in (("limits", ("min_int8_test_accuracy", "max_rom_bytes", "max_ram_bytes", "max_macs")),
                          ("model", ("name", "files")), ("groups", ())):
        if section not in settings or any(key not in settings[section] for key in keys):
            raise ValueError(f"{path} needs a [{section}] table with {', '.join(keys) or 'entries'}.")
    return settings


def expected_files(wanted_words, settings=None):
    """The model files a submission must hold for these keywords."""
    settings = settings or load_challenge()
    words = "".join(w.strip() for w in wanted_words.split(","))
    return [pattern.format(words=words) for pattern in settings["model"]["files"]]


def check_model(tflite_path, audio_processor, model_settings, settings=None, mac_formulas=None):
    """Measures an int8 .tflite against the limits. Returns {name: {"value", "limit", "passed"}}."""
    settings = settings or load_challenge()
    limits = settings["limits"]
    m = estimate.load_model(tflite_path)
    accuracy, _ = tflite_test(model_settings, audio_processor, tflite_path, mode="test")
    macs = [estimate.operator_macs(op, mac_formulas) for op in m.operators]
    values = {
        "int8_test_accuracy": (accuracy, limits["min_int8_test_accuracy"], "min"),
        "rom_bytes": (sum(t.bytes for t in estimate.weight_tensors(m)), limits["max_rom_bytes"], "max"),
        "ram_bytes": (estimate.measure_model_ram(tflite_path)["head"], limits["max_ram_bytes"], "max"),
        "macs": (None if None in macs else int(sum(macs)), limits["max_macs"], "max"),
    }
    report = {}
    for name, (value, limit, kind) in values.items():
        passed = None if value is None else (value >= limit if kind == "min" else value <= limit)
        report[name] = {"value": value, "limit": limit, "passed": passed}
    return report


def print_report(report):
    for name, row in report.items():
        verdict = {True: "ok", False: "FAILS", None: "not measured (MAC formulas not implemented yet)"}[row["passed"]]
        value = "-" if row["value"] is None else (f"{row['value']:.3f}" if isinstance(row["value"], float) else row["value"])
        print(f"{name:<20}{str(value):>12}  limit {row['limit']:<10} {verdict}")
