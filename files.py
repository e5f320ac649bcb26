"""Writing files so that an interrupted run never leaves a half-written one behind.

Every output of the kit (models, C arrays, reports, the submission zip) is written to a temporary
file in the same folder and renamed over the target only once it is complete.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path, mode="wb"):
    """Opens a temporary file beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, mode) as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def write_atomically(path, content):
    """Writes bytes or text to `path` atomically."""
    with atomic_output(path, "wb" if isinstance(content, bytes) else "w") as file:
        file.write(content)
