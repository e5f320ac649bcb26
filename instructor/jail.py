"""Student code in a jail, reached only through values: the grader's side.

Threat model (docs/grading.md): a submission may hold any Python code, written to change its own or
anyone else's grade, to read the reference solution, other students' work or earlier results, to
reach a service of the host, to stop the batch or to leave something running. So:

- The verdict is decided by a process that never runs student code: the grader's pytest, in which
  `student.*` modules are stand-ins (StudentModules) that forward each call to a worker process
  (instructor/student_worker.py) and compare the plain values it hands back (one reply per request,
  each under REPLY_CAP_BYTES; a worker that writes unasked is killed).
- That worker, and the measurement of a submitted model file, run in a jail (jail_command), the
  best this machine allows (`jail_mode()`; the grader prints `isolation()`):
  "bubblewrap": a whitelist. A fresh root holding only read-only binds of the system's /usr, the
  Python prefix and venv, the kit's public files (no .git, no instructor/, no tests), the dataset
  and what the command reads of its own submission; own user, IPC, UTS, network, PID and mount
  namespaces; uid 65534 (nobody) without capabilities, also when the grader is root.
  "namespaces" (the fallback where bubblewrap is missing): `unshare` of mount, PID, network, IPC
  and UTS namespaces; every file system read-only, a blacklist of hidden folders.
  Everywhere: limits on CPU time, memory and file size (resource limits).
"""

import functools
import importlib.abc
import importlib.machinery
import json
import os
import queue
import re
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
GRADER_MEMORY_BYTES = 4 * 2**30  # address space of the grader's own pytest (TensorFlow and the decoded values)
FILE_CAP_BYTES = 64 * 2**20  # largest file (or output) a jailed process may write
SCRATCH_BYTES = 512 * 2**20  # its writable scratch space (HOME, TMPDIR), in memory, gone when it ends
REPLY_CAP_BYTES = 16 * 2**20  # largest reply the grader reads from a worker (a model's weights as JSON fit)
JAILED_UID = 65534  # nobody: the user student code runs as in the bubblewrap jail
INSTALL_BUBBLEWRAP = "install bubblewrap for the whitelist jail (Debian/Ubuntu: sudo apt-get install bubblewrap)"

# The namespace fallback's first command (still with the namespaces' privileges), then drops them all.
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
def jail_mode():
    """The jail that works on this machine, probed once by running Python in it: "bubblewrap",
    "namespaces" or "" (none). MICROKWS_JAIL=off turns it off, MICROKWS_JAIL=namespaces skips
    bubblewrap (to see what a machine without it does)."""
    wanted = os.environ.get("MICROKWS_JAIL", "")
    if wanted == "off" or not sys.platform.startswith("linux"):
        return ""
    import tempfile

    for mode in ("bubblewrap", "namespaces"):
        if mode == "bubblewrap" and (wanted == "namespaces" or not shutil.which("bwrap")):
            continue
        if mode == "namespaces" and not (shutil.which("unshare") and shutil.which("setpriv")):
            continue
        with tempfile.TemporaryDirectory(prefix="microkws-jail-probe-") as batch:
            own = Path(batch) / "submission"
            (own / "scratch").mkdir(parents=True)
            python = [sys.executable, "-c", "import sys"]
            command = (_bubblewrap(python, own, None, [], [own / "scratch"]) if mode == "bubblewrap"
                       else _jailed(python, own, "", []))
            try:
                if subprocess.run(command, capture_output=True, timeout=60).returncode == 0:
                    return mode
            except (OSError, subprocess.TimeoutExpired):
                pass
    return ""


def namespaces_available():
    """Whether student code runs in namespaces here (either jail)."""
    return jail_mode() != ""


