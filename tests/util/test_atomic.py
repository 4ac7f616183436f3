"""Atomic writes and the removal of what killed writers leave behind."""
import os
import signal
import subprocess
import sys

import pytest

from cifar_engine.errors import UserError
from cifar_engine.util.atomic import (atomic_write, read_regular, remove_dead_temps,
                                      temp_prefix, temp_writer)

# Writes half of argv[1] atomically, then dies by SIGKILL before the rename.
KILLED_WRITER = """
import os, signal, sys
from cifar_engine.util.atomic import atomic_write
with atomic_write(sys.argv[1]) as file:
    file.write(b"half of the new")
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _names(folder):
    return sorted(os.listdir(folder))


def test_the_temporary_file_is_named_after_its_target_and_writer(tmp_path):
    with atomic_write(tmp_path / "model.npz") as file:
        file.write(b"new")
        (tmp, ) = _names(tmp_path)
        assert tmp.startswith(f".model.npz.pid{os.getpid()}@") and tmp.endswith(".tmp")
        assert tmp.startswith(temp_prefix("model.npz")) and temp_writer(tmp)[0] == os.getpid()

    assert _names(tmp_path) == ["model.npz"]
    assert (tmp_path / "model.npz").read_bytes() == b"new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    (tmp_path / "a.txt").write_text("old")

    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "a.txt", "w") as file:
            file.write("new")
            raise RuntimeError("boom")

    assert _names(tmp_path) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old"


def test_an_unwritable_target_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")

    with pytest.raises(UserError, match=r"file/a\.txt: cannot write \(") as err:
        with atomic_write(tmp_path / "file" / "a.txt") as file:
            file.write(b"")
    assert "\n" not in str(err.value)


def _not_regular(tmp_path, kind):
    """A path beside tmp_path that is not a regular file: a FIFO, a folder, or a symbolic
    link to a character device (making one needs root)."""
    path = tmp_path / f"target-{kind}"
    {"fifo": os.mkfifo, "folder": os.mkdir,
     "device": lambda p: os.symlink(os.devnull, p)}[kind](path)
    return path


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind, what", [("fifo", "a FIFO"), ("folder", "a folder"),
                                        ("device", "a character device")])
def test_what_is_not_a_regular_file_is_never_replaced(tmp_path, kind, what):
    target = _not_regular(tmp_path, kind)
    before = os.lstat(target)

    with pytest.raises(UserError) as err:
        with atomic_write(target) as file:
            file.write(b"new")

    assert str(err.value) == f"{target}: {what}, not a regular file: refusing to replace it"
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert _names(tmp_path) == [target.name]  # no temporary left


def test_a_link_to_a_file_is_written_through_and_kept(tmp_path):
    (tmp_path / "real.png").write_bytes(b"old")
    (tmp_path / "link.png").symlink_to("real.png")

    with atomic_write(tmp_path / "link.png") as file:
        file.write(b"new")

    assert os.readlink(tmp_path / "link.png") == "real.png"
    assert (tmp_path / "real.png").read_bytes() == b"new"
    assert _names(tmp_path) == ["link.png", "real.png"]


def test_a_failed_write_removes_the_folders_it_made_and_only_those(tmp_path):
    (tmp_path / "keep").mkdir()

    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "keep" / "new" / "deeper" / "a.txt") as file:
            file.write(b"half")
            raise RuntimeError("boom")

    assert _names(tmp_path) == ["keep"] and _names(tmp_path / "keep") == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind, what", [("fifo", "a FIFO"), ("folder", "a folder"),
                                        ("device", "a character device")])
def test_reading_refuses_what_is_not_a_regular_file_without_waiting(tmp_path, kind, what):
    path = _not_regular(tmp_path, kind)

    with pytest.raises(UserError) as err:
        read_regular(path)

    assert str(err.value) == f"{path}: {what}, not a regular file"


def test_reading_a_file_gives_its_bytes_and_a_missing_one_is_one_line(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")

    assert read_regular(tmp_path / "a") == b"abc"
    with pytest.raises(UserError, match=r"b: no such file$"):
        read_regular(tmp_path / "b")


@pytest.mark.parametrize("name, writer", [
    (".checkpoint.npz.pid42@vm.ab_c9xyz.tmp", (42, "vm")),
    (".checkpoint.npz.pid42@node-3.lab.org.ab_c9xyz.tmp", (42, "node-3.lab.org")),
    (".metrics.csv.abc12345.tmp", (None, None)),  # before writers were in the names
    (".a.pid7@vm.b.pid9@h.x1y2z3w4.tmp", (9, "h")),  # the target may itself look like one
    ("checkpoint.npz", None),
    ("notes.tmp", None),
    (".lock", None),
    (".checkpoint.npz.pid42@vm.ab_c9xyz", None),
])
def test_temp_writer_reads_the_pid_of_a_temporary_name(name, writer):
    assert temp_writer(name) == writer


def _leftovers(folder, pid):
    """A temporary file and folder of the writer `pid` of this host in `folder`; returns
    their names."""
    file = temp_prefix("checkpoint.npz", pid) + "k3j2h1g0.tmp"
    below = temp_prefix("cifar10-0123456789abcdef-0123456789abcdef", pid) + "a1b2c3d4.tmp"
    (folder / file).write_bytes(b"partial")
    (folder / below).mkdir()
    (folder / below / "train_images.npy").write_bytes(b"partial")
    return [file, below]


def test_remove_dead_temps_keeps_live_writers_and_other_files(tmp_path):
    dead = _leftovers(tmp_path, dead_pid())
    live = _leftovers(tmp_path, os.getpid())
    old = ".model.npz.q1w2e3r4.tmp"
    elsewhere = f".model.npz.pid{os.getpid()}@another-host.q1w2e3r4.tmp"
    others = ["checkpoint.npz", "notes.tmp", ".hidden", old, elsewhere]
    for name in others:
        (tmp_path / name).write_text("keep")

    removed = remove_dead_temps(tmp_path)

    assert sorted(path.name for path in removed) == sorted(dead)
    assert _names(tmp_path) == sorted(live + others)


def test_remove_dead_temps_removes_old_names_and_other_hosts_only_for_the_lock_holder(tmp_path):
    unknown = [".model.npz.q1w2e3r4.tmp", f".model.npz.pid{dead_pid()}@another-host.x1.tmp"]
    for name in unknown:
        (tmp_path / name).write_text("partial")
    live = _leftovers(tmp_path, os.getpid())

    assert remove_dead_temps(tmp_path) == []
    assert sorted(p.name for p in remove_dead_temps(tmp_path, locked=True)) == sorted(unknown)
    assert _names(tmp_path) == sorted(live)


def test_remove_dead_temps_of_a_missing_folder_is_nothing(tmp_path):
    assert remove_dead_temps(tmp_path / "missing") == []


def test_what_a_writer_killed_mid_write_leaves_is_removed_and_the_old_file_kept(tmp_path):
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"old")

    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)])
    assert proc.wait() == -signal.SIGKILL
    (tmp, ) = [name for name in _names(tmp_path) if name != "checkpoint.npz"]
    assert tmp.startswith(temp_prefix("checkpoint.npz", proc.pid))

    assert [path.name for path in remove_dead_temps(tmp_path)] == [tmp]
    assert _names(tmp_path) == ["checkpoint.npz"] and target.read_bytes() == b"old"
