"""instructor/jail.py: student code runs apart from the verdict, confined, and hands back values only.

Each test is a hostile or broken submission from issue #13's table. The jail's own guarantees
(read-only files, hidden folders, no network) need Linux namespaces: where neither bubblewrap nor
unshare may make them those tests are skipped, and the grader says so in its output.
test_jail_whitelist.py holds the second round (#23).
"""

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from instructor import grade, jail, kit

needs_namespaces = pytest.mark.skipif(not jail.namespaces_available(),
                                      reason="unshare cannot make namespaces on this machine")


@pytest.fixture
def batch(tmp_path):
    """A grading batch folder: every submission of a run has its folder in it."""
    folder = tmp_path / "batch"
    folder.mkdir()
    return folder


def submission(batch, name, probe_source):
    """A submission folder whose student/probe.py holds probe_source; returns (its folder, its worker)."""
    own = batch / name
    (own / "scratch").mkdir(parents=True)
    (own / "kit").mkdir()
    (own / "student_code" / "student").mkdir(parents=True)
    (own / "student_code" / "student" / "probe.py").write_text(textwrap.dedent(probe_source))
    return own, jail.StudentProcess(own, own / "student_code", own / "kit", call_seconds=60, cpu_seconds=120)


def call(worker, function, *args):
    from instructor.student_worker import encode

    return worker.request({"module": "probe", "function": function, "args": encode(list(args))})


@pytest.fixture
def probe(batch):
    """A worker of one submission with a given probe.py; closed after the test."""
    workers = []

    def make(source, name="one"):
        own, worker = submission(batch, name, source)
        workers.append(worker)
        return own, worker

    yield make
    for worker in workers:
        worker.close()


# --- Values, and only values, cross --------------------------------------------------------------


def test_values_come_back_with_their_types(probe):
    _, worker = probe("""
        import numpy as np
        def echo(*args):
            return args, np.float32(0.5), {1: [None, True, "x"]}, np.arange(6, dtype=np.int16).reshape(2, 3)
    """)
    (args, half, mapping, array) = call(worker, "echo", (1, 2.5), np.eye(2))
    assert args[0] == (1, 2.5) and args[1].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert type(half) is np.float32 and mapping == {1: [None, True, "x"]}
    assert array.dtype == np.int16 and array.shape == (2, 3)


def test_an_object_that_is_not_a_plain_value_is_refused(probe):
    _, worker = probe("""
        def sneaky():
            class Always:
                def __eq__(self, other):
                    return True
            return Always()
    """)
    with pytest.raises(jail.StudentCodeError, match="cannot be handed to the grader"):
        call(worker, "sneaky")


def test_a_model_with_python_code_in_it_is_refused(probe):
    _, worker = probe("""
        import keras
        def model():
            inputs = keras.Input((4,))
            return keras.Model(inputs, keras.layers.Lambda(lambda x: x * 0 + 1)(inputs))
    """)
    with pytest.raises(jail.StudentCodeError, match="not one the grader takes"):
        call(worker, "model")


def test_prints_of_student_code_stay_out_of_the_answers(probe):
    _, worker = probe("""
        import sys
        def chatty():
            print('{"value": 1000}')
            sys.stdout.write("x" * 100000 + "\\n")
            return 7
    """)
    assert call(worker, "chatty") == 7


def test_pytest_skip_in_a_student_function_is_a_failure_not_a_skip(probe):
    _, worker = probe("""
        import pytest
        def lazy():
            pytest.skip("nothing to see")
    """)
    with pytest.raises(jail.StudentCodeError, match="Skipped"):
        call(worker, "lazy")


def test_a_hanging_call_fails_and_the_next_call_gets_a_new_worker(batch):
    own, worker = submission(batch, "one", """
        import time
        def hang():
            while True:
                time.sleep(1)
        def fine():
            return 1
    """)
    worker.call_seconds = 2
    try:
        with pytest.raises(jail.StudentCodeError, match="no answer within 2 s"):
            call(worker, "hang")
        assert call(worker, "fine") == 1
    finally:
        worker.close()


@pytest.mark.skipif(os.name != "posix", reason="resource limits need POSIX")
def test_memory_over_the_cap_fails_that_call_only(probe):
    _, worker = probe("""
        def greedy():
            return len(bytearray(8 * 2**30))
        def fine():
            return 2
    """)
    with pytest.raises(jail.StudentCodeError, match="MemoryError"):
        call(worker, "greedy")
    assert call(worker, "fine") == 2


