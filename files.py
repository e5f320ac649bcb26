"""Writing files so that an interrupted run never leaves a half-written one behind.

Every output of the kit (models, C arrays, reports, the submission zip, the datasets) is written to
a temporary file or folder in the same folder and renamed over the target only once it is complete.
Its name carries the writer's process id, so that what a killed run left behind (SIGTERM and
SIGKILL, or ending the task on Windows, run no clean-up code) is recognised and removed by the next
run, on every platform. Everything gets the permissions the user's umask gives new files, so a
dataset shared with a group stays readable.
"""

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


def default_mode(folder=False):
    """The permissions a new file (0o666) or folder (0o777) gets under this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def work_in_progress(directory, prefix, suffix="", folder=False):
    """A new temporary file (an open handle and its path) or folder in `directory`, named
    <prefix><pid>-<random><suffix> so that remove_leftovers can tell when its writer is gone."""
    name_prefix = f"{prefix}{os.getpid()}-"
    if folder:
        return Path(tempfile.mkdtemp(prefix=name_prefix, suffix=suffix, dir=directory))
    handle, path = tempfile.mkstemp(prefix=name_prefix, suffix=suffix, dir=directory)
    return handle, Path(path)


def remove_leftovers(directory, prefix):
    """Removes entries <prefix><pid>-... of `directory` whose process no longer runs: what a killed
    run left (on every platform)."""
    for entry in leftovers(directory, prefix):
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
        except OSError:
            pass  # in use after all (Windows keeps open files), or already gone: the next run tries again


def leftovers(directory, prefix, include_own=False):
    """The entries <prefix><pid>-... of `directory` whose writer no longer runs, sorted by name;
    with include_own also those of this process (what an interrupted call in it left)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in sorted(directory.iterdir()):
        pid = entry.name[len(prefix):].split("-", 1)[0] if entry.name.startswith(prefix) else ""
        if not pid.isdigit():
            continue
        if (include_own and int(pid) == os.getpid()) or not process_running(int(pid)):
            found.append(entry)
    return found


def process_running(pid):
    """Whether the process `pid` still runs (this one always does)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _windows_process_running(pid, *_windows_kernel32())
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


# Windows: os.kill(pid, 0) would terminate the process there, so its state is asked of the kernel.
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
STILL_ACTIVE = 259  # the exit code of a process that has not exited
ERROR_ACCESS_DENIED = 5


def _windows_kernel32():
    """kernel32's process functions, typed for 64-bit handles, and the way to read their error."""
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.GetExitCodeProcess.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD)]
    kernel32.GetExitCodeProcess.restype = wintypes.BOOL
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    return kernel32, ctypes.get_last_error


def _windows_process_running(pid, kernel32, last_error):
    """A process runs if it can be opened and has no exit code yet; one that cannot be opened runs
    only if access was denied (it belongs to another user), otherwise there is no such process."""
    import ctypes

    handle = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return last_error() == ERROR_ACCESS_DENIED
    try:
        exit_code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(exit_code)):
            return True  # cannot tell: keep what it may still write
        return exit_code.value == STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def publish(temporary, target, folder=False):
    """Gives a finished temporary file or folder the umask's permissions and renames it to target."""
    os.chmod(temporary, default_mode(folder))
    os.replace(temporary, target)


@contextmanager
def atomic_output(path, mode="wb"):
    """Opens a temporary file beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    remove_leftovers(path.parent, prefix)
    handle, temporary = work_in_progress(path.parent, prefix, suffix=".part")
    try:
        with os.fdopen(handle, mode) as file:
            yield file
        publish(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def write_atomically(path, content):
    """Writes bytes or text to `path` atomically."""
    with atomic_output(path, "wb" if isinstance(content, bytes) else "w") as file:
        file.write(content)
