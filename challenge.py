"""The final challenge: its limits (challenge.toml) and a check of an int8 model against them.

Every number is measured from the .tflite file itself, never taken from the student: accuracy on
the test split of the dataset the model was trained on (its provenance, see convert.py), weight
bytes from the graph, best-case RAM from TFLite-Micro's arena, MACs from MAC formulas (the
student's in the kit; the grader passes the reference ones).
"""

import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

import estimate
import models
from tflite_file import load_model

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
                          ("model", ("name", "files")), ("groups", ()), ("rubric", ("challenge",))):
        if section not in settings or any(key not in settings[section] for key in keys):
            raise ValueError(f"{path} needs a [{section}] table with {', '.join(keys) or 'entries'}.")
    return settings


def expected_files(wanted_words, settings=None):
    """The model files a submission must hold for these keywords."""
    settings = settings or load_challenge()
    words = "".join(w.strip() for w in wanted_words.split(","))
    return [pattern.format(words=words) for pattern in settings["model"]["files"]]


def check_model(tflite_path, audio_processor, model_settings, settings=None, mac_formulas=None):
    """Measures an int8 .tflite against the limits.

    Returns {name: {"value", "limit", "passed", "source"}}. The file is read once. Accuracy and RAM
    are the device's: TFLite-Micro's kernels and arena where it is installed, elsewhere LiteRT's
    reference kernels (which may classify a near-tie otherwise) and the kit's planner (the same
    arena head on the zoo's models). mac_formulas:
    the module whose MAC formulas count the operations (the student's by default; the grader
    passes the reference ones).
    """
    from test_tflite import device_runtime, tflite_test

    settings = settings or load_challenge()
    limits = settings["limits"]
    m = load_model(tflite_path)
    runtime = device_runtime()
    accuracy, _ = tflite_test(model_settings, audio_processor, m, mode="test", runtime=runtime)
    arena = estimate.arena_usage(m)
    values = {
        "int8_test_accuracy": (accuracy, limits["min_int8_test_accuracy"], "min", f"{runtime} on the test split"),
        "rom_bytes": (sum(t.bytes for t in estimate.weight_tensors(m)), limits["max_rom_bytes"], "max",
                      "weights and biases in the file"),
        "ram_bytes": (arena["head"], limits["max_ram_bytes"], "max", arena["source"]),
        "macs": (estimate.estimate_model_macs(m, mac_formulas), limits["max_macs"], "max", "MAC formulas"),
    }
    report = {}
    for name, (value, limit, kind, source) in values.items():
        passed = None if value is None else (value >= limit if kind == "min" else value <= limit)
        report[name] = {"value": value, "limit": limit, "passed": passed, "source": source}
    return report


def lab_audio_processor(data_dir, wanted_words, **options):
    """The lab's AudioProcessor of these keywords on data_dir: the lab's model settings, micro
    features, silence and unknown each an equal share, the lab's 10 % / 10 % speaker split.
    `options` go to data.AudioProcessor (e.g. stored_variants)."""
    import data

    wanted = wanted_words.split(",") if isinstance(wanted_words, str) else list(wanted_words)
    share = 100.0 / (len(wanted) + 2)
    return data.AudioProcessor(None, data_dir, share, share, wanted, 10, 10, models.lab_model_settings(wanted),
                               micro=True, **options)


def measure_challenge(tflite_path, wanted_words, data_dir, mac_formulas=None, settings=None):
    """The challenge report of an int8 model of these keywords, on the test split of data_dir.

    The one measurement behind the notebook's check, submit.py and the grader, on the lab's
    AudioProcessor (lab_audio_processor).
    """
    processor = lab_audio_processor(data_dir, wanted_words)
    return check_model(tflite_path, processor, processor.model_settings, settings, mac_formulas)