@needs_namespaces
def test_a_process_left_running_ends_with_the_worker(probe):
    marker = f"microkws-left-running-{os.getpid()}-{time.time_ns()}"
    _, worker = probe(f"""
        import subprocess, sys
        def detach():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "{marker}"], start_new_session=True)
            return True
    """)
    assert call(worker, "detach")
    worker.close()
    time.sleep(1)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout == b""


# --- The jail ------------------------------------------------------------------------------------


@needs_namespaces
def test_student_code_cannot_write_anywhere_but_its_scratch_space(probe):
    own, worker = probe("""
        import os
        def write(paths):
            results = []
            for path in paths:
                try:
                    with open(path, "a") as file:
                        file.write("changed")
                    results.append("written")
                except OSError as error:
                    results.append(error.strerror)
            return results
    """)
    kit_file = kit.ROOT / "challenge.toml"
    before = kit_file.read_bytes()
    scratch = str(jail.inside(own, own / "scratch" / "note.txt"))
    results = call(worker, "write", [str(kit_file), str(jail.inside(own, own / "kit" / "x.py")), scratch])
    refused = {"Read-only file system", "Permission denied", "No such file or directory"}  # by mode and uid
    assert results[0] in refused and results[1] in refused and results[2] == "written", results
    assert kit_file.read_bytes() == before and not (own / "kit" / "x.py").exists()


@needs_namespaces
def test_student_code_cannot_read_the_reference_solution(probe):
    _, worker = probe("""
        def peek(path):
            try:
                return open(path).read()
            except OSError as error:
                return error.strerror
    """)
    assert call(worker, "peek", str(kit.ROOT / "instructor" / "solution" / "metrics.py")) in (
        "Permission denied", "No such file or directory")  # hidden (namespaces) or absent (bubblewrap)


@needs_namespaces
def test_other_submissions_and_hidden_folders_are_out_of_sight(batch, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "results.csv").write_text("submission,score\n")
    other, _ = submission(batch, "other", "def secret():\n    return 42\n")
    own, worker = submission(batch, "one", """
        import os
        def look(paths):
            return [os.path.exists(path) for path in paths]
    """)
    worker.hide = [results]
    try:
        seen = call(worker, "look", [str(other / "student_code" / "student" / "probe.py"),
                                     str(batch / "other"), str(results / "results.csv")])
    finally:
        worker.close()
    assert seen == [False, False, False]


@needs_namespaces
def test_student_code_has_no_network(probe):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    _, worker = probe("""
        import socket
        def connect(port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return "connected"
            except OSError as error:
                return type(error).__name__
    """)
    try:
        assert call(worker, "connect", server.getsockname()[1]) != "connected"
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


@needs_namespaces
def test_student_code_sees_no_process_but_its_own(probe):
    _, worker = probe("""
        import os
        def processes():
            return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
    """)
    assert os.getpid() not in call(worker, "processes") and len(call(worker, "processes")) <= 3


# --- The verdict ---------------------------------------------------------------------------------


def kit_with_submission(batch, student_files):
    """A submission folder as grade_one makes it: the kit copy without student code, the submission's
    student/*.py (the reference solution, with student_files replacing some) beside it."""
    own = batch / "submission"
    (own / "scratch").mkdir(parents=True)
    kit_dir = kit.copy_kit(own / "kit")
    for stub in (kit_dir / "student").glob("*.py"):
        stub.unlink()
    code = own / "student_code" / "student"
    code.mkdir(parents=True)
    for relative in kit.STUDENT_FILES:
        name = Path(relative).name
        (code / name).write_text(student_files.get(name) or (kit.ROOT / "instructor" / "solution" / name).read_text())
    kit.add_grading_tests(kit_dir)
    return own, kit_dir


def verdicts(batch, student_files):
    own, kit_dir = kit_with_submission(batch, student_files)
    tests = grade.run_tests(own, kit_dir, own / "student_code", timeout=600)
    return {(t["group"], t["status"]) for t in tests}, tests


@pytest.mark.slow
def test_the_reference_solution_passes_every_test_through_the_worker(batch):
    statuses, tests = verdicts(batch, {})
    assert statuses == {(group, "passed") for group in ("metrics", "callbacks", "estimate", "model")}, tests


