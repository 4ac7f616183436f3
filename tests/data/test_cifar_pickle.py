import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cifar_engine.data import N_BATCHES
from cifar_engine.data.cifar_pickle import read_cifar10, read_cifar100
from cifar_engine.errors import DataError
from fakes import _reconstruct, assert_same_data, dump_py2, rewrite_pickle, write_cifar100
from properties import allocates_at_most


@pytest.mark.parametrize("form", ["cifar10_folder", "cifar10_archive"])
def test_cifar10_reads_batches_in_file_order(request, form):
    fake = request.getfixturevalue(form)

    dataset = read_cifar10(fake.path)

    assert_same_data(dataset, fake, seeded_train=False)
    np.testing.assert_array_equal(dataset.train_batches, np.repeat(np.arange(N_BATCHES), 6))


def test_cifar10_archive_is_read_in_place(cifar10_archive):
    before = sorted(cifar10_archive.path.parent.iterdir())

    read_cifar10(cifar10_archive.path)

    assert sorted(cifar10_archive.path.parent.iterdir()) == before


def test_fake_batches_are_python2_pickles(cifar10_folder):
    raw = (cifar10_folder.path / "data_batch_1").read_bytes()
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    assert b"_codecs" not in raw  # Python 3's protocol-2 encoding of bytes


def test_cifar10_reads_batches_repickled_by_numpy_2(cifar10_folder):
    batch = cifar10_folder.path / "data_batch_2"
    batch.write_bytes(pickle.dumps(pickle.loads(batch.read_bytes(), encoding="bytes"), protocol=4))

    dataset = read_cifar10(cifar10_folder.path)

    assert_same_data(dataset, cifar10_folder, seeded_train=False)


@pytest.mark.parametrize("form", ["cifar100_folder", "cifar100_archive"])
def test_cifar100_fine_labels_in_seeded_batches(request, form):
    fake = request.getfixturevalue(form)

    dataset = read_cifar100(fake.path)

    assert_same_data(dataset, fake)
    assert dataset.n_classes == 100
    np.testing.assert_array_equal(np.bincount(dataset.train_batches), [3] * N_BATCHES)


def test_cifar100_coarse_labels(tmp_path):
    fake = write_cifar100(tmp_path / "cifar-100-python", labels="coarse")

    dataset = read_cifar100(fake.path, labels="coarse")

    assert_same_data(dataset, fake)
    assert dataset.n_classes == 20


def _drop(key):
    return lambda batch: batch.pop(key)


def _set(key, value):
    return lambda batch: batch.__setitem__(key, value(batch) if callable(value) else value)


BAD_BATCHES = {
    "no data": ("data_batch_1", _drop(b"data"), "missing key data"),
    "no labels": ("data_batch_2", _drop(b"labels"), "missing key labels"),
    "float data": ("data_batch_3", _set(b"data", lambda b: b[b"data"].astype(np.float32)), "uint8"),
    "list data": ("data_batch_3", _set(b"data", lambda b: b[b"data"].tolist()), "uint8"),
    "3000 columns": ("data_batch_4", _set(b"data", lambda b: b[b"data"][:, :3000].copy()),
                     "(N, 3072)"),
    "flat data": ("test_batch", _set(b"data", lambda b: b[b"data"].ravel()), "(N, 3072)"),
    "label 10": ("data_batch_5", _set(b"labels", [10] * 6), "0..9"),
    "label -1": ("test_batch", _set(b"labels", [-1] + [0] * 7), "0..9"),
    "too few labels": ("data_batch_1", _set(b"labels", [1, 2]), "6 integers"),
    "text labels": ("data_batch_1", _set(b"labels", [b"cat"] * 6), "6 integers"),
    "no class names": ("batches.meta", _drop(b"label_names"), "class names"),
}


@pytest.mark.parametrize("name, change, message", BAD_BATCHES.values(), ids=BAD_BATCHES)
def test_bad_batch_is_a_data_error_naming_the_file(cifar10_folder, name, change, message):
    rewrite_pickle(cifar10_folder.path / name, change)

    with pytest.raises(DataError, match=r"data_batch|test_batch|batches\.meta") as error:
        read_cifar10(cifar10_folder.path)

    assert str(cifar10_folder.path / name) in str(error.value)
    assert message in str(error.value)