def missing_jail_problem():
    """Why the grader must not start here, or None: no jail works (bubblewrap and unshare missing or
    not permitted) and nobody said to grade without one. Student code would then run as the grader's
    user, read the reference solution and rewrite what the grader reads back: forged full marks."""
    if jail_mode() or os.environ.get("MICROKWS_JAIL") == "off":
        return None
    return ("No jail works on this machine (bubblewrap and unshare are missing or not permitted), so student "
            "code would run as the grader's user: it could read the reference solution and forge its own "
            f"results. Fix it: {INSTALL_BUBBLEWRAP}, or grade in a container started with --cap-add SYS_ADMIN "
            "--security-opt seccomp=unconfined. To grade without a jail anyway, trusting every submission, "
            "set MICROKWS_JAIL=off.")


def isolation():
    """What confines student code here, in one sentence for the grader's output."""
    limits = (f"CPU time, {MEMORY_CAP_BYTES // 2**30} GiB of memory and {FILE_CAP_BYTES // 2**20} MiB per file; "
              "the verdict is decided outside it, from the values its functions return")
    if jail_mode() == "bubblewrap":
        return ("bubblewrap (whitelist): a fresh root with only the system, Python and the kit's public files "
                "read-only, and its own submission; own mount, IPC, UTS, network and process namespaces, "
                + ("a real uid" if os.geteuid() == 0 else "a user namespace, uid")
                + f" {JAILED_UID} (nobody) without capabilities, no host sockets; {limits}")
    if jail_mode() == "namespaces":
        return ("namespaces (unshare; bubblewrap is missing or not permitted: " + INSTALL_BUBBLEWRAP + "): "
                "every file read-only, other submissions, the results, .git and instructor/ hidden, own IPC, "
                "no network, no capabilities, killed with everything it started; " + limits)
    if os.name == "posix":
        return ("own process group, killed with everything it started, but NO namespaces (bubblewrap and unshare "
                "are missing or not permitted here): student code can read and write what the grader's user can; "
                f"{INSTALL_BUBBLEWRAP}, or grade in a container; {limits}")
    return (f"a plain process with a time limit (no process groups or limits on {sys.platform}); grade on Linux "
            "for a jail; the verdict is still decided outside student code")


def jail_command(command, own_dir, writable=None, hide=(), readable=None, data=()):
    """command wrapped in the jail (when there is one), as it runs from own_dir.

    `inside(own_dir, path)` maps a path of own_dir to where the command sees it. hide: folders made
    invisible (instructor/ and the kit's .git always are); writable: the one folder of own_dir the
    command may write to (its scratch space aside); readable (bubblewrap only): what it reads of
    own_dir, default all of it; data (bubblewrap only): folders of data it reads, such as the
    dataset. An entry inside a hidden folder is left out.
    """
    mode = jail_mode()
    if not mode:
        return list(command)
    hidden = {Path(p).resolve() for p in [KIT_ROOT / "instructor", _git_dir(), *hide] if p and Path(p).is_dir()}
    hidden = sorted(p for p in hidden if not any(other in p.parents for other in hidden))  # outermost
    own_dir = Path(own_dir)
    if mode == "bubblewrap":
        if readable is None:
            readable = [path for path in own_dir.iterdir() if path.name != "scratch"]
        readable = [Path(p) for p in [*readable, *data] if p and not _under(Path(p).resolve(), hidden)]
        masked = [h for h in hidden if any(Path(p).resolve() in h.parents for p in readable)]
        return _bubblewrap(command, own_dir, writable, readable, [own_dir / "scratch"], masked)
    own = own_dir.resolve()
    seen = [inside(own, p) if own in p.parents else p for p in hidden]  # where they are once own_dir is moved
    return _jailed(command, own_dir, str(inside(own_dir, writable)) if writable else "", [str(p) for p in seen])


def _under(path, folders):
    """Whether path is one of folders or lies inside one."""
    return any(folder == path or folder in path.parents for folder in folders)


