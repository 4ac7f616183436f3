import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from cifar_engine.data import default_cache_dir
from cifar_engine.data import load as load_module
from cifar_engine.data import load_dataset
from cifar_engine.data.paths import checkout_root
from cifar_engine.data.source import IDX
from cifar_engine.errors import DataError
from cifar_engine.util.atomic import temp_prefix, temp_writer
from fakes import assert_same_data, write_idx


@pytest.fixture
def count_reads(monkeypatch):
    """Counts the IDX reader's calls (it still reads)."""
    calls = []
    read = load_module.READERS[IDX]
    monkeypatch.setitem(load_module.READERS, IDX, lambda *a, **k: calls.append(1) or read(*a, **k))
    return calls


def _entries(cache_dir):
    return sorted(path.name for path in cache_dir.iterdir()) if cache_dir.exists() else []


def test_the_second_load_comes_from_the_cache(idx_folder, cache_dir, count_reads):
    first = load_dataset(idx_folder.path, cache_dir=cache_dir)
    second = load_dataset(idx_folder.path, cache_dir=cache_dir)

    assert len(count_reads) == 1
    for dataset in (first, second):
        assert_same_data(dataset, idx_folder)
        assert isinstance(dataset.train_images, np.memmap)
        assert not dataset.train_images.flags.writeable
    assert len(_entries(cache_dir)) == 1


def test_a_changed_source_is_read_again_and_its_old_entry_removed(tmp_path, cache_dir, count_reads):
    old = write_idx(tmp_path / "fashion")
    load_dataset(old.path, cache_dir=cache_dir)
    (old.path / "train-images-idx3-ubyte.gz").rename(tmp_path / "old-train-images")
    new = write_idx(tmp_path / "new", n_train=25)
    (new.path / "train-images-idx3-ubyte.gz").rename(old.path / "train-images-idx3-ubyte.gz")
    (new.path / "train-labels-idx1-ubyte.gz").replace(old.path / "train-labels-idx1-ubyte.gz")

    dataset = load_dataset(old.path, cache_dir=cache_dir)

    assert len(count_reads) == 2
    assert len(dataset.train_labels) == 25
    assert len(_entries(cache_dir)) == 1


def _truncate(entry):
    path = entry / "train_images.npy"
    path.write_bytes(path.read_bytes()[:-10])


def _flip_label(entry):
    path = entry / "test_labels.npy"
    data = bytearray(path.read_bytes())
    data[-8] ^= 1
    path.write_bytes(bytes(data))


def _flip_sampled_pixel(entry):
    path = entry / "train_images.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last row is always in the checksummed sample
    path.write_bytes(bytes(data))


def _edit_meta(change):
    def edit(entry):
        meta = json.loads((entry / "meta.json").read_text())
        change(meta)
        (entry / "meta.json").write_text(json.dumps(meta))
    return edit


CORRUPTIONS = {
    "truncated array": _truncate,
    "flipped label": _flip_label,
    "flipped pixel": _flip_sampled_pixel,
    "missing array": lambda entry: (entry / "train_batches.npy").unlink(),
    "garbage meta": lambda entry: (entry / "meta.json").write_text("{not json"),
    "missing meta": lambda entry: (entry / "meta.json").unlink(),
    "old format": _edit_meta(lambda meta: meta.update(format=0)),
    "wrong shape in meta": _edit_meta(
        lambda meta: meta["arrays"]["test_images"].update(shape=[5, 30])),
    "too few classes": _edit_meta(lambda meta: meta.update(class_names=["one"])),
    "array is not an npy": lambda entry: (entry / "test_images.npy").write_bytes(b"x" * 428),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS)
def test_a_corrupt_cache_entry_is_rebuilt(idx_folder, cache_dir, count_reads, corrupt):
    load_dataset(idx_folder.path, cache_dir=cache_dir)
    corrupt(cache_dir / _entries(cache_dir)[0])

    dataset = load_dataset(idx_folder.path, cache_dir=cache_dir)

    assert len(count_reads) == 2
    assert_same_data(dataset, idx_folder)
    assert load_dataset(idx_folder.path, cache_dir=cache_dir) is not None and len(count_reads) == 2


