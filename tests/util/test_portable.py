"""The engine where the POSIX-only calls are missing, as on Windows: in processes that see no
fcntl and no os.pread (tests/no_posix/), it loads, locks, appends to a search journal, and
takes over the lock of a holder killed by SIGKILL. `make test-portable` runs the whole suite
so; this test runs in every run."""
import os
import subprocess
import sys
from pathlib import Path

NO_POSIX = Path(__file__).resolve().parents[1] / "no_posix"

# Takes the lock on argv[1] with filelock's fallback (no flock), says so and lives on.
HOLDER = """
import sys, time, filelock
from cifar_engine.util.lock import FileLock
assert not filelock.has_fcntl
lock = FileLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""

# In the folder argv[1]: a lock taken and released, an append after a killed writer's
# fragment, a lock refused to a live holder but taken from one killed by SIGKILL, and a
# marker left empty (its holder killed before it wrote its record) taken once it is old.
ENGINE = """
import os, subprocess, sys
from pathlib import Path

import filelock
import cifar_engine
from cifar_engine.tune.search.journal import Journal
from cifar_engine.util import lock
from cifar_engine.util.lock import FileLock, LockHeld

assert not hasattr(os, "pread") and not filelock.has_fcntl and not lock._KERNEL_LOCK
path = Path(sys.argv[1]) / "x.lock"
with FileLock(path):
    assert path.exists()
assert not path.exists()

journal = Journal(Path(sys.argv[1]) / "search")
journal.folder.mkdir()
journal.path.write_bytes(b'{"event": "po')
journal.point(0, 7, 0, 0.5)
assert [r["trial"] for r in journal.read()] == [7]

holder = subprocess.Popen([sys.executable, "-c", sys.argv[2], str(path)],
                          stdout=subprocess.PIPE, text=True)
assert holder.stdout.readline() == "held\\n"
try:
    FileLock(path).acquire()
    raise AssertionError("two holders")
except LockHeld as held:
    assert held.pid == holder.pid, held
holder.kill()
holder.wait()
FileLock(path).acquire().release()

lock.EMPTY_MARKER_SECONDS = 1.0
abandoned = Path(sys.argv[1]) / "abandoned.lock"
abandoned.touch()
try:
    FileLock(abandoned).acquire()
    raise AssertionError("took a marker that may be a holder's still writing its record")
except LockHeld as held:
    assert held.pid is None, held
taken = FileLock(abandoned).acquire(blocking=True)
assert abandoned.stat().st_size > 0
taken.release()
assert not abandoned.exists()
print("ok")
"""


def test_without_fcntl_and_pread_the_engine_locks_and_appends_and_no_lock_is_stale(tmp_path):
    paths = [str(NO_POSIX), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run([sys.executable, "-c", ENGINE, str(tmp_path), HOLDER], env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