def dataset_for_model(tflite_path, wanted_words, data_dir=None):
    """The dataset to measure a model on: one of the kind its provenance names, on this machine.

    A synthetic model is measured on a synthetic set of the same recipe (data_dir, the path it
    was trained on, or the kit's default set); a real one on the real dataset (data_dir, the path
    it was trained on, or SPEECH_COMMANDS_DIR). A model of other keywords, a data_dir of the other
    kind, or no such dataset here is refused with what to do, never measured on another dataset.
    A model without provenance (converted by an older kit) is measured on data_dir, if given.
    """
    import convert
    import data
    import synthetic

    wanted = wanted_words.split(",") if isinstance(wanted_words, str) else list(wanted_words)
    provenance = convert.read_provenance(tflite_path)
    if provenance is None:
        if data_dir is None:
            raise ValueError(f"{tflite_path} has no provenance (no {Path(tflite_path).with_suffix('.json').name} "
                             "beside it): convert it again in the notebook, or name the dataset with --data-dir.")
        return Path(data_dir)
    if provenance["wanted_words"] != wanted:
        raise ValueError(f"{tflite_path} was trained on the keywords {','.join(provenance['wanted_words'])}, not "
                         f"{','.join(wanted)}: train and convert the model of your keywords (words.txt).")
    trained_on = provenance["dataset"]
    kind = trained_on["kind"]

    def same_kind(candidate):
        if not candidate or not data.has_dataset(candidate):
            return False
        found = synthetic.describe_dataset(candidate)
        return found["kind"] == kind and (kind != "synthetic" or found["settings"] == trained_on["settings"])

    if data_dir is not None:
        if not same_kind(data_dir):
            raise ValueError(f"{data_dir} is not a {kind.replace('_', ' ')} dataset like the one {tflite_path} "
                             f"was trained on ({trained_on['path']}): measure it on that kind of data.")
        return Path(data_dir)
    candidates = [trained_on["path"]] + ([os.getenv("SPEECH_COMMANDS_DIR")] if kind == "speech_commands" else [])
    for candidate in candidates:
        if same_kind(candidate):
            return Path(candidate)
    if kind == "synthetic" and trained_on["settings"] == synthetic.default_settings():
        return synthetic.default_dataset()  # the kit's default set, remade from its recipe if missing
    where = "--data-dir or SPEECH_COMMANDS_DIR" if kind == "speech_commands" else "--data-dir"
    raise ValueError(f"{tflite_path} was trained on the {kind.replace('_', ' ')} dataset at {trained_on['path']}, "
                     f"which is not on this machine: point {where} at a copy of it. It is not measured on "
                     "other data, since its accuracy there would mean nothing.")


def print_report(report):
    for name, row in report.items():
        verdict = {True: "ok", False: "FAILS", None: "not measured (MAC formulas not implemented yet)"}[row["passed"]]
        value = "-" if row["value"] is None else (f"{row['value']:.3f}" if isinstance(row["value"], float) else row["value"])
        print(f"{name:<20}{str(value):>12}  limit {row['limit']:<10} {verdict:<6} ({row.get('source', '')})")


def main(argv=None):
    """Command line: measure one int8 model against the limits; prints the report or writes it as JSON."""
    import argparse
    import importlib.util
    import json

    parser = argparse.ArgumentParser(description="Measure an int8 keyword model against challenge.toml.")
    parser.add_argument("model", type=Path, help="the int8 .tflite file")
    parser.add_argument("--wanted-words", required=True, help="the model's keywords, e.g. up,down")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the dataset whose test split is used (default: the one the model's provenance names)")
    parser.add_argument("--mac-formulas", type=Path, help="a Python file with the MAC formulas "
                        "(default: student/estimate.py)")
    parser.add_argument("--json", type=Path, help="write the report to this file as JSON")
    args = parser.parse_args(argv)
    formulas = None
    if args.mac_formulas:
        spec = importlib.util.spec_from_file_location("mac_formulas", args.mac_formulas)
        formulas = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(formulas)
    try:
        data_dir = dataset_for_model(args.model.resolve(), args.wanted_words,
                                     args.data_dir.resolve() if args.data_dir else None)
        report = measure_challenge(args.model.resolve(), args.wanted_words, data_dir, formulas)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        parser.exit(2, f"error: {error}\n")
    if args.json:
        from files import write_atomically

        write_atomically(args.json, json.dumps(report, indent=2))
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
