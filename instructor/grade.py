#!/usr/bin/env python3
"""Grades many submissions: each in a clean copy of the kit, in its own process, with a time limit.

    python instructor/grade.py submissions/*.zip --out results/ [--jobs 2] [--timeout 900]
                               [--data-dir DIR] [--regrade]

A zip is either one group's submission.zip or Moodle's "download all submissions" zip (recognised
by its layout: a folder per student, `<Full Name>_<id>_assignsubmission_file_/`, holding their
submission.zip; each folder is one row, caps applied per student).
For every submission: unpack safely (no absolute paths, no `..`, no links, size and count caps),
take only the allowed files (student/*.py, student/answers.md, the model files and the .json beside
them, names.txt, words.txt) beside a clean copy of the kit without instructor/ (tests, conftest and
helpers stay the kit's), add the grading-only tests, run tests/student there with the student's
functions in a jailed worker that hands back values only (instructor/jail.py: a skipped, failed or
hanging call scores 0), re-measure the challenge in the jail with the reference MAC formulas and
TFLite-Micro on the dataset the model was trained on, and write:
    results/results.csv                      one row per submission, rewritten as each finishes
    results/<submission>/results.json        Gradescope-style test results
    results/<submission>/answers.md          the student's answers to the lab's questions
A broken, hostile or hanging submission, or any zip that cannot be read, is reported in its row;
the others are graded. A rerun with the same --out keeps the rows already there (--regrade redoes them).
"""

import argparse
import concurrent.futures
import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
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
BUNDLE_CAPS = {"max_files": 500 * MAX_FILES, "max_bytes": 500 * MAX_UNPACKED_BYTES}  # a class of up to 500
# Reading a zip fails in many ways: not a zip, truncated, encrypted (RuntimeError), an unknown
# compression method (NotImplementedError), corrupt deflate data (zlib.error), bad CRC (BadZipFile).
UNREADABLE_ZIP = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error, ValueError)
MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(file|onlinetext)_?$")
ALLOWED = re.compile(r"^(student/[A-Za-z_][A-Za-z0-9_]*\.py|student/answers\.md|models/[A-Za-z0-9_]+\.(tflite|json)|names\.txt|words\.txt|manifest\.json)$")
CSV_FIELDS = ["submission", "student", "student_id", "names", "keywords", "score", "max_score", "tests_passed", "tests_total",
              "int8_test_accuracy", "rom_bytes", "ram_bytes", "macs", "challenge_passed", "forced", "submit_problems",
              "error"]


class SubmissionError(Exception):
    """A submission that cannot be graded, with the reason for its row."""


