"""The final challenge: its limits (challenge.toml) and a check of an int8 model against them.

Every number is measured from the .tflite file itself, never taken from the student: accuracy on
the test split of the dataset the model was trained on (its provenance, see convert.py) against
that kind of dataset's threshold, ROM as every constant the file stores, best-case RAM from
TFLite-Micro's arena, MACs from MAC formulas (the student's in the kit; the grader passes the
reference ones). A model is refused when it uses an operator challenge.toml does not allow, or is
not the model student/model.py builds.
"""

import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

import estimate
import lab
import models
import provenance
from tflite_file import load_model

CHALLENGE_FILE = lab.CHALLENGE_FILE
AUDIO_SETTINGS_POLICIES = ("lab", "recorded")  # challenge.toml's [model] audio_settings


DATASET_KINDS = ("synthetic", "speech_commands")  # the provenance's kinds, each with its accuracy threshold


def load_challenge(path=CHALLENGE_FILE):
    """The challenge settings, with a clear error for a missing or malformed file."""
    path = Path(path)
    try:
        settings = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{path} is missing: the instructor's challenge file belongs to the kit.") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from error
    for section, keys in (("limits", ("max_rom_bytes", "max_ram_bytes", "max_macs", "allowed_operators")),
                          *((f"limits.{kind}", ("min_int8_test_accuracy",)) for kind in DATASET_KINDS),
                          ("model", ("name", "files")), ("groups", ()), ("rubric", ("challenge",))):
        table = settings
        for part in section.split("."):
            table = table.get(part) if isinstance(table, dict) else None
        if not isinstance(table, dict) or any(key not in table for key in keys):
            raise ValueError(f"{path} needs a [{section}] table with {', '.join(keys) or 'entries'}.")
    counted = estimate.WEIGHT_OPERATORS + estimate.ELEMENTWISE_OPERATORS + estimate.NO_MAC_OPERATORS
    unknown = [name for name in settings["limits"]["allowed_operators"] if name not in counted]
    if settings["model"].get("audio_settings", "lab") not in AUDIO_SETTINGS_POLICIES:
        raise ValueError(f"{path}: [model] audio_settings must be one of {', '.join(AUDIO_SETTINGS_POLICIES)}.")
    if unknown:
        raise ValueError(f"{path}: allowed_operators names {', '.join(map(str, unknown))}, which the kit has no MAC "
                         f"rule for; allow only operators estimate.py counts ({', '.join(counted)}).")
    return settings


def expected_files(wanted_words, settings=None):
    """The model files a submission must hold for these keywords."""
    settings = settings or load_challenge()
    return [pattern.format(words=lab.keyword_stem(wanted_words)) for pattern in settings["model"]["files"]]


def check_model(tflite_path, audio_processor, model_settings, settings=None, mac_formulas=None, keras_model=None):
    """Measures an int8 .tflite against the limits.

    Returns {name: {"value", "limit", "passed", "source"}}: the int8 test accuracy (against the
    threshold of the kind of dataset audio_processor reads), ROM, RAM, MACs, the operators, and the
    architecture (see architecture_problems; its row is there when keras_model, the model
    student/model.py builds, is given or the file's provenance names its model). The file is read
    once. Accuracy and RAM are the device's: TFLite-Micro's kernels and arena where it is
    installed, elsewhere LiteRT's reference kernels (which may classify a near-tie otherwise) and
    the kit's planner (the same arena head on the zoo's models). mac_formulas: the module whose MAC
    formulas count the operations (the student's by default; the grader passes the reference ones).
    """
    import synthetic
    from runtimes import device_runtime, tflite_test

    settings = settings or load_challenge()
    limits = settings["limits"]
    kind = synthetic.describe_dataset(audio_processor.data_dir)["kind"]
    m = load_model(tflite_path)
    refused = sorted({op.type for op in m.operators} - set(limits["allowed_operators"]))
    runtime = device_runtime()
    accuracy, _ = tflite_test(model_settings, audio_processor, m, mode="test", runtime=runtime)
    arena = estimate.arena_usage(m)
    try:
        macs, macs_source = estimate.estimate_model_macs(m, mac_formulas), "MAC formulas"
    except ValueError as error:
        macs, macs_source = None, f"not counted: {error}"
    values = {
        "int8_test_accuracy": (accuracy, limits[kind]["min_int8_test_accuracy"], "min",
                               f"{runtime} on the test split of the {kind.replace('_', ' ')} dataset"),
        "rom_bytes": (estimate.rom_bytes(m), limits["max_rom_bytes"], "max", "every constant in the file"),
        "ram_bytes": (arena["head"], limits["max_ram_bytes"], "max", arena["source"]),
        "macs": (macs, limits["max_macs"], "max", macs_source),
    }
    report = {}
    for name, (value, limit, kind_of_limit, source) in values.items():
        passed = None if value is None else (value >= limit if kind_of_limit == "min" else value <= limit)
        report[name] = {"value": value, "limit": limit, "passed": passed, "source": source}
    if refused and macs is None:
        report["macs"]["passed"] = False  # not a formula still to write: an operator without a MAC rule
    report["operators"] = {"value": ", ".join(refused) or "allowed", "limit": "allowed_operators",
                           "passed": not refused,
                           "source": "refused: not allowed in challenge.toml" if refused else "challenge.toml"}
    recorded = provenance.read(m.path) if m.path else None
    problems, source = model_name_problems(recorded, settings), "student/model.py"
    if keras_model is None:  # the architecture the training run recorded (run.json), if it did
        source = "the architecture its training run recorded"
        try:
            keras_model = recorded_model(recorded)
        except Exception as error:  # a damaged or forged record: any failure to rebuild it is a refusal
            problems.append(f"its recorded architecture cannot be read ({type(error).__name__}: {str(error)[:200]})")
    if keras_model is not None:
        try:
            problems += architecture_problems(m, keras_model)
        except Exception as error:  # a model the converter refuses is not the file's model either
            problems.append(f"the model cannot be converted to compare ({type(error).__name__}: {str(error)[:200]})")
    if keras_model is not None or problems:
        report["architecture"] = {"value": "; ".join(problems) or f"what {source} builds",
                                  "limit": settings["model"]["name"], "passed": not problems,
                                  "source": "refused: not the challenge's model" if problems else source}
    return report


