#!/usr/bin/env python3
"""Grades many submissions: each in a clean copy of the kit, in its own process, with a time limit.

    python instructor/grade.py submissions/*.zip --out results/ [--jobs 2] [--timeout 900]
                               [--data-dir DIR]

A zip is either one group's submission.zip or Moodle's "download all submissions" zip (a folder
per student, `<Full Name>_<id>_assignsubmission_file_/`, holding their submission.zip).
For every submission: unpack safely (no absolute paths, no `..`, no links, size and count caps),
copy only the allowed files (student/*.py, the model files, names.txt, words.txt) over a clean copy
of the kit without instructor/ (tests, conftest and helpers stay the kit's), run tests/student
there, re-measure the challenge with the reference MAC formulas and TFLite-Micro, and write:
    results/results.csv                      one row per submission
    results/<submission>/results.json        Gradescope-style test results
A broken, hostile or hanging submission is reported in its row; the others are graded.
"""

import argparse
import concurrent.futures
import csv
import io
import json
import re
import stat
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from files import write_atomically  # noqa: E402
from instructor import kit  # noqa: E402

REFERENCE_FORMULAS = kit.ROOT / "instructor" / "solution" / "estimate.py"
MAX_FILES = 200
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_file_?$")
ALLOWED = re.compile(r"^(student/[A-Za-z_][A-Za-z0-9_]*\.py|student/answers\.md|models/[A-Za-z0-9_]+\.(tflite|json)|names\.txt|words\.txt|manifest\.json)$")
CSV_FIELDS = ["submission", "student", "student_id", "names", "keywords", "tests_passed", "tests_total",
              "int8_test_accuracy", "rom_bytes", "ram_bytes", "macs", "challenge_passed", "error"]


class SubmissionError(Exception):
    """A submission that cannot be graded, with the reason for its row."""


def safe_members(archive):
    """The zip's file members after the safety checks; raises SubmissionError on anything hostile."""
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > MAX_FILES:
        raise SubmissionError(f"{len(members)} files, over the cap of {MAX_FILES}")
    if sum(info.file_size for info in members) > MAX_UNPACKED_BYTES:
        raise SubmissionError(f"unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MiB")
    for info in members:
        name = info.filename
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in Path(name).parts or "\\" in name:
            raise SubmissionError(f"refused member path {name!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise SubmissionError(f"refused link {name!r}")
    return members


def find_submissions(zip_path):
    """[(label, student, student_id, bytes of a submission zip)] from a submission or a Moodle zip."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = safe_members(archive)
            inner = [m for m in members if m.filename.endswith(".zip")]
            if not inner:
                return [(Path(zip_path).stem, "", "", Path(zip_path).read_bytes())]
            found = []
            for member in inner:
                folder = Path(member.filename).parts[0]
                match = MOODLE_FOLDER.match(folder)
                student, student_id = (match["name"], match["id"]) if match else (folder, "")
                found.append((folder, student, student_id, archive.read(member)))
            return found
    except (zipfile.BadZipFile, OSError) as error:
        return [(Path(zip_path).stem, "", "", SubmissionError(f"not a readable zip: {error}"))]
    except SubmissionError as error:
        return [(Path(zip_path).stem, "", "", error)]


def unpack_into_kit(content, kit_dir):
    """Copies only the allowed files of a submission zip over a kit copy; returns their names."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        members = safe_members(archive)
        copied = []
        for info in members:
            if not ALLOWED.match(info.filename):
                continue  # anything else (tests, conftest, helpers, data) is ignored
            target = Path(kit_dir) / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            copied.append(info.filename)
    if not any(name.startswith("student/") for name in copied):
        raise SubmissionError("no student/*.py file in the submission")
    return copied


def run_tests(kit_dir, timeout):
    """Runs tests/student in the kit copy in a subprocess; returns the per-test results."""
    report = Path(kit_dir) / "student-tests.xml"
    try:
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/student",
                        f"--junitxml={report}"], cwd=kit_dir, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise SubmissionError(f"tests did not finish within {timeout} s") from error
    if not report.is_file():
        raise SubmissionError("the tests did not run (pytest wrote no report)")
    tests = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        tests.append({
            "name": case.get("name"),
            "status": "failed" if failure is not None else "passed",
            "score": 0 if failure is not None else 1, "max_score": 1,
            "output": "" if failure is None else (failure.get("message") or "")[:2000],
        })
    return tests