@pytest.mark.parametrize("where", ["cache", "cache/below"])
def test_a_cache_dir_that_cannot_be_written(idx_folder, tmp_path, count_reads, where):
    (tmp_path / "cache").write_text("a file where the cache folder should be")

    with pytest.raises(DataError, match=f"cache folder {tmp_path / where}: cannot write"):
        load_dataset(idx_folder.path, cache_dir=tmp_path / where)

    assert count_reads == []  # it fails before the decode


def test_a_failed_decode_leaves_nothing_in_the_cache(idx_folder, cache_dir):
    (idx_folder.path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")

    with pytest.raises(DataError):
        load_dataset(idx_folder.path, cache_dir=cache_dir)

    assert _entries(cache_dir) == []


def test_an_interrupted_write_leaves_nothing_in_the_cache(idx_folder, cache_dir, monkeypatch):
    save, saved = np.save, []

    def save_then_interrupt(path, array, **kwargs):
        save(path, array, **kwargs)
        saved.append(path)
        if len(saved) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(idx_folder.path, cache_dir=cache_dir)

    assert len(saved) == 2 and not saved[0].exists()
    assert _entries(cache_dir) == []


def test_cifar_engine_cache_moves_the_default(idx_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR_ENGINE_CACHE", str(tmp_path / "elsewhere"))

    load_dataset(idx_folder.path)

    assert default_cache_dir() == tmp_path / "elsewhere"
    assert len(_entries(tmp_path / "elsewhere")) == 1


def test_the_default_cache_of_a_checkout_is_data_cache(monkeypatch):
    monkeypatch.delenv("CIFAR_ENGINE_CACHE")

    assert checkout_root() is not None, "the tests run from a checkout"
    assert default_cache_dir() == checkout_root() / "data" / "cache"
    assert (checkout_root() / "pyproject.toml").is_file()


def test_options_and_paths_key_separate_entries(cifar100_folder, idx_folder, cache_dir):
    fine = load_dataset(cifar100_folder.path, cache_dir=cache_dir)
    coarse = load_dataset(cifar100_folder.path, labels="coarse", cache_dir=cache_dir)
    load_dataset(idx_folder.path, cache_dir=cache_dir)

    assert (fine.n_classes, coarse.n_classes) == (100, 20)
    assert len(_entries(cache_dir)) == 3
    assert not any(name.startswith(".") for name in os.listdir(cache_dir))


# Starts a cache build of the IDX folder argv[1] in the cache folder argv[2] and dies by
# SIGKILL during the decode.
KILLED_BUILD = """
import os, signal, sys
from pathlib import Path
from cifar_engine.data.cache import cached_dataset
from cifar_engine.data.source import IDX
cached_dataset(Path(sys.argv[1]), IDX, {"labels": None},
               lambda: os.kill(os.getpid(), signal.SIGKILL), cache_dir=sys.argv[2])
"""


def test_a_build_removes_what_killed_builds_left_and_keeps_live_ones(idx_folder, cache_dir):
    killed = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(idx_folder.path),
                               str(cache_dir)])
    assert killed.wait() == -signal.SIGKILL
    (left, ) = _entries(cache_dir)
    assert left.startswith(f".{IDX}-") and left.endswith(".tmp")
    assert temp_writer(left)[0] == killed.pid
    live = temp_prefix(f"{IDX}-0123456789abcdef-0123456789abcdef") + "a1b2c3d4.tmp"
    (cache_dir / live).mkdir()
    (cache_dir / live / "train_images.npy").write_bytes(b"being written")

    dataset = load_dataset(idx_folder.path, cache_dir=cache_dir)

    assert_same_data(dataset, idx_folder)
    (entry, ) = [name for name in _entries(cache_dir) if not name.startswith(".")]
    assert _entries(cache_dir) == sorted([live, entry])
    assert (cache_dir / live / "train_images.npy").read_bytes() == b"being written"