def recorded_model(provenance):
    """The Keras model of the architecture a model's provenance records (the training run's
    model.to_json()), or None where it records none."""
    config = (provenance or {}).get("architecture")
    return None if config is None else keras_model_from_config(config)


def model_name_problems(provenance, settings):
    """Why the model is not the challenge's by name: the model name its provenance records (the
    training run's FLAGS.model_name, which models.get_model gives the Keras model) is not
    challenge.toml's [model] name."""
    name = settings["model"]["name"]
    problems = []
    if provenance and provenance.get("model_name") != name:
        problems.append(f"it was trained as {provenance.get('model_name')!r}, not {name!r} (FLAGS.model_name)")
    return problems


def operator_signature(m):
    """What an int8 graph is made of: per operator, its type, its output shapes and the shape of its
    weights (the second input of a layer with weights). Biases are left out: the converter drops a
    bias that is all zeros, so they depend on the weights' values, not on the architecture."""
    signature = []
    for op in m.operators:
        weights = tuple(op.inputs[1].shape) if op.type in estimate.WEIGHT_OPERATORS and len(op.inputs) > 1 else None
        signature.append((op.type, tuple(tuple(t.shape) for t in op.outputs), weights))
    return signature


def architecture_problems(m, keras_model):
    """How the int8 model m differs from what keras_model converts to; [] when it is that model.

    keras_model is converted here once (convert.convert_without_data: the weights' values do not
    matter, only operators and shapes are compared)."""
    import tempfile

    import convert

    with tempfile.TemporaryDirectory(prefix="microkws-architecture-") as folder:
        converted = convert.convert_without_data(keras_model, Path(folder) / "expected.tflite")
        expected = operator_signature(load_model(converted))
    found = operator_signature(m)
    for index, (want, got) in enumerate(zip(expected, found)):
        if want != got:
            return [f"operator {index} is {_describe(got)} in the file, but student/model.py gives {_describe(want)}"]
    if len(expected) != len(found):
        return [f"the file has {len(found)} operators, but student/model.py converts to {len(expected)}"]
    return []


def _describe(entry):
    op_type, outputs, weights = entry
    return f"{op_type} -> {', '.join(str(list(shape)) for shape in outputs)}" + (
        f" with weights {list(weights)}" if weights else "")


def measure_challenge(tflite_path, wanted_words, data_dir, mac_formulas=None, settings=None, keras_model=None,
                      cache=True):
    """The challenge report of an int8 model of these keywords, on the test split of data_dir.

    The one measurement behind the notebook's check, submit.py and the grader, on the lab's
    AudioProcessor (lab.audio_processor) with the model's own audio settings where challenge.toml
    lets a model keep them (measurement_settings). keras_model: the model student/model.py builds, to check
    that the file is that model (see check_model). cache=False reads the test clips afresh instead of
    the features cached beside the dataset (the grader's choice: it trusts no file it did not make).
    """
    settings = settings or load_challenge()
    model_settings = measurement_settings(tflite_path, wanted_words, settings)
    processor = lab.audio_processor(data_dir, wanted_words, model_settings, cache=cache)
    return check_model(tflite_path, processor, model_settings, settings, mac_formulas, keras_model)