@functools.lru_cache(maxsize=None)
def _git_dir():
    """The kit's git folder (a worktree's .git is a file naming it), or None: the history holds instructor/."""
    try:
        found = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=KIT_ROOT,
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        found = None
    if found is not None and found.returncode == 0 and found.stdout.strip():
        return Path(found.stdout.strip())
    return KIT_ROOT / ".git" if (KIT_ROOT / ".git").is_dir() else None


# --- bubblewrap: a fresh root holding only what is needed ----------------------------------------


def _bubblewrap(command, own_dir, writable, readable, scratch, masked=()):
    """The bwrap command line: system and Python read-only, the kit's public files, readable (with
    the masked folders in it emptied), scratch space(s) in memory, writable bound read-write; then
    command as uid JAILED_UID."""
    root = os.geteuid() == 0
    arguments = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--hostname", "jail", "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev"]
    if root:  # bwrap keeps uid 0 without a user namespace: setpriv becomes nobody (these caps are its only ones)
        arguments += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:  # a user namespace: uid JAILED_UID inside is the grader's own (unprivileged) user outside
        arguments += ["--unshare-user", "--uid", str(JAILED_UID), "--gid", str(JAILED_UID), "--disable-userns"]
    made = set()

    def bind(source, target, option="--ro-bind"):
        for parent in reversed(Path(target).parents):  # made by bwrap they may be 0700, closed to nobody
            if str(parent) != "/" and parent not in made:
                arguments.extend(["--dir", str(parent)])
                made.add(parent)
        arguments.extend([option, str(source), str(target)])
        made.add(Path(target))

    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            arguments.extend(["--symlink", os.readlink(path), str(path)])
        elif path.is_dir():
            bind(path, path)
    bind("/usr", "/usr")
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime"):
        if (Path("/etc") / name).exists():
            bind(Path("/etc") / name, Path("/etc") / name)
    for prefix in _python_prefixes():
        bind(Path(prefix).resolve(), prefix)
    for relative in _public_kit_files():
        bind(KIT_ROOT / relative, KIT_ROOT / relative)
    if (KIT_ROOT / "datasets").is_dir():
        bind((KIT_ROOT / "datasets").resolve(), KIT_ROOT / "datasets")
    for path in readable:
        if Path(path).exists():
            if root and own_dir.resolve() in Path(path).resolve().parents:
                _readable_by_all(Path(path))  # copies made under any umask; the batch folder stays closed
            bind(Path(path).resolve(), Path(path).absolute())
    for path in masked:
        arguments.extend(["--perms", "0000", "--size", "4096", "--tmpfs", str(path)])
    for path in scratch:
        for parent in reversed(Path(path).parents):
            if str(parent) != "/" and parent not in made:
                arguments.extend(["--dir", str(parent)])
                made.add(parent)
        arguments.extend(["--perms", "1777", "--size", str(SCRATCH_BYTES), "--tmpfs", str(path)])
    if Path("/tmp") not in made:  # else /tmp holds the submission; TMPDIR names the scratch space anyway
        arguments.extend(["--symlink", str(scratch[0]), "/tmp"])
    if writable:
        if root:
            os.chown(writable, JAILED_UID, JAILED_UID)  # the one folder nobody may write to
        bind(Path(writable).resolve(), Path(writable).absolute(), "--bind")
    if root:
        command = ["setpriv", f"--reuid={JAILED_UID}", f"--regid={JAILED_UID}", "--clear-groups", "--no-new-privs",
                   "--bounding-set=-all", "--inh-caps=-all", *command]
    return [*arguments, "--", *command]


def _readable_by_all(path):
    """Lets nobody read path (a file or a whole folder of the submission's own copies)."""
    for item in [path, *(path.rglob("*") if path.is_dir() and not path.is_symlink() else [])]:
        if not item.is_symlink():
            mode = item.stat().st_mode
            item.chmod(mode | 0o444 | (0o111 if item.is_dir() else 0))