def test_a_batch_that_is_not_a_dict(cifar10_folder):
    dump_py2([1, 2, 3], cifar10_folder.path / "data_batch_2")

    with pytest.raises(DataError, match="data_batch_2: not a CIFAR batch"):
        read_cifar10(cifar10_folder.path)


def test_a_file_that_is_not_a_pickle(cifar10_folder):
    (cifar10_folder.path / "test_batch").write_bytes(b"\x00 not a pickle at all")

    with pytest.raises(DataError, match="test_batch: not a readable pickle"):
        read_cifar10(cifar10_folder.path)


def test_a_missing_batch_file(cifar10_folder):
    (cifar10_folder.path / "data_batch_3").unlink()

    with pytest.raises(DataError, match="no data_batch_3 in this CIFAR release"):
        read_cifar10(cifar10_folder.path)


class RunsCommand:
    """Unpickling this runs a shell command: what a doctored data file could do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _dump_protocol_4(obj, path):
    path.write_bytes(pickle.dumps(obj, protocol=4))


@pytest.mark.parametrize("dump", [dump_py2, _dump_protocol_4])
def test_a_pickle_that_would_run_a_command_is_refused(cifar10_folder, tmp_path, dump):
    marker = tmp_path / "pwned"
    dump({b"data": RunsCommand(f"touch {marker}"), b"labels": [0]},
         cifar10_folder.path / "data_batch_1")

    with pytest.raises(DataError, match=r"data_batch_1: refused to load global (posix|os)\.system"):
        read_cifar10(cifar10_folder.path)

    assert not marker.exists()
    pickle.loads((cifar10_folder.path / "data_batch_1").read_bytes(), encoding="bytes")
    assert marker.exists(), "the plain unpickler runs the command: the test pickle is live"


class Reduces:
    """Pickles as a call of func(*args), then, if given, __setstate__(state) on the result."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) + (() if self.state is None else (self.state,))


def _batch_with_data(folder, data, name="data_batch_1"):
    dump_py2({b"data": data, b"labels": [0]}, folder / name)


