"""The jail, second round (#23): hostile submissions that read the grader's code first.

Each test is one attack that got through before, run against both jails: bubblewrap's whitelist
(skipped where bubblewrap is missing: `apt-get install bubblewrap`) and the namespace fallback
(skipped where unshare may not make namespaces). A secret marker planted where the student must
not look is searched for in everything the attack hands back. The grader's own guards (replies,
memory, messages) are tested in whichever jail is in force, or none.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from instructor import grade, jail, kit

SKIP_REASONS = {
    "bubblewrap": "bubblewrap is not installed or may not make namespaces here "
                  "(Debian/Ubuntu: apt-get install bubblewrap)",
    "namespaces": "unshare may not make namespaces here",
}


@pytest.fixture(params=["bubblewrap", "namespaces"])
def mode(request, monkeypatch):
    """Runs the test in one jail (MICROKWS_JAIL=namespaces forces the fallback where bwrap exists)."""
    if request.param == "namespaces":
        monkeypatch.setenv("MICROKWS_JAIL", "namespaces")
    else:
        monkeypatch.delenv("MICROKWS_JAIL", raising=False)
    jail.jail_mode.cache_clear()
    try:
        if jail.jail_mode() != request.param:
            pytest.skip(SKIP_REASONS[request.param])
        yield request.param
    finally:
        monkeypatch.undo()
        jail.jail_mode.cache_clear()


@pytest.fixture
def marker():
    return f"microkws_secret_{secrets.token_hex(8)}"


@pytest.fixture
def batch(tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    return folder


@pytest.fixture
def probe(batch):
    """make(source, name="one"): a submission whose student/probe.py holds source; (its folder, its worker)."""
    workers = []

    def make(source, name="one", hide=()):
        own = batch / name
        (own / "scratch").mkdir(parents=True)
        (own / "kit" / "tests" / "student").mkdir(parents=True)
        (own / "student_code" / "student").mkdir(parents=True)
        (own / "student_code" / "student" / "probe.py").write_text(textwrap.dedent(source))
        worker = jail.StudentProcess(own, own / "student_code", own / "kit", call_seconds=60, cpu_seconds=120,
                                     hide=hide)
        workers.append(worker)
        return own, worker

    yield make
    for worker in workers:
        worker.close()


def call(worker, function, *args):
    from instructor.student_worker import encode

    return worker.request({"module": "probe", "function": function, "args": encode(list(args))})


# A student function that tries every way it knows to read a path, and hands back all it got.
READER = """
    import os, subprocess

    def read(paths):
        found = []
        for path in paths:
            try:
                if os.path.isdir(path):
                    for folder, _, files in os.walk(path):
                        for name in files:
                            found.append(open(os.path.join(folder, name), errors="replace").read())
                else:
                    found.append(open(path, errors="replace").read())
            except OSError as error:
                found.append(error.strerror)
        return "\\n".join(found)

    def git(git_dir, revision):
        run = subprocess.run(["git", "--git-dir", git_dir, "show", revision], capture_output=True, text=True)
        return run.stdout + run.stderr

    def mounts():
        return open("/proc/self/mounts").read()
