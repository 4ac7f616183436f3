"""The advisory file lock: exclusive, freed by the death of its holder, blocking on demand."""
import os
import subprocess
import sys
import threading
import time

import pytest

from cifar_engine.errors import UserError
from cifar_engine.util.lock import (TIMEOUT_ENV, FileLock, LockHeld, LockTimeout, holder_pid,
                                    lock_timeout, locked)

# Takes the lock on argv[1], says so, holds it argv[2] seconds, touches argv[3], releases it
# and lives on until killed.
HOLDER = """
import pathlib, sys, time
from cifar_engine.util.lock import FileLock
lock = FileLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
pathlib.Path(sys.argv[3]).touch()
lock.release()
time.sleep(60)
"""

# argv[2] times: under locked(argv[1]), add one to the number in the file argv[3].
COUNTER = """
import pathlib, sys
from cifar_engine.util.lock import locked
counter = pathlib.Path(sys.argv[3])
for _ in range(int(sys.argv[2])):
    with locked(sys.argv[1]):
        counter.write_text(str(int(counter.read_text()) + 1))
"""


@pytest.fixture
def holder(tmp_path):
    """start(path, hold_seconds) runs HOLDER; returns (process, the file it touches on release)."""
    procs = []

    def start(path, hold=60.0):
        released = tmp_path / f"released-{len(procs)}"
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(hold), str(released)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline() == "held\n"
        return proc, released

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_held_lock_is_refused_in_one_line_naming_the_holder(tmp_path, holder):
    path = tmp_path / "x.lock"
    proc, _ = holder(path)

    with pytest.raises(LockHeld) as held:
        FileLock(path).acquire()

    assert held.value.pid == proc.pid
    assert isinstance(held.value, UserError)
    assert str(held.value) == f"{path}: locked by process {proc.pid}"


def test_the_lock_of_a_process_killed_by_sigkill_is_free(tmp_path, holder):
    path = tmp_path / "x.lock"
    proc, _ = holder(path)
    proc.kill()
    proc.wait()

    lock = FileLock(path).acquire()

    assert lock.held and holder_pid(path) == os.getpid()
    lock.release()


def test_two_locks_exclude_each_other_within_a_process_and_release_removes_the_file(tmp_path):
    path = tmp_path / "x.lock"
    first = FileLock(path).acquire()
    with pytest.raises(LockHeld):
        FileLock(path).acquire()

    first.release()
    first.release()  # a second release does nothing

    assert not path.exists()
    with FileLock(path) as second:
        assert second.held and path.exists()
    assert not second.held and not path.exists()


def test_locked_waits_until_the_holder_releases(tmp_path, holder):
    path = tmp_path / "journal.lock"
    _, released = holder(path, hold=0.5)

    with locked(path) as lock:
        assert released.exists()
        assert lock.held


def test_a_waiter_on_a_file_its_holder_removed_locks_the_new_file(tmp_path):
    # The waiter opened the file before the holder removed it on release; it must not go on
    # holding that removed file while a newcomer locks the new one.
    path = tmp_path / "x.lock"
    first = FileLock(path).acquire()
    waiter = FileLock(path)
    thread = threading.Thread(target=waiter.acquire, kwargs={"blocking": True})
    thread.start()
    time.sleep(0.2)  # the waiter has opened the file and waits in flock

    first.release()
    thread.join(timeout=5)

    assert waiter.held
    with pytest.raises(LockHeld):
        FileLock(path).acquire()
    waiter.release()


def test_many_writers_under_locked_lose_no_update(tmp_path):
    path, counter = tmp_path / "counter.lock", tmp_path / "counter"
    counter.write_text("0")
    writers = [subprocess.Popen([sys.executable, "-c", COUNTER, str(path), "200", str(counter)])
               for _ in range(3)]

    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0]
    assert counter.read_text() == "600"


def test_a_lock_file_that_cannot_be_created_raises_oserror(tmp_path):
    (tmp_path / "file").touch()
    with pytest.raises(OSError):
        FileLock(tmp_path / "file" / "x.lock").acquire()


def test_a_waiter_gives_up_after_its_timeout_in_one_line_naming_the_file_and_holder(tmp_path,
                                                                                   holder):
    path = tmp_path / "journal.lock"
    proc, _ = holder(path)
    began = time.monotonic()

    with pytest.raises(LockTimeout) as late:
        FileLock(path).acquire(blocking=True, timeout=0.3)

    assert 0.3 <= time.monotonic() - began < 5
    assert isinstance(late.value, UserError) and late.value.pid == proc.pid
    assert str(late.value) == (f"{path}: still locked by process {proc.pid} after 0.3 s (wait "
                               f"longer with {TIMEOUT_ENV}=SECONDS)")


def test_locked_waits_as_long_as_the_environment_says_then_gives_up(tmp_path, holder,
                                                                    monkeypatch):
    path = tmp_path / "kernel-sources.lock"
    holder(path)
    monkeypatch.setenv(TIMEOUT_ENV, "0.2")
    began = time.monotonic()

    with pytest.raises(LockTimeout, match="after 0.2 s"):
        with locked(path):
            pass

    assert time.monotonic() - began < 5


def test_a_waiter_that_gets_the_lock_within_its_timeout_takes_it(tmp_path, holder):
    path = tmp_path / "x.lock"
    _, released = holder(path, hold=0.3)

    lock = FileLock(path).acquire(blocking=True, timeout=30)

    assert released.exists() and lock.held
    lock.release()


@pytest.mark.parametrize("value", ["0", "-1", "abc", "inf", "nan"])
def test_a_lock_timeout_that_is_not_seconds_above_0_is_one_line_naming_the_variable(value):
    with pytest.raises(UserError, match=f"^environment variable {TIMEOUT_ENV} must be a "
                                        f"number of seconds > 0, got '{value}'$"):
        lock_timeout({TIMEOUT_ENV: value})
    assert lock_timeout({TIMEOUT_ENV: " 2.5 "}) == 2.5 and lock_timeout({}) > 60