def test_an_object_array_with_too_short_a_list_is_refused_not_a_crash(cifar10_folder):
    """numpy's __setstate__ fills a 3-object array from an empty list: a segfault."""
    state = (1, (3,), np.dtype("O"), False, [])
    _batch_with_data(cifar10_folder.path, Reduces(_reconstruct, (np.ndarray, (0,), b"b"), state))
    code = ("import sys; from cifar_engine.data.cifar_pickle import read_cifar10\n"
            "from cifar_engine.errors import DataError\n"
            "try: read_cifar10(__import__('pathlib').Path(sys.argv[1]))\n"
            "except DataError as err: print(err)")

    result = subprocess.run([sys.executable, "-c", code, str(cifar10_folder.path)],
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "data_batch_1: not a readable pickle" in result.stdout


U1 = np.dtype("u1")
FOREIGN_DTYPE_STATES = {
    "names without their fields": (3, "|", None, ("a", "b"), {"a": (U1, 0)}, -1, -1, 0),
    "a subarray of a scalar type": (3, "|", (U1, (2,)), None, None, -1, -1, 0),
    "an item size foreign to the type": (3, "|", None, None, None, 100, 1, 0),
    "another type's state": np.dtype("<f8").__reduce__()[2],
}


@pytest.mark.parametrize("state", FOREIGN_DTYPE_STATES.values(), ids=FOREIGN_DTYPE_STATES)
def test_a_dtype_given_a_state_numpy_never_gives_it_is_refused(cifar10_folder, state):
    """numpy's dtype __setstate__ takes any of these; reads of the dtype then crash."""
    _batch_with_data(cifar10_folder.path, Reduces(np.dtype, ("u1", 0, 1), state))

    with pytest.raises(DataError, match="data_batch_1: not a readable pickle.*foreign"):
        read_cifar10(cifar10_folder.path)


def test_only_arrays_and_dtypes_are_given_a_state(cifar10_folder):
    """The plain unpickler writes a BUILD's dict into any object's __dict__: here into the
    engine's own stand-in for numpy's _reconstruct."""
    path = cifar10_folder.path / "data_batch_1"
    path.write_bytes(b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n}X\x01\x00\x00\x00aK\x00sb.")

    with pytest.raises(DataError,
                       match="data_batch_1: not a readable pickle.*state of a function"):
        read_cifar10(cifar10_folder.path)


MUTATE = """
import random, sys
import numpy as np
from fakes import dump_py2
from cifar_engine.data.cifar_pickle import _unpickle
from cifar_engine.errors import DataError
dump_py2({b"data": np.arange(6144, dtype=np.uint8).reshape(2, 3072), b"labels": [0, 1]}, PATH)
raw = open(PATH, "rb").read()
rng = random.Random(SEED)
for _ in range(20000):
    b = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(min(len(b), 300) if rng.random() < 0.7 else len(b))
        r = rng.random()
        if r < 0.5: b[k] = rng.randrange(256)
        elif r < 0.75: del b[k]
        else: b.insert(k, rng.randrange(256))
    try:
        batch = _unpickle("x", bytes(b))
    except DataError:
        continue
    for value in (batch.values() if isinstance(batch, dict) else ()):
        if isinstance(value, np.ndarray):
            repr(value), value.sum()
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_twenty_thousand_mutated_batches_load_or_are_refused_without_a_crash(tmp_path, seed):
    """Bytes changed, dropped or inserted where a batch's pickle names its dtype and array
    (and anywhere). Before dtype states were checked, seed 1 crashed the process."""
    code = MUTATE.replace("PATH", repr(str(tmp_path / "b"))).replace("SEED", str(seed))
    tests = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": tests})
    assert done.returncode == 0, done.stderr[-2000:]


HUGE_CLAIMS = {
    "array of 2**33 bytes": lambda: Reduces(_reconstruct, (np.ndarray, (2**33,), b"b")),
    "ndarray called": lambda: Reduces(np.ndarray, ((2**30,),)),
    "bytes of 2**33": b"\x80\x04\x8e" + struct.pack("<Q", 2**33) + b"short",
    "memo index 2**24": b"\x80\x02N" + b"r" + struct.pack("<I", 2**24) + b".",
}


@pytest.mark.parametrize("claim", HUGE_CLAIMS.values(), ids=HUGE_CLAIMS)
def test_a_pickle_claiming_a_huge_object_allocates_nothing(cifar10_folder, claim):
    path = cifar10_folder.path / "data_batch_1"
    if isinstance(claim, bytes):
        path.write_bytes(claim)
    else:
        _batch_with_data(cifar10_folder.path, claim())

    with pytest.raises(DataError, match="data_batch_1: not a (readable pickle|CIFAR batch)"), \
            allocates_at_most(80):
        read_cifar10(cifar10_folder.path)


def test_labels_nested_in_shared_lists_allocate_nothing(cifar10_folder):
    """A list holding itself twice, 22 levels deep, is 23 small lists in a pickle and
    2**22 integers to numpy."""
    nested = [0, 0]
    for _ in range(22):
        nested = [nested, nested]
    rewrite_pickle(cifar10_folder.path / "data_batch_1",
                   lambda batch: batch.__setitem__(b"labels", [nested] * 6))

    with pytest.raises(DataError, match="labels must be 6 integers"), allocates_at_most(80):
        read_cifar10(cifar10_folder.path)


def test_a_batch_of_no_images(cifar10_folder):
    rewrite_pickle(cifar10_folder.path / "test_batch", lambda batch: batch.update(
        {b"data": np.zeros((0, 3072), np.uint8), b"labels": []}))

    with pytest.raises(DataError, match="test_batch: holds no images"):
        read_cifar10(cifar10_folder.path)


def test_an_unreadable_batch_file(cifar10_folder, monkeypatch):
    broken = cifar10_folder.path / "data_batch_4"
    real_read_bytes = Path.read_bytes

    def read_bytes(path):
        if path == broken:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)

    with pytest.raises(DataError, match="data_batch_4: cannot read \\(Permission denied\\)"):
        read_cifar10(cifar10_folder.path)