"""


def _kit_git_dir():
    found = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=kit.ROOT,
                           capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


# --- 1. What the student must not read ------------------------------------------------------------


def test_the_kits_history_does_not_reach_the_student(mode, probe):
    git_dir = _kit_git_dir()
    if not git_dir:
        pytest.skip("the kit is not a git clone here")
    solution = subprocess.run(["git", "--git-dir", git_dir, "show", "HEAD:instructor/solution/estimate.py"],
                              capture_output=True, text=True).stdout
    telling = max(solution.splitlines(), key=len)  # one line of the reference solution
    _, worker = probe(READER)
    assert telling not in call(worker, "git", git_dir, "HEAD:instructor/solution/estimate.py")
    assert telling not in call(worker, "git", str(kit.ROOT / ".git"), "HEAD:instructor/solution/estimate.py")
    assert telling not in call(worker, "read", [git_dir, str(kit.ROOT / "instructor")])


def test_other_submissions_earlier_results_and_grading_tests_are_out_of_reach(mode, probe, batch, tmp_path, marker):
    earlier = tmp_path / "earlier-results"  # an earlier batch's --out: the current run does not know it
    earlier.mkdir()
    (earlier / "results.csv").write_text(f"submission,score\nsomeone,{marker}\n")
    current = tmp_path / "results"  # this run's --out, which the grader hides
    current.mkdir()
    (current / "results.csv").write_text(f"submission,score\nsomeone,{marker}\n")
    other, _ = probe("def f():\n    return 1\n", name="other")
    (other / "kit" / "student" / "answers.md").parent.mkdir(parents=True)
    (other / "kit" / "student" / "answers.md").write_text(f"# Answers\n{marker}\n")
    own, worker = probe(READER, hide=[current])
    (own / "kit" / "tests" / "student" / "grading_test_secret.py").write_text(f"# {marker}\n")
    paths = [earlier, current, other, own / "kit" / "tests", batch]
    if mode == "namespaces":
        paths.remove(earlier)  # the blacklist hides only what the grader names: bubblewrap's whitelist is needed
    seen = call(worker, "read", [str(path) for path in paths])
    assert marker not in seen


def test_the_mount_table_names_no_hidden_folder(mode, probe, batch, tmp_path):
    if mode == "namespaces":
        pytest.skip("the namespace fallback hides folders by mounting over them: its mount table lists them "
                    "(bubblewrap's whitelist has nothing to hide)")
    results = tmp_path / "results"
    results.mkdir()
    probe("def f():\n    return 1\n", name="other")
    _, worker = probe(READER, hide=[results])
    table = call(worker, "mounts")
    hidden = [str(results), str(batch / "other"), str(kit.ROOT / "instructor"),
              _kit_git_dir() or str(kit.ROOT / ".git")]
    mount_points = [line.split()[1] for line in table.splitlines() if line.strip()]
    shown = [point for point in mount_points for path in hidden if point == path or point.startswith(path + "/")]
    assert not shown, table


# --- 2. Host services ----------------------------------------------------------------------------


CONNECTOR = """
    import socket

    def connect(address):
        client = socket.socket(socket.AF_UNIX)
        client.settimeout(2)
        try:
            client.connect(address.encode("latin-1") if address.startswith("\\0") else address)
            return "connected"
        except OSError as error:
            return type(error).__name__
        finally:
            client.close()

    def user():
        import os
        return os.getuid(), os.getgid(), os.getgroups()
"""


def _listener(address):
    server = socket.socket(socket.AF_UNIX)
    server.bind(address)
    server.listen()
    server.settimeout(0.5)
    return server


def test_a_unix_socket_of_the_host_cannot_be_reached(mode, probe, tmp_path):
    if mode == "namespaces":
        pytest.skip("the namespace fallback shows the host's files read-only, and a read-only file system does "
                    "not stop connect() on a socket there (bubblewrap's fresh root holds no socket)")
    path = tmp_path / "host.sock"
    server = _listener(str(path))
    os.chmod(path, 0o777)  # even a socket anyone may use
    _, worker = probe(CONNECTOR)
    try:
        assert call(worker, "connect", str(path)) != "connected"
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_an_abstract_socket_of_the_host_cannot_be_reached(mode, probe):
    name = f"\0microkws-test-{os.getpid()}-{time.time_ns()}"
    server = _listener(name.encode())
    _, worker = probe(CONNECTOR)
    try:
        assert call(worker, "connect", name) != "connected"  # the network namespace has its own
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_student_code_runs_as_nobody(mode, probe):
    if mode == "namespaces":
        pytest.skip("the namespace fallback keeps the grader's uid (without capabilities)")
    _, worker = probe(CONNECTOR)
    uid, gid, groups = call(worker, "user")
    assert (uid, gid) == (jail.JAILED_UID, jail.JAILED_UID) and set(groups) <= {jail.JAILED_UID}


SHARED_MEMORY = """
    import ctypes

    def make_segments(key, count):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget.restype = ctypes.c_int
        made = []
        for index in range(count):
            made.append(libc.shmget(ctypes.c_int(key + index), ctypes.c_size_t(1 << 20), ctypes.c_int(0o1000 | 0o666)))
        return made