@pytest.mark.slow
def test_an_exit_handler_that_rewrites_the_report_changes_no_verdict(batch):
    stub = (kit.ROOT / "student" / "metrics.py").read_text()
    forged = ('<testsuites><testsuite name="pytest" tests="1"><testcase classname="tests.student.test_student_metrics" '
              'name="test_forged"/></testsuite></testsuites>')
    hostile = stub + textwrap.dedent(f"""
        import atexit, glob, os
        def forge():
            for path in glob.glob("/tmp/**/*.xml", recursive=True) + glob.glob(os.path.expanduser("~/*.xml")):
                try:
                    open(path, "w").write({forged!r})
                except OSError:
                    pass
        atexit.register(forge)
        forge()
    """)
    statuses, tests = verdicts(batch, {"metrics.py": hostile})
    metrics = [t for t in tests if t["group"] == "metrics"]
    assert len(metrics) >= 9 and all(t["status"] == "failed" for t in metrics)
    assert ("callbacks", "passed") in statuses and "test_forged" not in {t["name"] for t in tests}


@pytest.mark.slow
@needs_namespaces
def test_a_submission_that_kills_its_parent_at_import_fails_alone(batch):
    hostile = ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
               + (kit.ROOT / "student" / "metrics.py").read_text())
    statuses, tests = verdicts(batch, {"metrics.py": hostile})
    assert {s for g, s in statuses if g == "metrics"} == {"failed"}
    assert {s for g, s in statuses if g != "metrics"} == {"passed"}


def test_the_grader_says_which_isolation_is_in_force(tmp_path, capsys):
    (tmp_path / "a.zip").write_bytes(b"not a zip")
    grade.main([str(tmp_path / "a.zip"), "--out", str(tmp_path / "results")])
    assert "Student code runs in: " + jail.isolation() in capsys.readouterr().out


def test_results_and_the_submitted_zips_are_hidden_unless_the_kit_needs_them(tmp_path):
    inbox, results = tmp_path / "inbox", tmp_path / "results"
    assert grade.folders_to_hide([results, inbox, kit.ROOT.parent], needed=[kit.ROOT, sys.prefix]) == sorted(
        [str(inbox.resolve()), str(results.resolve())])


def test_the_worker_file_needs_nothing_from_instructor():
    source = jail.WORKER.read_text()
    assert "instructor" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))


@pytest.mark.slow
def test_a_helper_module_the_student_added_is_graded_with_their_files(batch):
    own, kit_dir = kit_with_submission(batch, {})
    code = own / "student_code" / "student"
    (code / "helpers.py").write_text((code / "metrics.py").read_text())
    (code / "metrics.py").write_text("from student.helpers import get_student_metrics  # noqa: F401\n")
    tests = grade.run_tests(own, kit_dir, own / "student_code", timeout=600)
    assert {t["status"] for t in tests if t["group"] == "metrics"} == {"passed"}


@pytest.mark.slow
def test_without_namespaces_the_verdict_is_still_decided_outside_student_code(batch, monkeypatch):
    monkeypatch.setenv("MICROKWS_JAIL", "off")
    jail.jail_mode.cache_clear()
    try:
        statuses, tests = verdicts(batch, {"metrics.py": (kit.ROOT / "student" / "metrics.py").read_text()
                                           + "import pytest\npytest.skip('nothing here', allow_module_level=True)\n"})
    finally:
        monkeypatch.delenv("MICROKWS_JAIL")
        jail.jail_mode.cache_clear()
    assert {s for g, s in statuses if g == "metrics"} == {"failed"}
    assert {s for g, s in statuses if g != "metrics"} == {"passed"}


def test_the_grader_refuses_to_start_where_no_jail_works(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(jail, "jail_mode", lambda: "")
    monkeypatch.delenv("MICROKWS_JAIL", raising=False)
    submission = tmp_path / "submission.zip"
    submission.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: never reached
    with pytest.raises(SystemExit) as stopped:
        grade.main([str(submission), "--out", str(tmp_path / "results")])
    assert stopped.value.code == 2 and "No jail works" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_grading_without_a_jail_is_the_grader_s_explicit_choice(monkeypatch):
    monkeypatch.setattr(jail, "jail_mode", lambda: "")
    monkeypatch.setenv("MICROKWS_JAIL", "off")
    assert jail.missing_jail_problem() is None
    monkeypatch.setattr(jail, "jail_mode", lambda: "bubblewrap")
    monkeypatch.delenv("MICROKWS_JAIL")
    assert jail.missing_jail_problem() is None
