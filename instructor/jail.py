"""Student code in a jail, reached only through values: the grader's side.

Threat model (docs/grading.md): a submission may hold any Python code, written to change its own or
anyone else's grade, to read the reference solution, to stop the batch or to leave something
running. So:

- The verdict is decided by a process that never runs student code: the grader's pytest, in which
  `student.*` modules are stand-ins (StudentModules) that forward each call to a worker process
  (instructor/student_worker.py) and compare the plain values it hands back.
- That worker, and the measurement of a submitted model file, run in a jail (jail_command): on
  Linux with `unshare` (as root, or as any user where unprivileged user namespaces are allowed)
  in their own mount, PID and network namespaces: every file system read-only, other submissions,
  the results and instructor/ out of sight, no network, no capabilities, and everything they started
  killed with them. Everywhere, limits on CPU time, memory and file size (resource limits).
  `isolation()` says which of these is in force; the grader prints it.
"""

import functools
import importlib.abc
import importlib.machinery
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "student_worker.py"
KIT_ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP_BYTES = 6 * 2**30  # address space of a jailed process (TensorFlow alone reserves about 2 GiB)
FILE_CAP_BYTES = 64 * 2**20  # largest file (or output) a jailed process may write
SCRATCH_BYTES = 512 * 2**20  # its writable scratch space (HOME, TMPDIR), in memory, gone when it ends
REPLY_CAP_BYTES = 256 * 2**20  # largest reply the grader reads from a worker

# Run as the jail's first command (still with the namespaces' privileges), then drops them all.
# $1: the submission's folder, shown in place of its parent (so other submissions are out of sight);
# $2: that parent; $3: a writable folder inside it ("" for none); then folders to hide; "--"; the command.
_SETUP = r"""
set -e
own=$1 root=$2 writable=$3; shift 3
mount --bind "$own" "$root"
while [ "$1" != "--" ]; do mount -t tmpfs -o size=4k,mode=000 hidden "$1"; shift; done; shift
while read -r _ point _; do
  case $point in /proc*|/sys*|/dev*) mount -o remount,bind,ro "$point" 2>/dev/null || true ;;
                 *) mount -o remount,bind,ro "$point" ;; esac
done < /proc/self/mounts
mount -t tmpfs -o size=$SCRATCH_BYTES scratch "$root/scratch"
if [ -n "$writable" ]; then mount --bind "$writable" "$writable"; mount -o remount,bind,rw "$writable"; fi
exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all "$@"
"""


@functools.lru_cache(maxsize=None)
def namespaces_available():
    """Whether the whole jail works on this machine: probed once, by jailing `true`.
    MICROKWS_JAIL=off turns it off (to see what a machine without namespaces does)."""
    if os.environ.get("MICROKWS_JAIL") == "off":
        return False
    if not (sys.platform.startswith("linux") and shutil.which("unshare") and shutil.which("setpriv")):
        return False
    import tempfile

    with tempfile.TemporaryDirectory(prefix="microkws-jail-probe-") as batch:
        own = Path(batch) / "submission"
        (own / "scratch").mkdir(parents=True)
        try:
            probe = subprocess.run(_jailed(["true"], own, "", []), capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return probe.returncode == 0


def _unshare():
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]


def isolation():
    """What confines student code here, in one sentence for the grader's output."""
    limits = (f"CPU time, {MEMORY_CAP_BYTES // 2**30} GiB of memory and {FILE_CAP_BYTES // 2**20} MiB per file; "
              "the verdict is decided outside it, from the values its functions return")
    if namespaces_available():
        return ("namespaces: every file read-only, other submissions, the results and instructor/ hidden, "
                f"no network, no capabilities, killed with everything it started; {limits}")
    if os.name == "posix":
        return ("own process group, killed with everything it started, but NO namespaces (unshare is missing "
                "or not permitted here): student code can read and write what the grader's user can; "
                f"grade in a container or on Linux with user namespaces for more; {limits}")
    return (f"a plain process with a time limit (no process groups or limits on {sys.platform}); grade on Linux "
            "for a jail; the verdict is still decided outside student code")


def jail_command(command, own_dir, writable=None, hide=()):
    """command wrapped in the jail (when namespaces are available), as it runs from own_dir.

    Inside, own_dir's contents appear at its parent's path: `inside(own_dir, path)` maps a path.
    hide: folders made invisible (instructor/ is always among them); writable: the one folder of
    own_dir the command may write to (its scratch space aside).
    """
    if not namespaces_available():
        return list(command)
    hidden = {Path(p).resolve() for p in [KIT_ROOT / "instructor", *hide] if Path(p).is_dir()}
    hidden = [str(p) for p in sorted(hidden) if not any(other in p.parents for other in hidden)]  # outermost
    return _jailed(command, Path(own_dir), str(inside(own_dir, writable)) if writable else "", hidden)


def _jailed(command, own_dir, inner_writable, hidden):
    setup = f"SCRATCH_BYTES={SCRATCH_BYTES}\n{_SETUP}"
    return [*_unshare(), "sh", "-c", setup, "jail", str(own_dir), str(own_dir.parent), inner_writable,
            *hidden, "--", *command]


def inside(own_dir, path):
    """Where path (in own_dir) is seen inside the jail: own_dir's contents stand at its parent."""
    if not namespaces_available():
        return Path(path)
    return Path(own_dir).parent / Path(path).relative_to(own_dir)


