"""Atomic file writes: a reader sees the old file or the new one, never half of one.

A temporary file (or folder) is named `.NAME.pidPID@HOST.RANDOM.tmp` beside its target NAME,
so that the leftovers of a writer that was killed can be told from those of one still at
work: `remove_dead_temps` removes the former. The host is there for folders that several
machines (or containers, each with its own pids) share.
"""
import contextlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from .errors import UserError

TEMP_SUFFIX = ".tmp"
_TEMP = re.compile(r"\.(?P<name>.+)\.pid(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+?)\.[a-z0-9_]+\.tmp")
_OLD_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")  # mkstemp's 8 random characters


def _host():
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "-"


def temp_prefix(name, pid=None):
    """The prefix of the temporary names of writer `pid` (default: this process) for the
    target `name`, for mkstemp and mkdtemp (with suffix TEMP_SUFFIX)."""
    return f".{name}.pid{os.getpid() if pid is None else pid}@{_host()}."


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
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX,
                                   dir=path.parent)
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


def pid_alive(pid):
    """Whether a process `pid` exists (a zombie counts; another user's process too)."""
    if pid <= 0:  # kill(0) and kill(-1) would address process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def temp_writer(name):
    """(pid, host) of the writer of a temporary name; (None, None) for an old name without
    them; None for a name that is not temporary."""
    match = _TEMP.fullmatch(name)
    if match:
        return int(match["pid"]), match["host"]
    return (None, None) if _OLD_TEMP.fullmatch(name) else None


def _dead(writer, locked):
    pid, host = writer
    if pid is not None and host == _host():
        return not pid_alive(pid)
    return locked


def remove_dead_temps(folder, locked=False):
    """Remove the temporary files and folders in `folder` whose writer is dead; returns their paths.

    A writer of this host is dead when no process has its pid. Those of other hosts, and
    names without a writer (from before writers were named), are removed only when
    `locked`: the caller holds the folder's lock, so no other writer can be at work there.
    A pid reused by another process keeps its leftover until that process ends; that costs
    only disk space.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        writer = temp_writer(entry.name)
        if writer is None or not _dead(writer, locked):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed
