"""Exclusive advisory locks on files: one owner per run folder, one writer at a time.

The library `filelock` takes them, with what each system has: flock where fcntl is
(Linux, macOS), LockFileEx on Windows; the kernel drops both when their process ends,
however it ends (kill -9 included). Where neither is, it falls back to a marker file that
records the holder's pid, host and start time, and reclaims the marker of a holder that no
longer runs on this host. So a lock never outlives its owner. Locks are advisory: they keep
out only those who take them too.

A waiter gives up after $CIFAR_ENGINE_LOCK_TIMEOUT seconds (default LOCK_TIMEOUT) with a
LockTimeout naming the lock file and its holder: a holder stuck for ever (a process
stopped with SIGSTOP, a hung file system) never stalls a command without a word.
"""
import contextlib
import math
import os
import time
import warnings
from pathlib import Path

import filelock

from ..errors import UserError

# The platform's lock class, and whether it is a kernel lock (a marker records its own pid).
_BACKEND = filelock.FileLock
_KERNEL_LOCK = not issubclass(_BACKEND, filelock.SoftFileLock)
# filelock keeps a flock's file on release (for the waiters that opened it); ours goes.
_KEEPS_FILE = _BACKEND is filelock.UnixFileLock
POLL_SECONDS = 0.01  # how often a waiter tries again
# A marker still empty this long after it was made is a holder's killed between creating it
# and writing its record (microseconds apart); filelock never takes one back (see below).
EMPTY_MARKER_SECONDS = 10.0
TIMEOUT_ENV = "CIFAR_ENGINE_LOCK_TIMEOUT"
LOCK_TIMEOUT = 600.0  # seconds a waiter waits by default: far beyond any write the locks guard


class LockHeld(UserError):
    """The lock on `path` is held by process `pid` (None when it has not written its pid yet)."""

    def __init__(self, path, pid):
        self.path, self.pid = Path(path), pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{path}: locked by {holder}")


class LockTimeout(UserError):
    """The lock on `path`, held by process `pid` (or None), was still held after `seconds`."""

    def __init__(self, path, pid, seconds):
        self.path, self.pid, self.seconds = Path(path), pid, seconds
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{path}: still locked by {holder} after {seconds:g} s (wait longer "
                         f"with {TIMEOUT_ENV}=SECONDS)")


def lock_timeout(environ=os.environ):
    """Seconds a waiter waits for a lock: $CIFAR_ENGINE_LOCK_TIMEOUT (> 0), else LOCK_TIMEOUT;
    a UserError naming the variable when it is not a number of seconds > 0."""
    text = environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return LOCK_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise UserError(f"environment variable {TIMEOUT_ENV} must be a number of seconds > 0, "
                        f"got {text!r}")
    return seconds


class FileLock:
    """An exclusive lock on the file `path`, created when taken and removed when released.

    `path` is a lock file of its own, never the data it guards: its first line is the
    holder's pid, for the message of whoever finds the lock taken. To let many processes
    append to a journal one at a time, lock `journal.csv.lock`. Two FileLocks on one path
    exclude each other even within a process. A file that cannot be created raises OSError
    (its folder is made when missing).
    """

    def __init__(self, path):
        self.path = Path(path)
        self._lock = None

    @property
    def held(self):
        return self._lock is not None

    def acquire(self, blocking=False, timeout=None):
        """Take the lock and return self. Not `blocking`: raise LockHeld when it is held.
        `blocking`: wait for it, at most `timeout` seconds (default `lock_timeout()`), then
        raise LockTimeout."""
        if self._lock is not None:
            raise RuntimeError(f"{self.path}: this FileLock is already held")
        timeout = (lock_timeout() if timeout is None else timeout) if blocking else 0.0
        deadline = time.monotonic() + timeout
        lock = None
        while lock is None:
            left = max(deadline - time.monotonic(), 0.0)
            lock = _new_lock(self.path)
            try:
                # a marker's waiter looks for an abandoned marker every EMPTY_MARKER_SECONDS
                lock.acquire(blocking=blocking, poll_interval=POLL_SECONDS,
                             timeout=left if _KERNEL_LOCK else min(left, EMPTY_MARKER_SECONDS))
            except filelock.Timeout:
                lock = _take_abandoned_marker(self.path)
                if lock is None and not blocking:
                    raise LockHeld(self.path, holder_pid(self.path)) from None
                if lock is None and time.monotonic() >= deadline:
                    raise LockTimeout(self.path, holder_pid(self.path), timeout) from None
        self._lock = lock
        return self

    def release(self):
        """Remove the lock file and drop the lock; nothing happens when it is not held."""
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        if _KEEPS_FILE:
            # Removed while still locked: whoever opened it meanwhile sees it is gone and
            # retries (filelock checks that the file it locked still has a name).
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        lock.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _new_lock(path):
    # One FileLock is one owner, whichever thread releases it: not thread-local.
    if _KERNEL_LOCK:
        return _BACKEND(path, thread_local=False, on_acquired=_write_pid)
    return _BACKEND(path, thread_local=False)


def _take_abandoned_marker(path):
    """Take the lock of a marker `path` abandoned empty, as a filelock holding it; else None.

    filelock takes back a dead holder's marker only by its record, and reads an empty marker
    as held (holders before filelock 3.22 wrote none), so one whose holder was killed right
    after creating it would stand for ever. Ours all write one: an empty marker older than
    EMPTY_MARKER_SECONDS is abandoned, and filelock's age-based expiry, which breaks a marker
    only while it stays the one it judged old, takes it.
    """
    if _KERNEL_LOCK or not _is_abandoned(path):
        return None
    with warnings.catch_warnings():  # the warning that an expiry can overlap a live holder
        warnings.filterwarnings("ignore", message=".*lifetime")
        lock = _BACKEND(path, thread_local=False, lifetime=EMPTY_MARKER_SECONDS)
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        return None
    return lock


def _is_abandoned(path):
    try:
        marker = os.lstat(path)
    except OSError:
        return False
    return marker.st_size == 0 and time.time() - marker.st_mtime >= EMPTY_MARKER_SECONDS


def _write_pid(fd):
    """Write this process's pid into a kernel lock's file (best effort: it is for messages)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())


def holder_pid(path):
    """The pid on the first line of the lock file `path`, or None (none yet, or unreadable:
    on Windows the holder's lock keeps its first byte from other processes)."""
    try:
        with open(path, "rb") as file:
            return int(file.readline(32).decode())
    except (OSError, ValueError):  # ValueError covers an empty file and a UnicodeDecodeError
        return None


@contextlib.contextmanager
def locked(path, timeout=None):
    """Hold the lock on the file `path` for the `with` block, waiting for it at most
    `timeout` seconds (default `lock_timeout()`; then LockTimeout)."""
    lock = FileLock(path).acquire(blocking=True, timeout=timeout)
    try:
        yield lock
    finally:
        lock.release()