def safe_members(archive, max_files=MAX_FILES, max_bytes=MAX_UNPACKED_BYTES):
    """The zip's file members after the safety checks; raises SubmissionError on anything hostile.

    The caps are one submission's; a Moodle bundle gets a whole class's (BUNDLE_CAPS), and each
    submission inside it is checked against its own caps when it is unpacked.
    """
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > max_files:
        raise SubmissionError(f"{len(members)} files, over the cap of {max_files}")
    if sum(info.file_size for info in members) > max_bytes:
        raise SubmissionError(f"unpacks to more than {max_bytes // 2**20} MiB")
    for info in members:
        name = info.filename
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in Path(name).parts or "\\" in name:
            raise SubmissionError(f"refused member path {name!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise SubmissionError(f"refused link {name!r}")
    return members


def find_submissions(zip_path):
    """[(label, student, student_id, bytes of a submission zip or the reason it has none)].

    A zip is Moodle's "download all submissions" bundle only when it has Moodle's layout: every
    member inside a `<Full Name>_<id>_assignsubmission_file_` folder. Then each folder is one row:
    its submission zip, or what was found instead (loose files, online text). Any other zip is one
    group's submission (a zip inside it is simply not a file the kit takes).
    """
    label = Path(zip_path).stem
    try:
        with zipfile.ZipFile(zip_path) as archive:
            folders = {Path(info.filename).parts[0] for info in archive.infolist()
                       if len(Path(info.filename).parts) > 1}
            loose = [info for info in archive.infolist() if len(Path(info.filename).parts) == 1 and not info.is_dir()]
            if not folders or loose or not all(MOODLE_FOLDER.match(folder) for folder in folders):
                safe_members(archive)
                return [(label, "", "", Path(zip_path).read_bytes())]
            members = safe_members(archive, **BUNDLE_CAPS)
            found = []
            for folder in sorted(folders):
                match = MOODLE_FOLDER.match(folder)
                inside = [m for m in members if Path(m.filename).parts[0] == folder]
                zips = [m for m in inside if m.filename.lower().endswith(".zip")]
                if len(zips) == 1:
                    content = archive.read(zips[0])
                else:
                    names = ", ".join(Path(m.filename).name for m in inside) or "nothing"
                    content = SubmissionError(f"expected one submission.zip in the Moodle folder, found: {names}")
                found.append((folder, match["name"], match["id"], content))
            return found
    except UNREADABLE_ZIP as error:
        return [(label, "", "", SubmissionError(f"not a readable zip: {type(error).__name__}: {error}"))]
    except SubmissionError as error:
        return [(label, "", "", error)]


def unique_labels(submissions):
    """The submissions with labels made unique (a second 'submission' becomes 'submission-2')."""
    seen, unique = {}, []
    for label, *rest in submissions:
        seen[label] = seen.get(label, 0) + 1
        unique.append((label if seen[label] == 1 else f"{label}-{seen[label]}", *rest))
    return unique


def unpack_submission(content, kit_dir, student_code_dir):
    """Copies only the allowed files of a submission zip: its Python files into student_code_dir
    (only the jailed worker imports them), the rest over the kit copy. Returns their names."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        members = safe_members(archive)
        copied = []
        for info in members:
            if not ALLOWED.match(info.filename):
                continue  # anything else (tests, conftest, data) is ignored
            code = info.filename.startswith("student/") and info.filename.endswith(".py")
            target = Path(student_code_dir if code else kit_dir) / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            copied.append(info.filename)
    if not any(name.startswith("student/") and name.endswith(".py") for name in copied):
        raise SubmissionError("no student/*.py file in the submission")
    return copied


OUTPUT_CAP_BYTES = 64 * 2**20


def run_confined(command, cwd, timeout, env=None, memory_bytes=None):
    """Runs one grading step in its own session with limits; returns (exit code, its output's end).

    Limits: CPU time (the time limit on every core), output and file size (OUTPUT_CAP_BYTES) and,
    if given, memory.
    Raises SubmissionError when the time limit passes. Whatever the step started is killed with
    its process group when it ends, so nothing it left running can touch later results.
    """
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=os.name == "posix",
                                   preexec_fn=jail.limits(timeout * (os.cpu_count() or 1), OUTPUT_CAP_BYTES, memory_bytes)
                                   if os.name == "posix" else None)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise SubmissionError(f"did not finish within {timeout} s") from error
        finally:
            if os.name == "posix":
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            process.kill()
            process.wait()
        output.seek(max(0, output.seek(0, os.SEEK_END) - 4000))
        return code, output.read().decode("utf-8", "replace")


def run_tests(own_dir, kit_dir, student_code_dir, timeout, hide=()):
    """Runs tests/student in the kit copy; returns the per-test results.

    The pytest that decides and reports runs no student code: with instructor/grading_plugin.py,
    every call of a student function runs in the submission's jailed worker.
    """
    report = Path(own_dir) / "student-tests.xml"
    environment = {**os.environ, "PYTHONPATH": str(kit.ROOT), "MICROKWS_SUBMISSION_DIR": str(own_dir),
                   "MICROKWS_STUDENT_CODE": str(student_code_dir), "MICROKWS_STEP_SECONDS": str(timeout),
                   "MICROKWS_HIDE": os.pathsep.join(map(str, hide))}
    try:
        run_confined([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "instructor.grading_plugin",
                      "--continue-on-collection-errors", "tests/student", f"--junitxml={report}"],
                     kit_dir, timeout, env=environment)
    except SubmissionError as error:
        raise SubmissionError(f"tests {error}") from error
    if not report.is_file():
        raise SubmissionError("the tests did not run (pytest wrote no report)")
    return read_test_results(report)


def read_test_results(report):
    """Per-test results from pytest's JUnit XML report."""
    tests = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        # Only a test that ran and passed scores: failed, errored and skipped ones score 0.
        outcome = next(((kind, case.find(kind)) for kind in ("failure", "error", "skipped")
                        if case.find(kind) is not None), (None, None))
        status = {None: "passed", "failure": "failed", "error": "failed", "skipped": "skipped"}[outcome[0]]
        tests.append({
            "name": case.get("name"),
            # a test file that could not be collected has no class name: its name is the module
            "group": test_group(case.get("classname") or case.get("name", "")),
            "status": status,
            "score": 1 if status == "passed" else 0, "max_score": 1,
            "output": "" if outcome[1] is None else (outcome[1].get("message") or "")[:2000],
        })
    return tests


def test_group(classname):
    """The rubric group of a test from its module: tests/student/test_student_<group>.py, or the
    grading-only grading_test_<group>_*.py."""
    match = re.search(r"(?:test_student_|grading_test_)([a-z]+)", classname)
    return match[1] if match else "other"


def score(tests, challenge_passed, rubric):
    """Gradescope-style results: each test's share of its group's points, and the challenge's.

    Returns {"score", "max_score", "tests": [{"name", "score", "max_score", "status", "output"}]};
    status is "passed" or "failed" (Gradescope's two), a skipped test being failed with a note.
    """
    # A group none of whose tests ran (its test file could not even be collected) scores nothing.
    tests = tests + [{"name": "no test of this group ran", "group": group, "status": "failed", "output": ""}
                     for group in rubric if group != "challenge" and group not in {t["group"] for t in tests}]
    counts = {}
    for test in tests:
        counts[test["group"]] = counts.get(test["group"], 0) + 1
    scored, total, maximum = [], 0.0, 0.0
    for test in tests:
        points = rubric.get(test["group"], 0) / counts[test["group"]]
        earned = points if test["status"] == "passed" else 0
        total, maximum = total + earned, maximum + points
        scored.append({
            "name": f"{test['group']}: {test['name']}", "max_score": round(points, 4), "score": round(earned, 4),
            "status": "passed" if test["status"] == "passed" else "failed",
            "output": ("skipped (a skipped test scores nothing): " if test["status"] == "skipped" else "") + test["output"],
        })
    challenge_points = rubric.get("challenge", 0)
    scored.append({"name": "final challenge", "max_score": challenge_points,
                   "score": challenge_points if challenge_passed else 0,
                   "status": "passed" if challenge_passed else "failed", "output": ""})
    # Totals from the exact shares: rounded parts need not add up to the rubric's whole points.
    return {"score": round(total + (challenge_points if challenge_passed else 0), 4),
            "max_score": round(maximum + challenge_points, 4), "tests": scored}


def measure(own_dir, kit_dir, words, data_dir, timeout, hide=()):
    """Re-measures the challenge in the jail (a hostile model file can only break that process).

    It runs the kit's `challenge.py` with the reference MAC formulas (copied beside the submission,
    as instructor/ is hidden in the jail) on the submitted model file: no student code runs there.
    """
    import challenge
    import synthetic

    int8 = [f for f in challenge.expected_files(words) if f.endswith("_quantized.tflite")][0]
    if not (Path(kit_dir) / int8).is_file():
        raise SubmissionError(f"{int8} is missing")
    if not data_dir:  # the provenance's dataset; the default synthetic set is made here, outside the jail
        synthetic.default_dataset()
    output_dir = Path(own_dir) / "report"
    output_dir.mkdir(exist_ok=True)
    formulas = shutil.copy2(REFERENCE_FORMULAS, Path(own_dir) / "reference_estimate.py")
    command = [sys.executable, str(kit.ROOT / "challenge.py"), str(jail.inside(own_dir, Path(kit_dir) / int8)),
               "--wanted-words", words, "--mac-formulas", str(jail.inside(own_dir, formulas)),
               "--json", str(jail.inside(own_dir, output_dir / "challenge-report.json"))]
    if data_dir:
        command += ["--data-dir", str(Path(data_dir).resolve())]
    report = output_dir / "challenge-report.json"
    try:
        code, output = run_confined(jail.jail_command(command, own_dir, writable=output_dir, hide=hide, data=[data_dir]),
                                    kit.ROOT,
                                    timeout, env=jail.jail_environment(own_dir), memory_bytes=jail.MEMORY_CAP_BYTES)
    except SubmissionError as error:
        raise SubmissionError(f"measuring the model {error}") from error
    if code != 0 or not report.is_file():
        raise SubmissionError(f"the model could not be measured: {output.strip()[-500:]}")
    return json.loads(report.read_text())


def grade_one(label, student, student_id, content, out_dir, data_dir, timeout, batch_dir=None, hide=()):
    """Grades one submission; returns its CSV row (errors are reported in the row, never raised).

    Its files go to a folder of its own under batch_dir (the folder all submissions of a run share,
    which the jail replaces with this one); hide: more folders the jail hides (results, the zips).
    """
    import challenge
    from submit import read_lines, read_words

    row = {"submission": label, "student": student, "student_id": student_id}
    tests = []
    try:
        if isinstance(content, Exception):
            raise content
        with contextlib.ExitStack() as temporary:
            batch_dir = batch_dir or temporary.enter_context(tempfile.TemporaryDirectory(prefix="microkws-grading-"))
            own_dir = Path(temporary.enter_context(tempfile.TemporaryDirectory(prefix="grade-", dir=batch_dir)))
            (own_dir / "scratch").mkdir()  # where the jail mounts the worker's scratch space
            kit_dir = kit.copy_kit(own_dir / "kit")  # no instructor/: students cannot import it
            for stub in (kit_dir / "student").glob("*.py"):
                stub.unlink()  # the grader's tests never import student code: only the worker does
            unpack_submission(content, kit_dir, own_dir / "student_code")
            kit.add_grading_tests(kit_dir)  # after the submission's files: a student cannot replace them
            answers = kit_dir / "student" / "answers.md"
            if answers.is_file():  # for the grader to read beside the results
                write_atomically(_result_dir(out_dir, label) / "answers.md", answers.read_bytes())
            row.update(_what_submit_recorded(kit_dir))
            names = read_lines(kit_dir / "names.txt") if (kit_dir / "names.txt").is_file() else []
            try:
                words, words_problem = read_words(kit_dir, challenge.load_challenge()["groups"]), None
            except ValueError as error:
                words, words_problem = "", str(error)
            row.update(names="; ".join(names), keywords=words)
            tests = run_tests(own_dir, kit_dir, own_dir / "student_code", timeout, hide=[out_dir, *hide])
            row.update(tests_passed=sum(t["score"] for t in tests), tests_total=len(tests))
            if words_problem:
                raise SubmissionError(words_problem)
            report = measure(own_dir, kit_dir, words, data_dir, timeout, hide=[out_dir, *hide])
            row.update({name: item["value"] for name, item in report.items()})
            row["challenge_passed"] = all(item["passed"] for item in report.values())
    except SubmissionError as error:
        row["error"] = str(error)
    except UNREADABLE_ZIP as error:
        row["error"] = f"{type(error).__name__}: {error}"
    except Exception as error:  # a batch nothing can stop: any other failure is this row's
        row["error"] = f"grader error on this submission: {type(error).__name__}: {error}"
    results = score(tests, bool(row.get("challenge_passed")), challenge.load_challenge()["rubric"])
    results["output"] = row.get("error", "")  # Gradescope shows the top-level output above the tests
    row.update(score=results["score"], max_score=results["max_score"])
    write_atomically(_result_dir(out_dir, label) / "results.json", json.dumps(results, indent=2))
    return row


def _what_submit_recorded(kit_dir):
    """What the student's submit.py recorded in manifest.json: packed with --force, and its problems.
    (Written on the student's machine: shown to the grader, never used for a score.)"""
    try:
        manifest = json.loads((Path(kit_dir) / "manifest.json").read_text())
        return {"forced": bool(manifest.get("forced")), "submit_problems": " | ".join(map(str, manifest.get("problems", [])))[:2000]}
    except (OSError, ValueError, AttributeError):
        return {"forced": "", "submit_problems": "no readable manifest.json"}


def _result_dir(out_dir, label):
    """The folder of one submission's results under out_dir: never `.`, `..` or a path."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", label).lstrip(".")
    return Path(out_dir) / (name or "submission")


def main(argv=None):

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zips", nargs="*", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--gradescope", nargs=2, type=Path, metavar=("SUBMISSION_DIR", "RESULTS_JSON"),
                        help="grade one Gradescope submission folder and write Gradescope's results.json")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per step of one submission")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the real Speech Commands dataset, for models trained on it (models trained on the "
                             "synthetic set are measured on the synthetic set of their recipe)")
    parser.add_argument("--regrade", action="store_true",
                        help="grade every submission again (default: keep the rows of an earlier run in --out)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve() if args.data_dir else None
    if args.gradescope:
        return grade_gradescope(*args.gradescope, data_dir, args.timeout)
    if not args.zips or not args.out:
        parser.error("give the submission zips and --out (or --gradescope SUBMISSION_DIR RESULTS_JSON)")
    out = args.out.resolve()  # relative paths mean the folder the grader was started in

    submissions = unique_labels([s for path in args.zips for s in find_submissions(path.resolve())])
    rows = {} if args.regrade else read_rows(out / "results.csv")
    todo = [s for s in submissions if s[0] not in rows]
    if len(todo) < len(submissions):
        print(f"{len(submissions) - len(todo)} submission(s) already graded in {out / 'results.csv'} (--regrade to redo)")
    print(f"Grading {len(todo)} submission(s) with {max(1, args.jobs)} job(s) ...", flush=True)
    print("Student code runs in:", jail.isolation(), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="microkws-grading-") as batch, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        hide = folders_to_hide([out, *(path.resolve().parent for path in args.zips)],
                               needed=[kit.ROOT, sys.prefix, sys.executable, data_dir, batch])
        futures = [pool.submit(grade_one, *s, out, data_dir, args.timeout, batch, hide) for s in todo]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            row = future.result()
            rows[row["submission"]] = row
            write_rows(out / "results.csv", [rows[s[0]] for s in submissions if s[0] in rows])
            print(f"[{done}/{len(futures)}] graded {row['submission']}", flush=True)
    for label, *_ in submissions:
        row = rows[label]
        print(f"{row['submission']}: {row.get('tests_passed') or 0}/{row.get('tests_total') or 0} tests, "
              f"challenge {'passed' if str(row.get('challenge_passed')) == 'True' else 'not passed'}"
              + (f" ({row['error']})" if row.get("error") else ""))
    print(f"Results in {out / 'results.csv'}")
    return 0


def folders_to_hide(candidates, needed):
    """The candidate folders (results, the folders of the submitted zips: other students' work) the
    jail can hide: those that hold nothing a jailed step needs (the kit, Python, the dataset)."""
    needed = [Path(path).resolve() for path in needed if path]
    hidden = {Path(c).resolve() for c in candidates}
    return sorted(str(c) for c in hidden if not any(n == c or c in n.parents for n in needed))


def grade_gradescope(submission_dir, results_json, data_dir, timeout):
    """Gradescope's side: grades the uploaded files (a submission.zip, or its unpacked files) and
    writes results.json in Gradescope's schema."""
    files = [p for p in Path(submission_dir).rglob("*") if p.is_file()]
    if len(files) == 1 and files[0].suffix.lower() == ".zip":
        content = files[0].read_bytes()
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in files:
                archive.write(path, path.relative_to(submission_dir).as_posix())
        content = buffer.getvalue()
    with tempfile.TemporaryDirectory(prefix="gradescope-") as out:
        row = grade_one("submission", "", "", content, Path(out), data_dir, timeout)
        results = json.loads((_result_dir(out, "submission") / "results.json").read_text())
    write_atomically(Path(results_json), json.dumps(results, indent=2))
    print(f"score {row.get('score')} of {row.get('max_score')}" + (f" ({row['error']})" if row.get("error") else ""))
    return 0


def read_rows(path):
    """{submission: row} of an earlier run's results.csv (none if there is none)."""
    if not path.is_file():
        return {}
    with path.open(newline="") as file:
        return {row["submission"]: row for row in csv.DictReader(file)}


def write_rows(path, rows):
    """Writes results.csv whole and atomically: after every submission, so a crash loses none."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue())


if __name__ == "__main__":
    sys.exit(main())
