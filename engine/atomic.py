"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
import contextlib
import os
import tempfile
from pathlib import Path

from .errors import UserError


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Yield a file object for a temporary file beside `path`; rename it over `path` on success.

    The data is flushed and fsync'd before the rename, so a crash (even kill -9) at any
    moment leaves either the previous file or the complete new one. Missing folders are
    created. On an exception the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