"""


def _host_segment_keys():
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {int(line.split()[0]) for line in lines}


@pytest.mark.skipif(not Path("/proc/sysvipc/shm").exists(), reason="no /proc/sysvipc/shm (not Linux)")
def test_shared_memory_made_inside_does_not_outlive_the_worker(mode, probe):
    key = 0x4D4B0000 + os.getpid() % 0xFFFF * 4
    before = _host_segment_keys()
    _, worker = probe(SHARED_MEMORY)
    made = call(worker, "make_segments", key, 4)
    assert all(identifier >= 0 for identifier in made), made  # they were made, in the jail's own IPC namespace
    assert not {key + index for index in range(4)} & _host_segment_keys()
    worker.close()
    assert _host_segment_keys() <= before


def test_a_submission_copied_under_a_closed_umask_still_runs(mode, probe):
    previous = os.umask(0o077)  # a grader whose files only it may read
    try:
        _, worker = probe("def answer():\n    return 42\n")
    finally:
        os.umask(previous)
    assert call(worker, "answer") == 42


# --- 3. The grader's side: replies, memory, messages ---------------------------------------------


UNASKED = """
    import fcntl, os, threading, time

    def reply_channel():
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                is_pipe = os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
            except OSError:
                continue
            if fd > 2 and is_pipe and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                return fd

    def chatter():
        def later():
            time.sleep(1)
            os.write(reply_channel(), b'{"value": 100}\\n')
        threading.Thread(target=later).start()
        return 1

    def fine():
        return 2
"""


def test_a_worker_that_writes_unasked_is_killed(probe):
    _, worker = probe(UNASKED)
    assert call(worker, "chatter") == 1
    first = worker.process
    first.wait(timeout=30)  # killed by the grader when its unasked line arrived
    assert call(worker, "fine") == 2 and worker.process is not first  # the next call gets a fresh worker


HUGE = """
    import json, sys

    def huge_text():
        return "x" * (20 * 2**20)

    def huge_model():
        # Replaces the worker's encoder: the reply names a model too large to build, with no weights.
        config = {"module": "keras", "class_name": "Sequential", "config": {"name": "huge", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer",
             "config": {"batch_shape": [None, 1000], "name": "in"}},
            {"module": "keras.layers", "class_name": "Dense", "config": {"units": 900000, "name": "wide"}}]}}
        sys.modules["__main__"].encode = lambda value: {"__keras_model__": json.dumps(config), "weights": []}
        return None