@functools.lru_cache(maxsize=None)
def _python_prefixes():
    """Where the running Python lives: the venv (at its path as named, which may be a link) and its base."""
    prefixes = []
    for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
        path = Path(prefix).absolute()
        if not _under(path, prefixes):
            prefixes.append(path)
    return tuple(prefixes)


@functools.lru_cache(maxsize=None)
def _public_kit_files():
    """The kit's files a jailed step may read: those a submission's copy gets, without tests/."""
    from instructor import kit

    return tuple(path for path in kit.kit_files(KIT_ROOT) if path.parts[0] not in ("instructor", "tests"))


# --- namespaces: unshare, everything read-only, a blacklist hidden -------------------------------


def _unshare():
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]


def _jailed(command, own_dir, inner_writable, hidden):
    setup = f"SCRATCH_BYTES={SCRATCH_BYTES}\n{_SETUP}"
    hidden = [*hidden, *(run for run in ("/run", "/var/run") if Path(run).is_dir() and not Path(run).is_symlink())]
    return [*_unshare(), "sh", "-c", setup, "jail", str(own_dir), str(own_dir.parent), inner_writable,
            *hidden, "--", *command]


def inside(own_dir, path):
    """Where path (in own_dir) is seen inside the jail: in the namespace jail own_dir's contents
    stand at its parent; bubblewrap shows them where they are."""
    if jail_mode() != "namespaces":
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


def limit_own_memory(memory_bytes=GRADER_MEMORY_BYTES):
    """Caps this process's address space (the grader's pytest, which decodes what workers send)."""
    if os.name == "posix":
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))


# --- The worker and the stand-in modules ------------------------------------------------------


class StudentCodeError(Exception):
    """A student function failed, hung or handed back something that is not a plain value.

    Its message is the grader's own words: never text the student code wrote (results.json is shown
    to the student, and student code could put in it whatever it read)."""


# The exception names a failure message may show: Python's own and pytest's; any other class is the
# student's, and its name is student text.
_KNOWN_EXCEPTIONS = {name for name, value in vars(__import__("builtins")).items()
                     if isinstance(value, type) and issubclass(value, BaseException)} | {"Skipped", "Failed", "Exit"}


def _raised(error_text):
    """What a worker's error reply may say in a failure message: the exception's name if it is Python's."""
    name = str(error_text).split(":", 1)[0].strip()
    return f"raised {name}" if name in _KNOWN_EXCEPTIONS else "raised an exception of its own class"


