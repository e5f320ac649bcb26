"""Writing files so that an interrupted run never leaves a half-written one behind.

Every output of the kit (models, C arrays, reports, the submission zip, the datasets) is written to
a temporary file or folder in the same folder and renamed over the target only once it is complete.
Its name carries the writer's process id, so that what a killed run left behind (SIGTERM and
SIGKILL run no clean-up code) is recognised and removed by the next run. Everything gets the
permissions the user's umask gives new files, so a dataset shared with a group stays readable.
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
    run left. (On Windows a process cannot be checked without risk, so nothing is removed there.)"""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and _process_gone(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _process_gone(pid):
    if sys.platform == "win32" or pid == os.getpid():
        return False  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False


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