def jail_environment(own_dir):
    """The environment of a jailed process: no secrets of the grader's, a scratch HOME and TMPDIR."""
    scratch = str(inside(own_dir, Path(own_dir) / "scratch"))
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TF_CPP_MIN_LOG_LEVEL")
    environment = {key: os.environ[key] for key in keep if key in os.environ}
    environment.update(HOME=scratch, TMPDIR=scratch, MPLCONFIGDIR=scratch, KERAS_HOME=scratch,
                       PYTHONDONTWRITEBYTECODE="1", TF_CPP_MIN_LOG_LEVEL="2")
    return environment


def limits(cpu_seconds, file_bytes=FILE_CAP_BYTES, memory_bytes=MEMORY_CAP_BYTES):
    """preexec function (POSIX): limits on CPU time, file size and (unless None) memory; no core dumps."""
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    return apply


# --- The worker and the stand-in modules ------------------------------------------------------


class StudentCodeError(Exception):
    """A student function failed, hung or handed back something that is not a plain value."""


class StudentProcess:
    """The jailed worker of one submission: started on the first call, started anew after a failure."""

    def __init__(self, own_dir, student_code_dir, kit_dir, call_seconds, cpu_seconds, hide=()):
        self.own_dir, self.call_seconds, self.cpu_seconds, self.hide = Path(own_dir), call_seconds, cpu_seconds, hide
        self.student_code_dir, self.kit_dir = Path(student_code_dir), Path(kit_dir)
        self.process = None

    def _start(self):
        worker = self.own_dir / "worker" / WORKER.name
        worker.parent.mkdir(exist_ok=True)
        shutil.copy2(WORKER, worker)
        command = [sys.executable, str(inside(self.own_dir, worker)),
                   str(inside(self.own_dir, self.student_code_dir)), str(inside(self.own_dir, self.kit_dir))]
        self.log = open(self.own_dir / "worker.log", "wb")
        self.process = subprocess.Popen(
            jail_command(command, self.own_dir, hide=self.hide), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=jail_environment(self.own_dir), start_new_session=os.name == "posix",
            preexec_fn=limits(self.cpu_seconds) if os.name == "posix" else None)
        self.replies = queue.Queue()
        threading.Thread(target=self._read_replies, args=(self.process.stdout, self.replies), daemon=True).start()

    @staticmethod
    def _read_replies(stream, replies):
        while True:
            line = stream.readline(REPLY_CAP_BYTES)
            replies.put(line)
            if not line.endswith(b"\n"):
                return  # closed, or a reply over the cap: either way the worker is done

    def request(self, request):
        """Sends one request; returns the decoded value or raises StudentCodeError."""
        from instructor.student_worker import decode

        if self.process is not None and self.process.poll() is not None:
            self.close()  # it ended (or was ended) since the last call
        if self.process is None:
            self._start()
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            line = self.replies.get(timeout=self.call_seconds)
            reply = json.loads(line)
        except queue.Empty:
            self.close()
            raise StudentCodeError(f"no answer within {self.call_seconds:.0f} s (an endless loop?)") from None
        except BaseException as error:  # the worker died, wrote garbage, or the test was stopped meanwhile
            self.close()
            if isinstance(error, (OSError, ValueError)):
                raise StudentCodeError(f"the student code stopped answering ({self._log_tail()})") from None
            raise
        if not isinstance(reply, dict) or ("error" not in reply and "value" not in reply):
            raise StudentCodeError("the student code sent something that is not an answer")
        if "error" in reply:
            raise StudentCodeError(str(reply["error"]))
        try:
            return decode(reply["value"])
        except Exception as error:
            raise StudentCodeError(f"the value handed back is not one the grader takes: {error}") from None

    def _log_tail(self):
        try:
            return (self.own_dir / "worker.log").read_bytes()[-500:].decode("utf-8", "replace").strip() or "no output"
        except OSError:
            return "no output"

    def close(self):
        """Ends the worker and everything it started."""
        if self.process is None:
            return
        if os.name == "posix":
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.kill()
        self.process.wait()
        self.log.close()
        self.process = None


class StudentModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes `import student.<name>` give a stand-in module whose functions run in the worker.

    The stand-in knows the module's public names (asked when it is imported, so an import error
    shows at import as it would at home); calling one sends the call and returns the value.
    """

    def __init__(self, process):
        self.process = process

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "student" or fullname.startswith("student."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == "student")
        return None

    def create_module(self, spec):
        return types.ModuleType(spec.name)

    def exec_module(self, module):
        if module.__name__ == "student":
            module.__path__ = []
            return
        short = module.__name__.split(".", 1)[1]
        try:
            names = self.process.request({"module": short, "names": True})
        except StudentCodeError as error:
            raise ImportError(f"student/{short}.py could not be imported: {error}") from None
        for name in names:
            setattr(module, name, functools.partial(self.call, short, name))

    def call(self, module, function, *args):
        from instructor.student_worker import encode

        return self.process.request({"module": module, "function": function, "args": encode(list(args))})


def install(process):
    """From now on, `student.*` in this process are stand-ins talking to process."""
    for name in [n for n in sys.modules if n == "student" or n.startswith("student.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, StudentModules(process))