class StudentProcess:
    """The jailed worker of one submission: started on the first call, started anew after a failure.

    Exactly one reply per request, of at most REPLY_CAP_BYTES: a worker that writes a reply
    nobody asked for, or one over the cap, is killed (its call fails; the next call gets a new one).
    `received` holds the values handed back since it was last emptied (for failure messages).
    """

    def __init__(self, own_dir, student_code_dir, kit_dir, call_seconds, cpu_seconds, hide=()):
        self.own_dir, self.call_seconds, self.cpu_seconds, self.hide = Path(own_dir), call_seconds, cpu_seconds, hide
        self.student_code_dir, self.kit_dir = Path(student_code_dir), Path(kit_dir)
        self.process = None
        self.received = []

    def _start(self):
        worker = self.own_dir / "worker" / WORKER.name
        worker.parent.mkdir(exist_ok=True)
        shutil.copy2(WORKER, worker)
        command = [sys.executable, str(inside(self.own_dir, worker)),
                   str(inside(self.own_dir, self.student_code_dir)), str(inside(self.own_dir, self.kit_dir))]
        # What the worker reads: its own file, the student's code and the kit copy, without the tests
        # (the grading-only tests hold exact figures).
        readable = [worker.parent, self.student_code_dir, self.kit_dir]
        self.log = open(self.own_dir / "worker.log", "wb")
        self.process = subprocess.Popen(
            jail_command(command, self.own_dir, hide=[*self.hide, self.kit_dir / "tests"], readable=readable),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=jail_environment(self.own_dir), start_new_session=os.name == "posix",
            preexec_fn=limits(self.cpu_seconds) if os.name == "posix" else None)
        self.replies, self.asked = queue.Queue(), threading.Event()
        threading.Thread(target=self._read_replies, args=(self.process, self.replies, self.asked), daemon=True).start()

    @staticmethod
    def _read_replies(process, replies, asked):
        """Passes on one line per request; kills the worker for a line not asked for or over the cap."""
        while True:
            line = process.stdout.readline(REPLY_CAP_BYTES + 1)
            if not line:
                replies.put(("closed", None))
                return
            if not asked.is_set() or len(line) > REPLY_CAP_BYTES or not line.endswith(b"\n"):
                kill_group(process)
                replies.put(("unasked" if not asked.is_set() else "too long", None))
                return
            asked.clear()
            replies.put(("reply", line))

    def request(self, request):
        """Sends one request; returns the decoded value or raises StudentCodeError."""
        from instructor.student_worker import decode

        if self.process is not None and self.process.poll() is not None:
            self.close()  # it ended (or was ended) since the last call
        if self.process is None:
            self._start()
        try:
            self.asked.set()
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            kind, line = self.replies.get(timeout=self.call_seconds)
        except queue.Empty:
            self.close()
            raise StudentCodeError(f"no answer within {self.call_seconds:.0f} s (an endless loop?)") from None
        except BaseException as error:  # the worker died, or the test was stopped meanwhile
            self.close()
            if isinstance(error, OSError):
                raise StudentCodeError("the student code stopped answering (it ended or was killed)") from None
            raise
        if kind != "reply":
            self.close()
            raise StudentCodeError({"closed": "the student code stopped answering (it ended or was killed)",
                                    "unasked": "the student code wrote to the grader unasked, and was stopped",
                                    "too long": f"the student code's answer is over {REPLY_CAP_BYTES // 2**20} MiB, "
                                                "and was refused"}[kind])
        try:
            reply = json.loads(line)
        except ValueError:
            self.close()
            raise StudentCodeError("the student code sent something that is not an answer") from None
        if not isinstance(reply, dict) or ("error" not in reply and "value" not in reply):
            raise StudentCodeError("the student code sent something that is not an answer")
        if "error" in reply and reply.get("refused") is True:
            raise StudentCodeError("the value returned cannot be handed to the grader (plain values, arrays, "
                                   "Keras models and callbacks only)")
        if "error" in reply:
            raise StudentCodeError(f"the student code {_raised(reply['error'])}")
        try:
            value = decode(reply["value"])
        except Exception as error:  # noqa: BLE001 - whatever the value does to the decoder is the student's
            kind = type(error).__name__ if type(error).__name__ in _KNOWN_EXCEPTIONS else "an error"
            raise StudentCodeError(f"the value handed back is not one the grader takes ({kind} while reading it)") \
                from None
        self.received.append(value)
        return value

    def close(self):
        """Ends the worker and everything it started."""
        if self.process is None:
            return
        kill_group(self.process)
        self.process.wait()
        self.log.close()
        self.process = None


def kill_group(process):
    """Kills a worker and its process group (in a jail, everything it started dies with it)."""
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.kill()


SHOWN_NUMBER_CAP = 32  # larger lengths and dimensions are "more than 32" in a failure message


