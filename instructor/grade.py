#!/usr/bin/env python3
"""Grades many submissions: each in a clean copy of the kit, in its own process, with a time limit.

    python instructor/grade.py [submission.zip ...] [--moodle DOWNLOAD.zip ...] --out results/
                               [--jobs 2] [--timeout 900] [--data-dir DIR ...] [--groups groups.csv]
                               [--regrade | --retry-errors]

Each zip given alone is ONE submission, whatever it holds. Moodle's "download all submissions" zip
is given with --moodle: a folder per student, `<Full Name>_<id>_assignsubmission_file_/`, holding
their submission.zip; each folder is one row, with the caps of one submission (the bundle's own caps
are a class's). Every size is checked from the zip's headers before anything is read.
For every submission: unpack safely (no absolute paths, no `..`, no links, size and count caps),
take only the allowed files (student/*.py, student/answers.md, the model files and the .json beside
them, names.txt, words.txt) beside a clean copy of the kit without instructor/ (tests, conftest and
helpers stay the kit's), add the grading-only tests, run tests/student there with the student's
functions in a jailed worker that hands back values only (instructor/jail.py: a skipped, failed or
hanging call scores 0), re-measure the challenge in the jail with the reference MAC formulas and
TFLite-Micro on the dataset of the model's provenance (synthetic or real, per submission), and write:
    results/results.csv                       one row per submission, rewritten as each finishes
    results/<submission>-<hash>/results.json  Gradescope-style test results
    results/<submission>-<hash>/answers.txt   the student's answers to the lab's questions, as text
Each row has a status: `graded` (its score stands, with what could not be graded in `error`),
`refused-submission` (the zip is unreadable or hostile: scores nothing) or `grader-error` (the grader
failed: no score; the next run retries it, and the exit code is 1).
A rerun with the same --out keeps the finished rows (--regrade redoes all, --retry-errors those with
an error).
"""

import argparse
import concurrent.futures
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import typing
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from files import write_atomically  # noqa: E402
from instructor import jail, kit  # noqa: E402

REFERENCE_FORMULAS = kit.ROOT / "instructor" / "solution" / "estimate.py"
MAX_FILES = 200
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
SUBMISSION_CAPS = {"max_files": MAX_FILES, "max_bytes": MAX_UNPACKED_BYTES, "max_member_bytes": MAX_UNPACKED_BYTES}
# A Moodle download: a class of up to 500 (a student's zip over one submission's caps is that row's).
BUNDLE_CAPS = {"max_files": 500 * MAX_FILES, "max_bytes": 500 * MAX_UNPACKED_BYTES,
               "max_member_bytes": 500 * MAX_UNPACKED_BYTES}
MAX_LABEL_CHARS = 120  # a row's label and student name; folder names are shorter still
MAX_CELL_CHARS = 2000  # any cell of results.csv
MAX_PROVENANCE_BYTES = 2**20  # the .json beside a model: a few kB when the kit writes it
TEXT_CAP_BYTES = 2**20  # names.txt, words.txt, manifest.json, answers.md: read by the grader itself
# Reading a zip fails in many ways: not a zip, truncated, encrypted (RuntimeError), an unknown
# compression method (NotImplementedError), corrupt deflate data (zlib.error), bad CRC (BadZipFile).
UNREADABLE_ZIP = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error, ValueError)
MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(file|onlinetext)_?$")
# The files taken from a zip, by ALLOWED.fullmatch (a `$` would also match before a final newline).
ALLOWED = re.compile(r"(student/[A-Za-z_][A-Za-z0-9_]*\.py|student/answers\.md|models/[A-Za-z0-9_]+\.(tflite|json)"
                     r"|names\.txt|words\.txt|manifest\.json)")
GRADED, REFUSED, GRADER_ERROR = "graded", "refused-submission", "grader-error"
MANUAL_GROUPS = {"answers"}  # rubric parts a person grades (student/answers.md): never scored here
CSV_FIELDS = ["submission", "status", "student", "student_id", "group", "names", "keywords", "group_problem",
              "score", "max_score", "answers_score", "tests_passed", "tests_total", "grading_tests_passed",
              "grading_tests_total", "int8_test_accuracy", "rom_bytes", "ram_bytes", "macs", "challenge_passed",
              "challenge_failed", "dataset", "forced", "submit_problems", "error", "results_folder"]


class SubmissionError(Exception):
    """A submission that cannot be graded (fully), with the reason for its row: its score stands."""


class RefusedSubmission(SubmissionError):
    """A submission zip that is refused whole (unreadable, hostile, over a cap, no student code)."""


class GraderError(Exception):
    """The grader's own failure (a time limit, a dataset not here, a bug): no score, retried next run."""


class BundleMember(typing.NamedTuple):
    """A student's submission zip inside a Moodle download, read only when it is graded."""
    bundle: Path
    member: str


class Submission(typing.NamedTuple):
    """One row to grade. source: the zip file (Path), its member in a Moodle download
    (BundleMember), its bytes, or the exception that says why it cannot be graded."""
    label: str
    student: str
    student_id: str
    source: object


