"""Atomic file writes: a reader sees the old file or the new one, never half of one; and
reads of a user's file that refuse what is not a regular file (a FIFO would block for ever).

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
import stat
import tempfile
from pathlib import Path

from ..errors import UserError
from .system import O_BINARY, O_NONBLOCK, pid_alive

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
    moment leaves either the previous file or the complete new one. Only a regular file (or
    nothing) is replaced: a folder, a FIFO or a device is refused, before anything is
    written. A symbolic link is written through (the file it names is replaced, the link
    kept). Missing folders are created. On an exception the temporary file is removed, the
    folders made for it too, and `path` is untouched.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    _require_replaceable(target, path)
    made = make_folders(target.parent, lambda err: UserError(
        f"{path}: cannot write ({err.strerror or err})"))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=TEMP_SUFFIX,
                                   dir=target.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        _require_replaceable(target, path)  # in case one appeared meanwhile
        os.replace(tmp, target)
        made = []
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        remove_empty_folders(made)


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def _not_regular(mode):
    """What a file of `mode` is when it is not a regular file ("a FIFO"), else None."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a file")


def _require_replaceable(target, path):
    try:
        what = _not_regular(os.lstat(target).st_mode)
    except FileNotFoundError:
        return
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None
    if what:
        raise UserError(f"{path}: {what}, not a regular file: refusing to replace it")


def read_regular(path, error=UserError):
    """The bytes of the regular file at `path`; `error` (a UserError class) naming it for
    anything else: missing, unreadable, or not a regular file (a FIFO, a folder, a device),
    refused without waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | O_NONBLOCK | O_BINARY)  # a FIFO opens without a writer
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None
    what = _not_regular(os.fstat(fd).st_mode)
    if what:
        os.close(fd)
        raise error(f"{path}: {what}, not a regular file")
    try:
        with os.fdopen(fd, "rb") as file:
            return file.read()
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None


def make_folders(folder, error):
    """Make `folder` and its missing parents; returns those it made, deepest first (for
    `remove_empty_folders`). An OSError becomes error(err)."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        remove_empty_folders(missing)
        raise error(err) from None
    return missing


def remove_empty_folders(folders):
    """Remove the `folders` (deepest first) until one is not empty: what a writer made and
    left empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            break


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