def describe(value):
    """A value's type and shape for a failure message, never its content: a student's returned text
    could be anything the student code read. Nor any large number: lengths and dimensions the
    student code chose could spell out what it read (an array with no elements of shape (0, 115,
    101, 99) is "sec"), so they are shown up to SHOWN_NUMBER_CAP, items by their type alone."""
    if isinstance(value, (bool, int, float, type(None))):
        return type(value).__name__
    if isinstance(value, str):
        return f"str of {_count(len(value))} characters"
    if isinstance(value, (list, tuple)):
        inner = sorted({_kind(item) for item in value[:50]})
        items = f" ({', '.join(inner[:3])}{', ...' if len(inner) > 3 else ''})" if inner else ""
        return f"{type(value).__name__} of {_count(len(value))} items{items}"
    if isinstance(value, dict):
        keys = sorted({_kind(key) for key in list(value)[:50]})
        values = sorted({_kind(item) for item in list(value.values())[:50]})
        kinds = f" (keys {'/'.join(keys[:3])}, values {'/'.join(values[:3])})" if value else ""
        return f"dict of {_count(len(value))} items{kinds}"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        dimensions = tuple(int(n) for n in shape if n is not None)
        small = len(dimensions) <= 3 and all(n <= SHOWN_NUMBER_CAP for n in dimensions)
        return f"{_kind(value)} {re.sub(r'[^a-z0-9]', '', str(dtype))[:10]} of " + (
            f"shape {dimensions}" if small else f"{_count(len(dimensions))} dimensions")
    return _kind(value)


def _kind(value):
    """A value's type name (the decoder makes only Python's, NumPy's and Keras's types)."""
    return re.sub(r"[^A-Za-z0-9_.]", "", type(value).__name__)[:40]


def _count(number):
    return str(number) if number <= SHOWN_NUMBER_CAP else f"more than {SHOWN_NUMBER_CAP}"


MESSAGE_CAP = 600  # characters of a failure message


def failure_message(nodeid, name, excinfo, received, what=None):
    """A failure message in the grader's words: which test (in words), where it stopped, and what
    the student code handed back (types and shapes only), capped and limited to plain characters."""
    test_file = nodeid.split("::")[0]
    # A grading-only test (tests/student/grading/ in the kit copy): its name and place are hidden
    # text too (a name may state the figure it checks), so it is "a grading-only check".
    hidden = "grading" in Path(test_file).parts[:-1] or Path(test_file).name.startswith("grading_")
    if what is None and excinfo is not None:
        if excinfo.errisinstance(StudentCodeError):
            what = str(excinfo.value)  # the grader's own words
        elif excinfo.errisinstance(ImportError) and str(excinfo.value).startswith("student/"):
            what = str(excinfo.value)
        elif excinfo.errisinstance(AssertionError):
            where = "" if hidden else f" at {test_file} line {_test_line(excinfo, test_file)}"
            what = "a check failed" + where
        elif _seconds_over(excinfo):  # the student tests' own time limit
            what = f"ran over its time limit of {_seconds_over(excinfo)} s (an endless loop?)"
        else:
            what = f"stopped by {_known_name(excinfo.type.__name__)}"
    words = "a grading-only check" if hidden else re.sub(r"^test_", "", name).replace("_", " ")
    message = f"{words}: {what or 'failed'}"
    if received:
        message += "; the student code handed back: " + ", ".join(describe(value) for value in received[:5])
    if not hidden:
        message += f" (run `pytest {test_file}` at home for the details)"
    return _plain(message)[:MESSAGE_CAP]


def _test_line(excinfo, test_file):
    """The line of the test (its own frame: the call that states the case) where the check failed."""
    lines = [entry.lineno + 1 for entry in excinfo.traceback if str(entry.path).endswith(test_file)]
    return lines[0] if lines else "?"


def _seconds_over(excinfo):
    """The time limit a test ran over (tests/student/conftest.py's message says), or None."""
    over = re.search(r"ran over (\d+) s", str(excinfo.value))
    return over[1] if over else None


def _known_name(name):
    return name if name in _KNOWN_EXCEPTIONS else "an error"


def _plain(text):
    """text with only printable ASCII (no markup, control or look-alike characters)."""
    return re.sub(r"[^A-Za-z0-9 _.,:;()/'`=+*-]", "?", text)


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
        self.process.received.pop()  # the names are the module's, not a value a test compares
        if not (isinstance(names, list) and all(isinstance(name, str) and name.isidentifier() for name in names)):
            raise ImportError(f"student/{short}.py could not be imported: its worker sent something else than names")
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