def safe_members(archive, max_files=MAX_FILES, max_bytes=MAX_UNPACKED_BYTES, max_member_bytes=MAX_UNPACKED_BYTES):
    """The zip's file members after the safety checks; raises RefusedSubmission on anything hostile.

    Only the zip's directory is read (never a member): sizes are the headers', which also bound
    what zipfile will ever read of a member. The caps are one submission's unless given.
    """
    # (not ZipInfo.is_dir(): it fails on the empty name zipfile leaves of a name starting with a NUL byte)
    members = [info for info in archive.infolist() if not info.filename.endswith("/")]
    if len(members) > max_files:
        raise RefusedSubmission(f"{len(members)} files, over the cap of {max_files}")
    for info in members:
        if info.file_size > max_member_bytes:
            raise RefusedSubmission(f"member {_shown(info.filename)} unpacks to {info.file_size} bytes, over the cap "
                                    f"of {max_member_bytes // 2**20} MiB per file")
    if sum(info.file_size for info in members) > max_bytes:
        raise RefusedSubmission(f"unpacks to more than {max_bytes // 2**20} MiB")
    for info in members:
        name = info.filename  # zipfile cuts a name at a NUL byte: "" is what is left of "\0..."
        if (not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name)
                or ".." in Path(name).parts or "\\" in name):
            raise RefusedSubmission(f"refused member path {_shown(name)}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise RefusedSubmission(f"refused link {_shown(name)}")
    return members


def _shown(text, limit=200):
    """Student text for a message: quoted, control characters escaped, capped."""
    text = repr(str(text))
    return text if len(text) <= limit else text[:limit] + "...'"


def find_submissions(zip_path):
    """One submission: the zip given alone, whatever it holds (a zip inside it is simply not a file
    the kit takes). Its size and headers are checked, and its bytes read, when it is graded (read_source)."""
    return [Submission(_label(Path(zip_path).stem), "", "", Path(zip_path))]


def find_bundle(bundle_path):
    """[Submission] of a Moodle "download all submissions" zip (given with --moodle).

    Each `<Full Name>_<id>_assignsubmission_file_` folder is one row: its submission zip, or what was
    found instead (loose files, online text). Members outside such folders get one row of their own.
    Class-wide caps for the bundle, one submission's per member, all from the headers.
    """
    label = _label(Path(bundle_path).stem)
    with zipfile.ZipFile(bundle_path) as archive:
        try:
            members = safe_members(archive, **BUNDLE_CAPS)
        except RefusedSubmission as error:
            raise GraderError(f"{bundle_path} is refused as a Moodle download: {error}") from error
    folders = {}
    for info in members:
        parts = Path(info.filename).parts
        folders.setdefault(parts[0] if len(parts) > 1 and MOODLE_FOLDER.match(parts[0]) else None, []).append(info)
    outside = folders.pop(None, [])
    if not folders:
        raise GraderError(f"{bundle_path} is not a Moodle download (no <Full Name>_<id>_assignsubmission_file_ "
                          "folder): give a single submission without --moodle")
    found = []
    for folder, inside in sorted(folders.items()):
        match = MOODLE_FOLDER.match(folder)
        zips = [m for m in inside if m.filename.lower().endswith(".zip")]
        if len(zips) == 1:
            source = BundleMember(Path(bundle_path), zips[0].filename)
        else:
            names = ", ".join(_shown(Path(m.filename).name, 80) for m in inside[:10]) or "nothing"
            source = RefusedSubmission(f"expected one submission.zip in the Moodle folder, found: {names}")
        found.append(Submission(_label(folder), match["name"][:MAX_LABEL_CHARS], match["id"][:40], source))
    if outside:
        names = ", ".join(_shown(m.filename, 80) for m in outside[:10])
        found.append(Submission(label, "", "", RefusedSubmission(
            f"{len(outside)} member(s) of the Moodle download lie in no student's folder, not graded: {names}")))
    return found


def _label(text):
    """A row's label: the zip's or folder's name, cut to MAX_LABEL_CHARS."""
    return str(text)[:MAX_LABEL_CHARS] or "submission"


def read_source(source):
    """The bytes of a submission zip, after its caps are checked from the headers alone."""
    if isinstance(source, Exception):
        raise source
    if isinstance(source, bytes):
        return source
    if isinstance(source, BundleMember):
        try:
            with zipfile.ZipFile(source.bundle) as archive:
                info = archive.getinfo(source.member)
                if info.file_size > MAX_UNPACKED_BYTES:
                    raise RefusedSubmission(f"the submission zip is {info.file_size} bytes, over the cap of "
                                            f"{MAX_UNPACKED_BYTES // 2**20} MiB")
                return archive.read(info)
        except (UNREADABLE_ZIP, KeyError) as error:  # the download itself is damaged: the TA's to fetch again
            raise GraderError(f"cannot read {_shown(source.member)} from {source.bundle}: "
                              f"{type(error).__name__}: {error}") from error
    size = Path(source).stat().st_size
    if size > MAX_UNPACKED_BYTES + 2**20:  # a zip is barely larger than what it holds
        raise RefusedSubmission(f"the zip is {size} bytes, over the cap of {MAX_UNPACKED_BYTES // 2**20} MiB")
    try:
        with zipfile.ZipFile(source) as archive:
            safe_members(archive)
    except UNREADABLE_ZIP as error:
        raise RefusedSubmission(f"not a readable zip: {type(error).__name__}: {error}") from error
    return Path(source).read_bytes()


def unique_labels(submissions):
    """The submissions with labels made unique (a second 'submission' becomes 'submission-2')."""
    taken, unique = set(), []
    for submission in submissions:
        label, number = submission[0], 1
        while label in taken:
            number += 1
            label = f"{submission[0]}-{number}"
        taken.add(label)
        unique.append(Submission(label, *submission[1:]))
    return unique


def unpack_submission(content, kit_dir, student_code_dir):
    """Copies only the allowed files of a submission zip: its Python files into student_code_dir
    (only the jailed worker imports them), the rest over the kit copy. Returns their names."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        members = safe_members(archive)
        copied = []
        for info in members:
            if not ALLOWED.fullmatch(info.filename):
                continue  # anything else (tests, conftest, data) is ignored
            if not info.filename.endswith((".py", ".tflite", ".json")) or info.filename == "manifest.json":
                if info.file_size > TEXT_CAP_BYTES:  # (a model's .json: MAX_PROVENANCE_BYTES, when read)
                    raise RefusedSubmission(f"{info.filename} is {info.file_size} bytes, over the cap of "
                                            f"{TEXT_CAP_BYTES // 2**20} MiB for a text file")
            code = info.filename.startswith("student/") and info.filename.endswith(".py")
            target = Path(student_code_dir if code else kit_dir) / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            copied.append(info.filename)
        zips = any(info.filename.lower().endswith(".zip") for info in members)
    if not any(name.startswith("student/") and name.endswith(".py") for name in copied):
        raise RefusedSubmission("no student/*.py file in the submission" + (
            " (it holds zips: a Moodle download is graded with --moodle, by the TA)" if zips else ""))
    return copied


OUTPUT_CAP_BYTES = 64 * 2**20


def run_confined(command, cwd, timeout, env=None, memory_bytes=None):
    """Runs one grading step in its own session with limits; returns (exit code, its output's end).

    Limits: CPU time (the time limit on every core), output and file size (OUTPUT_CAP_BYTES) and,
    if given, memory.
    Raises GraderError when the time limit passes (a hanging submission or a slow machine: the
    next run retries it, with a larger --timeout if need be). Whatever the step started is killed with
    its process group when it ends, so nothing it left running can touch later results.
    """
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=os.name == "posix",
                                   preexec_fn=jail.limits(timeout * (os.cpu_count() or 1), OUTPUT_CAP_BYTES,
                                                          memory_bytes)
                                   if os.name == "posix" else None)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise GraderError(f"did not finish within {timeout} s (rerun, with a larger --timeout if the "
                              "machine is slow)") from error
        finally:
            jail.kill_group(process)
            process.wait()
        output.seek(max(0, output.seek(0, os.SEEK_END) - 4000))
        return code, output.read().decode("utf-8", "replace")


def run_tests(own_dir, kit_dir, student_code_dir, timeout, hide=(), words=None):
    """Runs tests/student in the kit copy; returns the per-test results.

    The pytest that decides and reports runs no student code: with instructor/grading_plugin.py,
    every call of a student function runs in the submission's jailed worker. With the submission's
    keywords (words), it also writes the architecture student/model.py builds for them
    (architecture_file), which the measurement compares with the submitted .tflite.
    """
    report = Path(own_dir) / "student-tests.xml"
    environment = {**os.environ, "PYTHONPATH": str(kit.ROOT), "MICROKWS_SUBMISSION_DIR": str(own_dir),
                   "MICROKWS_STUDENT_CODE": str(student_code_dir), "MICROKWS_STEP_SECONDS": str(timeout),
                   "MICROKWS_HIDE": os.pathsep.join(map(str, hide))}
    if words:
        architecture_file(own_dir).parent.mkdir(exist_ok=True)
        environment.update(MICROKWS_WORDS=words, MICROKWS_ARCHITECTURE=str(architecture_file(own_dir)))
    try:
        run_confined([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "instructor.grading_plugin",
                      "--continue-on-collection-errors", "tests/student", f"--junitxml={report}"],
                     kit_dir, timeout, env=environment)
    except GraderError as error:
        raise GraderError(f"tests {error}") from error
    if not report.is_file():
        raise GraderError("the tests did not run (pytest wrote no report)")
    return read_test_results(report)


def read_test_results(report):
    """Per-test results from pytest's JUnit XML report."""
    tests = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        # Only a test that ran and passed scores: failed, errored and skipped ones score 0.
        outcome = next(((kind, case.find(kind)) for kind in ("failure", "error", "skipped")
                        if case.find(kind) is not None), (None, None))
        status = {None: "passed", "failure": "failed", "error": "failed", "skipped": "skipped"}[outcome[0]]
        # a test file that could not be collected has no class name: its name is the module
        module = case.get("classname") or case.get("name", "")
        tests.append({
            "name": case.get("name"),
            "group": test_group(module),
            "grading": is_grading_test(module),
            "status": status,
            "score": 1 if status == "passed" else 0, "max_score": 1,
            "output": "" if outcome[1] is None else (outcome[1].get("message") or "")[:2000],
        })
    return tests


def test_group(classname):
    """The rubric group of a test from its module: tests/student/test_student_<group>.py, or the
    grading-only tests/student/grading/test_<group>_*.py (kit.add_grading_tests)."""
    match = re.search(r"(?:test_student_|\bgrading\.test_)([a-z]+)", classname)
    return match[1] if match else "other"


def is_grading_test(classname):
    """Whether a test is a grading-only one (its module lies in tests/student/grading/)."""
    return bool(re.search(r"\bgrading\.test_", classname))


def score(tests, challenge_passed, rubric):
    """Gradescope-style results: each test's share of its group's points, and the challenge's.

    Parts a person grades (MANUAL_GROUPS: the answers) are left out of both score and max_score.
    Returns {"score", "max_score", "tests": [{"name", "score", "max_score", "status", "output"}]};
    status is "passed" or "failed" (Gradescope's two), a skipped test being failed with a note.
    """
    # A group none of whose tests ran (its test file could not even be collected) scores nothing.
    tests = tests + [{"name": "no test of this group ran", "group": group, "status": "failed", "output": ""}
                     for group in rubric if group != "challenge" and group not in MANUAL_GROUPS
                     and group not in {t["group"] for t in tests}]
    counts = {}
    for test in tests:
        counts[test["group"]] = counts.get(test["group"], 0) + 1
    scored, total, maximum, hidden = [], 0.0, 0.0, {}
    for test in tests:
        points = rubric.get(test["group"], 0) / counts[test["group"]]
        earned = points if test["status"] == "passed" else 0
        total, maximum = total + earned, maximum + points
        name = test["name"]
        if test.get("grading"):  # its name may state the figure it checks: results.json goes to the student
            hidden[test["group"]] = hidden.get(test["group"], 0) + 1
            name = f"grading-only check {hidden[test['group']]}"
        scored.append({
            "name": f"{test['group']}{' (grading)' if test.get('grading') else ''}: {name}",
            "max_score": round(points, 4), "score": round(earned, 4),
            "status": "passed" if test["status"] == "passed" else "failed",
            "output": (("skipped (a skipped test scores nothing): " if test["status"] == "skipped" else "")
                       + test["output"]),
        })
    challenge_points = rubric.get("challenge", 0)
    scored.append({"name": "final challenge", "max_score": challenge_points,
                   "score": challenge_points if challenge_passed else 0,
                   "status": "passed" if challenge_passed else "failed", "output": ""})
    # Totals from the exact shares: rounded parts need not add up to the rubric's whole points.
    return {"score": round(total + (challenge_points if challenge_passed else 0), 4),
            "max_score": round(maximum + challenge_points, 4), "tests": scored}


_SYNTHETIC_LOCK = threading.Lock()


def default_synthetic_dataset():
    """The kit's default synthetic set, made (outside the jail) by one thread at a time: with
    --jobs > 1 the first submission that needs it makes it once, the others wait for it."""
    import synthetic

    with _SYNTHETIC_LOCK:
        return synthetic.default_dataset()


def describe_datasets(data_dirs):
    """[(folder, what it is)] of the datasets given with --data-dir (synthetic.describe_dataset);
    raises ValueError, before any grading, for a folder that is no dataset."""
    import data
    import synthetic

    described = []
    for folder in data_dirs:
        folder = Path(folder).resolve()
        if not folder.is_dir() or not data.has_dataset(folder):
            raise ValueError(f"--data-dir {folder} is not a Speech Commands dataset (a folder of word "
                             "folders of .wav files): check the path")
        described.append((folder, synthetic.describe_dataset(folder)))
    return described


def read_model_provenance(int8_path):
    """The provenance the kit wrote beside a submitted model (None without one), read as plain JSON
    with a size cap; raises SubmissionError for anything else."""
    path = Path(int8_path).with_suffix(".json")
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_PROVENANCE_BYTES:
        raise SubmissionError(f"{path.name} is over {MAX_PROVENANCE_BYTES // 1024} KiB: not the JSON the kit writes")
    try:
        provenance = json.loads(path.read_text(encoding="utf-8")).get("provenance")
        if provenance is not None:
            provenance["dataset"]["kind"]  # noqa: B018  (the one field the grader needs)
        return provenance
    except (ValueError, AttributeError, TypeError, KeyError, RecursionError) as error:  # RecursionError: [[[...]]]
        raise SubmissionError(
            f"{path.name} is not the JSON the kit writes beside a model ({type(error).__name__})") from error


def dataset_for_submission(provenance, datasets, default_settings, speech_commands_dir=None):
    """Which dataset to measure a submitted model on, from its provenance: (folder or None, kind).

    A model trained on a synthetic set is measured on a given --data-dir of the same recipe, or on
    the kit's default set (None: made when first needed) if that is its recipe; one trained on the
    real dataset on a given real --data-dir, or SPEECH_COMMANDS_DIR. So one batch grades a mixed
    class. datasets: describe_datasets(); default_settings: the default synthetic set's recipe.
    A dataset that is not here is the grader's problem (GraderError: the row is retried).
    """
    if provenance is None:
        if len(datasets) == 1:
            return datasets[0][0], datasets[0][1]["kind"]
        raise SubmissionError("the model has no provenance (no .json beside it, written when the notebook converts "
                              "it), so its dataset is unknown")
    trained_on = provenance["dataset"]
    kind = trained_on.get("kind") if isinstance(trained_on, dict) else None
    if kind == "synthetic":
        recipe = trained_on.get("settings")
        for folder, found in datasets:
            if found["kind"] == "synthetic" and found["settings"] == recipe:
                return folder, kind
        if recipe == default_settings:
            return None, kind
        raise GraderError("the model was trained on a synthetic set of another recipe than the kit's default one: "
                          "give that set with --data-dir")
    if kind == "speech_commands":
        for folder, found in datasets:
            if found["kind"] == "speech_commands":
                return folder, kind
        if speech_commands_dir:
            return Path(speech_commands_dir), kind
        raise GraderError("the model was trained on the real Speech Commands dataset: give it with --data-dir "
                          "(or SPEECH_COMMANDS_DIR)")
    raise SubmissionError(f"the model's provenance names no dataset the kit knows (kind {_shown(kind, 40)})")


def architecture_file(own_dir):
    """Where the grader's pytest writes the architecture student/model.py builds (model.to_json())."""
    return Path(own_dir) / "architecture" / "student-model.json"


def measure(own_dir, kit_dir, words, datasets, timeout, hide=()):
    """Re-measures the challenge in the jail (a hostile model file can only break that process).

    It runs the kit's `challenge.py` with the reference MAC formulas (copied beside the submission,
    as instructor/ is hidden in the jail) on the submitted model file, on the dataset of its
    provenance (dataset_for_submission), passed in as --data-dir (and SPEECH_COMMANDS_DIR for the
    real one): no student code runs there. The test features are computed afresh (--no-cache: no
    file beside the dataset is trusted), and the file is compared with the architecture
    student/model.py builds, when the tests recorded it (run_tests). Returns (report, dataset kind).
    """
    import challenge
    import synthetic

    int8 = [f for f in challenge.expected_files(words) if f.endswith("_quantized.tflite")][0]
    if not (Path(kit_dir) / int8).is_file():
        raise SubmissionError(f"{int8} is missing")
    folder, kind = dataset_for_submission(read_model_provenance(Path(kit_dir) / int8), datasets,
                                          synthetic.default_settings(), os.environ.get("SPEECH_COMMANDS_DIR"))
    folder = folder or default_synthetic_dataset()
    output_dir = Path(own_dir) / "report"
    output_dir.mkdir(exist_ok=True)
    formulas = shutil.copy2(REFERENCE_FORMULAS, Path(own_dir) / "reference_estimate.py")
    command = [sys.executable, str(kit.ROOT / "challenge.py"), str(jail.inside(own_dir, Path(kit_dir) / int8)),
               "--wanted-words", words, "--mac-formulas", str(jail.inside(own_dir, formulas)),
               "--json", str(jail.inside(own_dir, output_dir / "challenge-report.json")),
               "--data-dir", str(Path(folder).resolve()), "--no-cache"]
    readable = [Path(kit_dir) / "models", formulas, output_dir]
    architecture = architecture_file(own_dir)
    if architecture.is_file() and not architecture.is_symlink():
        command += ["--architecture", str(jail.inside(own_dir, architecture))]
        readable.append(architecture.parent)
    environment = jail.jail_environment(own_dir)
    if kind == "speech_commands":
        environment["SPEECH_COMMANDS_DIR"] = str(Path(folder).resolve())
    report = output_dir / "challenge-report.json"
    try:
        # It sees the model files, the formulas and its report folder: never the grading-only tests or
        # the student's code (bubblewrap binds only `readable`; the namespace jail hides the others).
        jailed = jail.jail_command(command, own_dir, writable=output_dir, data=[folder],
                                   readable=readable,
                                   hide=[*hide, Path(kit_dir) / "tests", *(Path(own_dir) / name for name in
                                                                          ("student_code", "worker"))])
        code, output = run_confined(jailed,
                                    kit.ROOT,
                                    timeout, env=environment, memory_bytes=jail.MEMORY_CAP_BYTES)
    except GraderError as error:
        raise GraderError(f"measuring the model {error}") from error
    if code != 0:
        raise SubmissionError(measurement_failure(output))
    return read_challenge_report(report), kind


def measurement_failure(output):
    """Why the measurement failed, in words the student may see (results.json): challenge.py's own
    `error: ...` line when it refused the model, else only which of Python's exceptions stopped it.
    Never the rest of its output: a traceback quotes the source lines it passes through, and the
    reference formulas the measurement runs are hidden text."""
    output = "\n" + output.strip()
    refusal = output.rfind("\nerror: ")  # challenge.main's refusal, the last thing it writes (maybe several lines)
    if refusal >= 0 and "\nTraceback (most recent call last)" not in output[refusal:]:
        refused = " ".join(output[refusal + len("\nerror: "):].split())[:500]
        return "the model could not be measured: " + jail._plain(refused)  # (student text: paths, names)
    name = output.splitlines()[-1].split(":", 1)[0].strip()
    stopped = name if name in jail._KNOWN_EXCEPTIONS else "an error"
    return f"the model could not be measured (it stopped with {stopped})"


CHALLENGE_FIGURES = ("int8_test_accuracy", "rom_bytes", "ram_bytes", "macs")
MAX_REPORT_BYTES = 2**16


def failed_checks(report):
    """The names of the challenge's checks that did not pass, for the row ("architecture; rom_bytes").
    A name not of the challenge's own form (the report comes out of a jailed process) shows as "a check"."""
    return "; ".join(name if re.fullmatch(r"[a-z0-9_]{1,40}", name) else "a check"
                     for name, item in report.items() if item["passed"] is not True)


def read_challenge_report(path):
    """The measurement's report, read as data from the one folder the jailed measurement could write
    (a process a hostile model took over could put anything there): a regular file, not a link or a
    pipe, under MAX_REPORT_BYTES, of {check: {"value", "passed": bool or None, ...}} whose
    CHALLENGE_FIGURES have numbers (or None) as values. Only those reach the row, and every check counts
    in challenge_passed; anything else is the submission's failure (SubmissionError)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        raise SubmissionError("the model could not be measured (no report was written)") from None
    with os.fdopen(descriptor, "rb") as file:
        content = file.read(MAX_REPORT_BYTES + 1) if stat.S_ISREG(os.fstat(descriptor).st_mode) else b""
    try:
        report = json.loads(content)
        valid = (isinstance(report, dict) and set(report) >= set(CHALLENGE_FIGURES)
                 and all(isinstance(item, dict) and item.get("passed") in (True, False, None)
                         for item in report.values())
                 and all(report[name].get("value") is None or type(report[name].get("value")) in (int, float)
                         for name in CHALLENGE_FIGURES))  # (other checks the challenge adds count in passing only)
    except (ValueError, RecursionError):
        valid = False
    if len(content) > MAX_REPORT_BYTES or not valid:
        raise SubmissionError("the model could not be measured (its report is not the challenge's)")
    return report


def grade_one(submission, out_dir, datasets, timeout, batch_dir=None, hide=(), student_groups=None):
    """Grades one submission; returns its CSV row (every failure is reported in the row, never raised).

    Its files go to a folder of its own under batch_dir (the folder all submissions of a run share,
    which the jail replaces with this one); hide: more folders the jail hides (results, the zips);
    datasets: describe_datasets() of --data-dir; student_groups: read_groups_csv() of --groups.
    """
    label, student, student_id, source = submission
    result_dir = result_folder(out_dir, label)
    row = {"submission": label, "student": student, "student_id": student_id, "status": GRADED,
           "results_folder": result_dir.name}
    tests, rubric = [], {}
    try:
        import challenge
        from lab import read_words

        settings = challenge.load_challenge()
        rubric = settings["rubric"]
        content = read_source(source)
        with contextlib.ExitStack() as temporary:
            batch_dir = batch_dir or temporary.enter_context(tempfile.TemporaryDirectory(prefix="microkws-grading-"))
            own_dir = Path(temporary.enter_context(tempfile.TemporaryDirectory(prefix="grade-", dir=batch_dir)))
            (own_dir / "scratch").mkdir()  # where the jail mounts the worker's scratch space
            kit_dir = kit.copy_kit(own_dir / "kit")  # no instructor/: students cannot import it
            for stub in (kit_dir / "student").glob("*.py"):
                stub.unlink()  # the grader's tests never import student code: only the worker does
            try:
                unpack_submission(content, kit_dir, own_dir / "student_code")
            except UNREADABLE_ZIP as error:
                raise RefusedSubmission(f"{type(error).__name__}: {error}") from error
            kit.add_grading_tests(kit_dir)  # after the submission's files: a student cannot replace them
            answers = kit_dir / "student" / "answers.md"
            if answers.is_file():  # as plain text for the grader: never a page that renders
                write_atomically(result_dir / "answers.txt", answers.read_bytes())
            row.update(_what_submit_recorded(kit_dir))
            names, written_words = (_text_lines(kit_dir / name) for name in ("names.txt", "words.txt"))
            try:
                words, words_problem = read_words(kit_dir, settings["groups"]), None
            except ValueError as error:  # e.g. yes,no (the notebook's example), no group's keywords
                words, words_problem = "", str(error)
            keywords = words or ",".join(written_words).replace(" ", "")[:200]
            row.update(names="; ".join(names)[:500], keywords=keywords)
            if student_groups is not None:
                row["group"], row["group_problem"] = group_check([student] if student else names, keywords,
                                                                 student_groups, settings["groups"])
            tests = run_tests(own_dir, kit_dir, own_dir / "student_code", timeout, hide=[out_dir, *hide], words=words)
            row.update(tests_passed=sum(t["score"] for t in tests), tests_total=len(tests),
                       grading_tests_passed=sum(t["score"] for t in tests if t["grading"]),
                       grading_tests_total=sum(1 for t in tests if t["grading"]))
            if words_problem:
                raise SubmissionError(words_problem)
            report, row["dataset"] = measure(own_dir, kit_dir, words, datasets, timeout, hide=[out_dir, *hide])
            row.update({name: report[name]["value"] for name in CHALLENGE_FIGURES})
            row["challenge_passed"] = all(item["passed"] is True for item in report.values())
            row["challenge_failed"] = failed_checks(report)
    except RefusedSubmission as error:
        row.update(status=REFUSED, error=str(error))
    except SubmissionError as error:
        row["error"] = str(error)
    except GraderError as error:
        row.update(status=GRADER_ERROR, error=str(error))
    except Exception as error:  # a batch nothing can stop: any other failure is this row's
        row.update(status=GRADER_ERROR, error=f"grader error on this submission: {type(error).__name__}: {error}")
    results = score(tests, bool(row.get("challenge_passed")), rubric)
    results["output"] = row.get("error", "")  # Gradescope shows the top-level output above the tests
    if row["status"] == GRADER_ERROR:  # not a grade: no score at all (the reason is in the TA's row)
        results["output"] = "The grader failed on this submission: this is not a grade. Your TA will grade it again."
    else:
        row.update(score=results["score"], max_score=results["max_score"])
    try:
        write_atomically(result_dir / "results.json", json.dumps(results, indent=2))
    except OSError as error:
        row.update(status=GRADER_ERROR, error=f"cannot write {result_dir / 'results.json'}: {error}", score="",
                   max_score="")
    return row


def error_row(submission, out_dir, error):
    """The row of a submission whose grading failed outside grade_one (a bug, a full disk)."""
    return {"submission": submission.label, "student": submission.student, "student_id": submission.student_id,
            "status": GRADER_ERROR, "results_folder": result_folder(out_dir, submission.label).name,
            "error": f"grader error on this submission: {type(error).__name__}: {error}"}


def _text_lines(path):
    """The lines of a student's text file (lab.read_lines), or none if it is missing or not text."""
    from lab import read_lines

    try:
        return read_lines(path) if Path(path).is_file() else []
    except ValueError:  # not UTF-8
        return []


def _what_submit_recorded(kit_dir):
    """What the student's submit.py recorded in manifest.json: packed with --force, and its problems.
    (Written on the student's machine: shown to the grader, never used for a score.)"""
    try:
        manifest = json.loads((Path(kit_dir) / "manifest.json").read_text())
        return {"forced": bool(manifest.get("forced")),
                "submit_problems": " | ".join(map(str, manifest.get("problems", [])))[:2000]}
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):  # e.g. [[[[...]]]] 100,000 deep
        return {"forced": "", "submit_problems": "no readable manifest.json"}


def result_folder(out_dir, label):
    """The folder of one submission's results under out_dir: its label made safe and short, and a
    hash of the whole label, so that labels alike after that never share a folder."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", label).lstrip(".")[:80] or "submission"
    return Path(out_dir) / f"{name}-{hashlib.sha256(label.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


# --- Groups ------------------------------------------------------------------------------------


def _person(name):
    """A name as groups.csv and Moodle's folders are compared: case and spacing ignored."""
    return " ".join(str(name).casefold().split())


def read_groups_csv(path):
    """{student: group} from Moodle's groups export (a CSV with a "Group" column and the students'
    "First name" and "Last name" or "Full name"; "ID number" and "Email address" are used too where
    present). Keys are _person() of the full name, of the ID number and of the e-mail address.
    Raises ValueError saying what is missing."""
    text = Path(path).read_text(encoding="utf-8-sig")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    columns = {_person(column): column for column in (rows[0].keys() if rows else []) if column}

    def column(*names):
        return next((columns[n] for n in names if n in columns), None)

    group = column("group", "group name", "groupname", "group_name")
    first, last = column("first name", "firstname"), column("last name", "lastname", "surname")
    full = column("full name", "fullname", "name")
    extra = [c for c in (column("id number", "idnumber"), column("email address", "email")) if c]
    if not group or not (full or (first and last)):
        raise ValueError(f"{path} is not Moodle's groups export: it needs a Group column and the students' "
                         "First name and Last name (or Full name) columns")
    mapping = {}
    for row in rows:
        name = row.get(full) if full else f"{row.get(first) or ''} {row.get(last) or ''}"
        for key in [name, *(row.get(c) for c in extra)]:
            if key and _person(key) and (row.get(group) or "").strip():
                mapping[_person(key)] = row[group].strip()
    return mapping


def group_check(students, keywords, student_groups, groups):
    """(the students' group, the problem to flag or "") for a submission's keywords.

    students: the Moodle folder's student, or the names in names.txt for a single upload;
    student_groups: read_groups_csv(); groups: challenge.toml's {group: keywords}.
    """
    found = sorted({student_groups[_person(s)] for s in students if _person(s) in student_groups})
    if not found:
        return "", "no student of this submission is in groups.csv"
    if len(found) > 1:
        return "; ".join(found), f"its students are in different groups: {', '.join(found)}"
    group = found[0]
    if group not in groups:
        return group, f"group {group} of groups.csv has no keywords in challenge.toml's [groups]"
    if keywords.replace(" ", "") != groups[group]:
        return group, f"keywords {keywords or '(none)'} are not group {group}'s ({groups[group]})"
    return group, ""


# --- The batch ---------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zips", nargs="*", type=Path, help="submission zips, each one submission")
    parser.add_argument("--moodle", action="append", default=[], type=Path, metavar="DOWNLOAD.zip",
                        help="Moodle's \"download all submissions\" zip: a row per student folder (repeatable)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--gradescope", nargs=2, type=Path, metavar=("SUBMISSION_DIR", "RESULTS_JSON"),
                        help="grade one Gradescope submission folder and write Gradescope's results.json")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per step of one submission")
    parser.add_argument("--data-dir", action="append", default=[], type=Path,
                        help="a dataset the class trained on (repeatable: the real Speech Commands, a synthetic set); "
                             "each model is measured on the one of its provenance (the kit's default synthetic set "
                             "needs none)")
    parser.add_argument("--groups", type=Path, help="Moodle's groups export (CSV): a submission whose keywords "
                        "are not its students' group's is flagged")
    parser.add_argument("--regrade", action="store_true",
                        help="grade every submission again (default: keep the finished rows of an earlier run)")
    parser.add_argument("--retry-errors", action="store_true",
                        help="grade again every row with an error (grader errors are always graded again)")
    args = parser.parse_args(argv)
    problems = [f"{path} is not a file" for path in [*args.zips, *args.moodle] if not path.is_file()]
    if args.groups and not args.groups.is_file():
        problems.append(f"--groups {args.groups} is not a file")
    try:
        datasets = describe_datasets(args.data_dir)
        student_groups = read_groups_csv(args.groups) if args.groups and args.groups.is_file() else None
    except (ValueError, OSError, csv.Error) as error:
        problems.append(str(error))
    problems += [jail.missing_jail_problem()] if jail.missing_jail_problem() else []
    if problems:
        parser.error("; ".join(problems))
    if args.gradescope:
        return grade_gradescope(*args.gradescope, datasets, args.timeout)
    if not (args.zips or args.moodle) or not args.out:
        parser.error("give the submission zips and/or --moodle DOWNLOAD.zip, and --out "
                     "(or --gradescope SUBMISSION_DIR RESULTS_JSON)")
    out = args.out.resolve()  # relative paths mean the folder the grader was started in
    zips, bundles = [p.resolve() for p in args.zips], [p.resolve() for p in args.moodle]

    submissions = []
    for path, find in [(p, find_submissions) for p in zips] + [(p, find_bundle) for p in bundles]:
        try:
            submissions += find(path)
        except GraderError as error:  # a bundle that cannot be graded is a row, never the end of the batch
            submissions.append(Submission(_label(path.stem), "", "", error))
        except Exception as error:
            reason = f"not a readable Moodle download: {type(error).__name__}: {error}"
            submissions.append(Submission(_label(path.stem), "", "", GraderError(reason)))
    submissions = unique_labels(submissions)
    earlier = read_rows(out / "results.csv")
    rows = {} if args.regrade else {label: row for label, row in earlier.items() if is_finished(row, args.retry_errors)}
    todo = [s for s in submissions if s.label not in rows]
    if len(todo) < len(submissions):
        print(f"{len(submissions) - len(todo)} submission(s) already graded in {out / 'results.csv'} "
              "(--regrade to redo)")
    print(f"Grading {len(todo)} submission(s) with {max(1, args.jobs)} job(s) ...", flush=True)
    print("Student code runs in:", jail.isolation(), flush=True)
    out.mkdir(parents=True, exist_ok=True)

    def save():
        write_rows(out / "results.csv", [rows[s.label] for s in submissions if s.label in rows])

    save()
    with tempfile.TemporaryDirectory(prefix="microkws-grading-") as batch, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        hide = folders_to_hide([out, *(path.parent for path in zips + bundles)],
                               needed=[kit.ROOT, sys.prefix, sys.executable, *(f for f, _ in datasets),
                                       os.environ.get("SPEECH_COMMANDS_DIR"), batch])
        futures = {pool.submit(grade_one, s, out, datasets, args.timeout, batch, hide, student_groups): s for s in todo}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            submission = futures[future]
            try:
                row = future.result()
            except Exception as error:  # grade_one reports its own failures: this is the last net
                row = error_row(submission, out, error)
            row["answers_score"] = earlier.get(submission.label, {}).get("answers_score", "")  # the TA's, kept
            rows[submission.label] = row
            save()
            print(f"[{done}/{len(futures)}] {row['status']}: {_shown(row['submission'], 100)}", flush=True)
    for submission in submissions:
        row = rows[submission.label]
        print(f"{_shown(row['submission'], 100)}: {row.get('status') or '?'}, "
              f"{row.get('tests_passed') or 0}/{row.get('tests_total') or 0} tests, "
              f"challenge {'passed' if str(row.get('challenge_passed')) == 'True' else 'not passed'}"
              + (f" ({_shown(row['error'], 300)})" if row.get("error") else ""))
    print(f"Results in {out / 'results.csv'}")
    errors = [s.label for s in submissions if rows[s.label].get("status") == GRADER_ERROR]
    if errors:
        print(f"{len(errors)} grader error(s), not grades: run the same command again to retry them.")
        return 1
    return 0


def is_finished(row, retry_errors=False):
    """Whether an earlier run's row stands: graded or refused, never a grader error (nor, with
    --retry-errors, any row with an error)."""
    return row.get("status") in (GRADED, REFUSED) and not (retry_errors and row.get("error"))


def folders_to_hide(candidates, needed):
    """The candidate folders (results, the folders of the submitted zips: other students' work) the
    jail can hide: those that hold nothing a jailed step needs (the kit, Python, the dataset)."""
    needed = [Path(path).resolve() for path in needed if path]
    hidden = {Path(c).resolve() for c in candidates}
    return sorted(str(c) for c in hidden if not any(n == c or c in n.parents for n in needed))


def grade_gradescope(submission_dir, results_json, datasets, timeout):
    """Gradescope's side: grades the uploaded files (a submission.zip, or its unpacked files) and
    writes results.json in Gradescope's schema. Exit code 1 on a grader error (not a grade)."""
    source = gradescope_source(submission_dir)
    with tempfile.TemporaryDirectory(prefix="gradescope-") as out:
        row = grade_one(Submission("submission", "", "", source), Path(out), datasets, timeout)
        results = json.loads((result_folder(out, "submission") / "results.json").read_text())
    write_atomically(Path(results_json), json.dumps(results, indent=2))
    print(f"{row['status']}: score {row.get('score')} of {row.get('max_score')}"
          + (f" ({_shown(row['error'], 600)})" if row.get("error") else ""))
    return 1 if row["status"] == GRADER_ERROR else 0


def gradescope_source(submission_dir):
    """A Gradescope upload as one submission: its one zip, or a zip of its files; or, for an upload
    holding a link (a repository may link to /autograder/source/instructor/solution/...), anything
    but plain files and folders, or more than one submission's caps, the RefusedSubmission saying so."""
    root, files = Path(submission_dir), []
    for folder, folders, names in os.walk(root):  # never into a linked folder
        for path in [Path(folder) / name for name in folders + names]:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return RefusedSubmission(f"refused {'link' if stat.S_ISLNK(mode) else 'special file'} "
                                         f"{_shown(path.relative_to(root).as_posix())}")
            if stat.S_ISREG(mode):
                files.append(path)
    if len(files) > MAX_FILES or sum(path.stat().st_size for path in files) > MAX_UNPACKED_BYTES:
        return RefusedSubmission(f"the upload holds more than {MAX_FILES} files or "
                                 f"{MAX_UNPACKED_BYTES // 2**20} MiB")
    if len(files) == 1 and files[0].suffix.lower() == ".zip":
        return files[0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in files:
            archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def read_rows(path):
    """{submission: row} of an earlier run's results.csv (none if there is none), cells unescaped."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as file:
        rows = [{key: spreadsheet_value(value) for key, value in row.items() if key} for row in csv.DictReader(file)]
    return {row["submission"]: row for row in rows if row.get("submission")}


def spreadsheet_cell(value):
    """A value as a results.csv cell that no spreadsheet runs: text starting with = + - @, a tab or
    a carriage return (a formula, e.g. =HYPERLINK(...) or =cmd|...) gets a leading apostrophe, as
    does text already starting with one (so spreadsheet_value undoes it exactly). Capped."""
    if not isinstance(value, str):
        return value
    value = value[:MAX_CELL_CHARS]
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r", "'")) else value


def spreadsheet_value(cell):
    """The value behind a results.csv cell (spreadsheet_cell undone)."""
    return cell[1:] if isinstance(cell, str) and cell.startswith("'") else cell


def write_rows(path, rows):
    """Writes results.csv whole and atomically: after every submission, so a crash loses none."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows([{key: spreadsheet_cell(value) for key, value in row.items()} for row in rows])
    write_atomically(path, text.getvalue())


if __name__ == "__main__":
    sys.exit(main())