"""


def test_a_reply_over_the_cap_is_refused(probe):
    _, worker = probe(HUGE)
    with pytest.raises(jail.StudentCodeError, match="over 16 MiB"):
        call(worker, "huge_text")


@pytest.mark.slow  # starts TensorFlow in a grader process
def test_a_huge_returned_model_is_refused_within_the_graders_memory_limit(batch):
    """In a grader process started as the grading plugin starts it: memory capped from its start."""
    own = batch / "one"
    (own / "scratch").mkdir(parents=True)
    (own / "kit").mkdir()
    (own / "student_code" / "student").mkdir(parents=True)
    (own / "student_code" / "student" / "probe.py").write_text(textwrap.dedent(HUGE))
    script = textwrap.dedent("""
        import resource
        from instructor import grading_plugin, jail
        assert resource.getrlimit(resource.RLIMIT_AS)[0] == jail.GRADER_MEMORY_BYTES
        try:
            grading_plugin._worker.request({"module": "probe", "function": "huge_model", "args": []})
            print("built")
        except jail.StudentCodeError as error:
            print("refused:", error)
        finally:
            grading_plugin._worker.close()
        peak = int(open("/proc/self/status").read().split("VmPeak:")[1].split()[0]) * 1024
        print("peak", peak)
    """)
    environment = {**os.environ, "PYTHONPATH": str(kit.ROOT), "MICROKWS_SUBMISSION_DIR": str(own),
                   "MICROKWS_STUDENT_CODE": str(own / "student_code")}
    run = subprocess.run([sys.executable, "-c", script], cwd=own / "kit", env=environment, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "refused: the value handed back is not one the grader takes" in run.stdout, run.stdout
    assert int(run.stdout.split("peak")[1]) <= jail.GRADER_MEMORY_BYTES


def test_failure_messages_describe_values_and_never_show_them(marker):
    received = [marker, {"recall": marker}, [marker] * 3, __import__("numpy").zeros((2, 3), "float32")]
    try:
        assert received[0] == "expected"
    except AssertionError:
        excinfo = pytest.ExceptionInfo.from_current()
    message = jail.failure_message("tests/student/test_student_metrics.py::test_recall",
                                          "test_recall", excinfo, received)
    assert marker not in message
    assert "str of 32 characters" in message and "float32 of shape (2, 3)" in message
    assert len(message) <= jail.MESSAGE_CAP


def test_a_grading_only_test_fails_without_showing_where():
    try:
        assert 12345 == 54321
    except AssertionError:
        excinfo = pytest.ExceptionInfo.from_current()
    message = jail.failure_message("tests/student/grading_test_estimate_exact.py::test_rom_of_a_case",
                                   "test_rom_of_a_case", excinfo, [7])
    assert message == "a grading-only check: a check failed; the student code handed back: int"


def test_a_test_over_its_time_limit_says_so():
    try:
        pytest.fail("test_recall: the call ran over 120 s (an endless loop?)", pytrace=False)
    except pytest.fail.Exception:
        excinfo = pytest.ExceptionInfo.from_current()
    message = jail.failure_message("tests/student/test_student_metrics.py::test_recall", "test_recall", excinfo, [])
    assert message.startswith("recall: ran over its time limit of 120 s")


# --- End to end: what the student sees ------------------------------------------------------------


def _metrics_only_kit(own):
    """A submission folder as grade_one makes it, with only the metrics tests (the quick ones)."""
    kit_dir = kit.copy_kit(own / "kit")
    for stub in (kit_dir / "student").glob("*.py"):
        stub.unlink()
    for test in (kit_dir / "tests" / "student").glob("test_*.py"):
        if test.name != "test_student_metrics.py":
            test.unlink()
    return kit_dir


@pytest.mark.slow  # runs the metrics tests through the grader's pytest
def test_a_returned_secret_never_reaches_the_results(batch, marker):
    """In the jail in force (the messages are written by the grader, whichever jail it is)."""
    own = batch / "submission"
    (own / "scratch").mkdir(parents=True)
    kit_dir = _metrics_only_kit(own)
    code = own / "student_code" / "student"
    code.mkdir(parents=True)
    (code / "metrics.py").write_text(textwrap.dedent(f"""
        import os, sys
        SECRET = "{marker}"

        class {marker}(Exception):
            pass

        def get_student_metrics(matrix, idx):
            if idx == 2:
                return {{"recall": SECRET, "precision": SECRET, "f1_score": SECRET}}
            if idx == 3:
                raise ValueError(SECRET)
            if idx == 1 and len(matrix) == 4:
                raise {marker}(SECRET)
            print(SECRET, file=sys.stderr)
            os._exit(1)
    """))
    tests = grade.run_tests(own, kit_dir, own / "student_code", timeout=600)
    assert len(tests) >= 9 and {t["status"] for t in tests} == {"failed"}, tests
    assert marker not in json.dumps(tests)
    assert marker not in (own / "student-tests.xml").read_text()
    recall = next(t for t in tests if t["name"] == "test_recall_reads_the_class_row_and_precision_its_column")
    assert "dict of 3 items (keys str, values str)" in recall["output"], recall
    assert "test_student_metrics.py line" in recall["output"], recall


def test_the_mode_line_says_how_to_get_the_whitelist_jail(mode):
    line = jail.isolation()
    assert line.startswith(mode)
    if mode == "namespaces":
        assert "apt-get install bubblewrap" in line