def measurement_settings(tflite_path, wanted_words, settings=None):
    """The model settings to measure a model with: the ones its run recorded where challenge.toml's
    [model] audio_settings is "recorded", otherwise the lab's (a model trained with others is
    refused, naming them in the notebook's FLAGS); a model trained on another speaker split is
    always refused, since its training may have seen the test speakers."""
    settings = settings or load_challenge()
    recorded = provenance.read(tflite_path) or {}
    problems = provenance.split_problems(recorded)
    if problems:
        raise ValueError(f"{tflite_path} was trained on another speaker split than the lab's: {'; '.join(problems)}. "
                         "Its test speakers may have been trained on: set those FLAGS back in section 2, then train "
                         "and convert again.")
    lab_settings = lab.model_settings(wanted_words)
    recorded_settings = recorded.get("model_settings") or lab_settings
    problems = provenance.setting_problems(recorded_settings, wanted_words)
    if not problems:
        return lab_settings
    if settings["model"].get("audio_settings", "lab") == "recorded":
        return {**lab_settings, **recorded_settings}
    raise ValueError(f"{tflite_path} was trained with other audio settings than the lab's: {'; '.join(problems)}. "
                     "The challenge measures every model on the lab's features: set those FLAGS back in "
                     "section 2, then train and convert again.")


def student_keras_model(wanted_words, settings=None):
    """The model student/model.py builds for these keywords, named as the challenge names it."""
    settings = settings or load_challenge()
    name = settings["model"]["name"]
    return models.get_model(lab.model_settings(wanted_words), name, model_name=name)


def read_architecture(path):
    """A Keras model from a file holding its JSON architecture (model.to_json())."""
    import json

    return keras_model_from_config(json.loads(Path(path).read_text()))


def keras_model_from_config(config):
    """A Keras model from its architecture (model.to_json() as a dict), built from Keras's own
    layers only: an architecture naming classes from elsewhere, or code (Lambda), is refused."""
    import keras

    if isinstance(config, str):
        import json

        config = json.loads(config)
    modules = set()
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("module"), str):
                modules.add(item["module"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if any(not module.startswith("keras") for module in modules):
        raise ValueError(f"the architecture uses classes from outside Keras ({', '.join(sorted(modules))}).")
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if not isinstance(model, keras.Model):
        raise ValueError(f"the architecture describes a {type(model).__name__}, not a Keras model.")
    return model


def dataset_for_model(tflite_path, wanted_words, data_dir=None):
    """The dataset to measure a model on: one of the kind its provenance names, on this machine.

    A synthetic model is measured on a synthetic set of the same recipe (data_dir, the path it
    was trained on, or the kit's default set); a real one on the real dataset (data_dir, the path
    it was trained on, or SPEECH_COMMANDS_DIR). A model of other keywords, a data_dir of the other
    kind, or no such dataset here is refused with what to do, never measured on another dataset.
    A model without provenance (converted by an older kit) is measured on data_dir, if given.
    """
    import data
    import synthetic

    wanted = lab.keywords(wanted_words)
    recorded = provenance.read(tflite_path)
    if recorded is None:
        if data_dir is None:
            raise ValueError(f"{tflite_path} has no provenance (no {Path(tflite_path).with_suffix('.json').name} "
                             "beside it): convert it again in the notebook, or name the dataset with --data-dir.")
        return Path(data_dir)
    if recorded["wanted_words"] != wanted:
        raise ValueError(f"{tflite_path} was trained on the keywords {','.join(recorded['wanted_words'])}, not "
                         f"{','.join(wanted)}: train and convert the model of your keywords (words.txt).")
    trained_on = recorded["dataset"]
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
        value = ("-" if row["value"] is None
                 else (f"{row['value']:.3f}" if isinstance(row["value"], float) else row["value"]))
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
    parser.add_argument("--no-cache", action="store_true",
                        help="compute the test features afresh, ignoring the cache beside the dataset")
    architecture = parser.add_mutually_exclusive_group()
    architecture.add_argument("--student-model", action="store_true",
                              help="check that the file is the model student/model.py builds")
    architecture.add_argument("--architecture", type=Path,
                              help="check that the file is this Keras model "
                                   "(its model.to_json(), e.g. from the grader's worker)")
    args = parser.parse_args(argv)
    formulas = None
    if args.mac_formulas:
        spec = importlib.util.spec_from_file_location("mac_formulas", args.mac_formulas)
        formulas = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(formulas)
    try:
        data_dir = dataset_for_model(args.model.resolve(), args.wanted_words,
                                     args.data_dir.resolve() if args.data_dir else None)
        keras_model = (student_keras_model(args.wanted_words) if args.student_model
                       else read_architecture(args.architecture) if args.architecture else None)
        report = measure_challenge(args.model.resolve(), args.wanted_words, data_dir, formulas, keras_model=keras_model,
                                   cache=not args.no_cache)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        parser.exit(2, f"error: {error}\n")
    if args.json:
        from files import write_atomically

        write_atomically(args.json, json.dumps(report, indent=2))
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
