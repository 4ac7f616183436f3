"""Exclusive advisory locks on files (flock): one owner per run folder, one writer at a time.

The kernel drops a flock when the process holding it ends, however it ends (kill -9
included), so a lock never outlives its owner and there is no stale lock to break. Locks are
advisory: they keep out only those who take them too.
"""
import contextlib
import fcntl
import os
from pathlib import Path

from ..errors import UserError


class LockHeld(UserError):
    """The lock on `path` is held by process `pid` (None when it has not written its pid yet)."""

    def __init__(self, path, pid):
        self.path, self.pid = Path(path), pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{path}: locked by {holder}")


class FileLock:
    """An exclusive flock on the file `path`, created when taken and removed when released.

    `path` is a lock file of its own, never the data it guards: it holds the holder's pid,
    for the message of whoever finds the lock taken. To let many processes append to a
    journal one at a time, lock `journal.csv.lock`. Two FileLocks on one path exclude each
    other even within a process. A file that cannot be created raises OSError.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def acquire(self, blocking=False):
        """Take the lock and return self; wait for it if `blocking`, else raise LockHeld."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this FileLock is already held")
        fd = None
        while fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise LockHeld(self.path, pid) from None
            except BaseException:
                os.close(fd)
                raise
            if not self._is_current(fd):  # its last holder removed the file: lock the new one
                os.close(fd)
                fd = None
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            self.release()
            raise
        return self

    def release(self):
        """Remove the lock file and drop the lock; nothing happens when it is not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # Removed while still locked: whoever opened it meanwhile sees it is gone and retries.
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(fd)

    def _is_current(self, fd):
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_pid(fd):
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):  # ValueError covers an empty file and a UnicodeDecodeError
        return None


@contextlib.contextmanager
def locked(path):
    """Hold the lock on the file `path` for the `with` block, waiting for it as long as it takes."""
    lock = FileLock(path).acquire(blocking=True)
    try:
        yield lock
    finally:
        lock.release()