def measure(kit_dir, words, data_dir, timeout):
    """Re-measures the challenge in a subprocess (a hostile model file can only crash that).

    It runs the instructor's kit's `challenge.py`, with the reference MAC formulas, on the submitted
    model file: no student code runs there.
    """
    import challenge

    int8 = [f for f in challenge.expected_files(words) if f.endswith("_quantized.tflite")][0]
    if not (Path(kit_dir) / int8).is_file():
        raise SubmissionError(f"{int8} is missing")
    report = Path(kit_dir) / "challenge-report.json"
    command = [sys.executable, str(kit.ROOT / "challenge.py"), str(Path(kit_dir) / int8), "--wanted-words", words,
               "--mac-formulas", str(REFERENCE_FORMULAS), "--json", str(report)]
    if data_dir:  # else the dataset the model's provenance names (the synthetic set is remade from its recipe)
        command += ["--data-dir", str(Path(data_dir).resolve())]
    try:
        result = subprocess.run(command, cwd=kit.ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise SubmissionError(f"measuring the model took over {timeout} s") from error
    if result.returncode != 0 or not report.is_file():
        raise SubmissionError(f"the model could not be measured: {result.stderr.strip()[-500:]}")
    return json.loads(report.read_text())


def grade_one(label, student, student_id, content, out_dir, data_dir, timeout):
    """Grades one submission; returns its CSV row (errors are reported in the row, never raised)."""
    import challenge
    from submit import read_lines, read_words

    row = {"submission": label, "student": student, "student_id": student_id}
    tests = []
    try:
        if isinstance(content, Exception):
            raise content
        with tempfile.TemporaryDirectory(prefix="grade-") as temporary:
            kit_dir = kit.copy_kit(Path(temporary) / "kit")  # no instructor/: students cannot import it
            unpack_into_kit(content, kit_dir)
            answers = kit_dir / "student" / "answers.md"
            if answers.is_file():  # for the grader to read beside the results
                write_atomically(_result_dir(out_dir, label) / "answers.md", answers.read_bytes())
            names = read_lines(kit_dir / "names.txt") if (kit_dir / "names.txt").is_file() else []
            try:
                words, words_problem = read_words(kit_dir, challenge.load_challenge()["groups"]), None
            except ValueError as error:
                words, words_problem = "", str(error)
            row.update(names="; ".join(names), keywords=words)
            tests = run_tests(kit_dir, timeout)
            row.update(tests_passed=sum(t["score"] for t in tests), tests_total=len(tests))
            if words_problem:
                raise SubmissionError(words_problem)
            report = measure(kit_dir, words, data_dir, timeout)
            row.update({name: item["value"] for name, item in report.items()})
            row["challenge_passed"] = all(item["passed"] for item in report.values())
    except SubmissionError as error:
        row["error"] = str(error)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        row["error"] = f"{type(error).__name__}: {error}"
    results = {
        "score": sum(t["score"] for t in tests) + (1 if row.get("challenge_passed") else 0),
        "max_score": len(tests) + 1,
        "tests": tests + [{"name": "final challenge", "score": 1 if row.get("challenge_passed") else 0,
                           "max_score": 1, "output": row.get("error", "")}],
    }
    write_atomically(_result_dir(out_dir, label) / "results.json", json.dumps(results, indent=2))
    return row


def _result_dir(out_dir, label):
    """The folder of one submission's results under out_dir."""
    return Path(out_dir) / re.sub(r"[^A-Za-z0-9_.-]", "_", label)


def main(argv=None):

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zips", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per step of one submission")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the real Speech Commands dataset, for models trained on it (models trained on the "
                             "synthetic set are measured on the synthetic set of their recipe)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir

    submissions = [s for path in args.zips for s in find_submissions(path)]
    print(f"Grading {len(submissions)} submission(s) with {max(1, args.jobs)} job(s) ...", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(grade_one, *s, args.out, data_dir, args.timeout) for s in submissions]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            print(f"[{done}/{len(futures)}] graded {future.result()['submission']}", flush=True)
        rows = [future.result() for future in futures]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(args.out / "results.csv", text.getvalue())
    for row in rows:
        print(f"{row['submission']}: {row.get('tests_passed', 0)}/{row.get('tests_total', 0)} tests, "
              f"challenge {'passed' if row.get('challenge_passed') else 'not passed'}"
              + (f" ({row['error']})" if row.get("error") else ""))
    print(f"Results in {args.out / 'results.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
