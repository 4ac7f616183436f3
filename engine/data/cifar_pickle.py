"""The official CIFAR-10 and CIFAR-100 python releases, read in place from archive or folder.

The files are Python-2 pickles. They are loaded with a restricted unpickler that admits only
numpy's array reconstruction, through checked stand-ins, and sets the state of nothing but
arrays and dtypes, each checked first, so a doctored file can neither run code nor make
numpy allocate or crash.
"""
import io
import math
import pickle

import numpy as np

from ..errors import DataError
from .archive import iter_files
from .dataset import N_BATCHES, Dataset, check_labels, seeded_dataset
from .reasons import reason

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

IMAGE_SHAPE = (3, 32, 32)
N_PIXELS = 3 * 32 * 32
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, N_BATCHES + 1))
CIFAR10_FILES = CIFAR10_TRAIN + ("test_batch", "batches.meta")
CIFAR100_FILES = ("train", "test", "meta")
# labels option -> (key of the labels in a batch, key of their names in meta)
CIFAR100_LABELS = {
    "fine": (b"fine_labels", b"fine_label_names"),
    "coarse": (b"coarse_labels", b"coarse_label_names"),
}


class _Array(np.ndarray):
    """An array being unpickled. numpy's __setstate__ trusts the state it is given: an
    object array whose list is too short crashes the process."""

    def __setstate__(self, state):
        _check_state(state)
        super().__setstate__(state)


def _check_state(state):
    """ValueError unless `state` (as ndarray.__reduce__ makes it) holds a numeric array's bytes."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise ValueError("not the state of an array")
    shape, dtype, _, data = state[-4:]
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise ValueError("only arrays of numbers, given as bytes, can be loaded")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
            and math.prod(shape) * dtype.itemsize == len(data)):
        raise ValueError(f"an array of shape {shape} and {len(data)} bytes of data")


def _check_dtype_state(dtype, state):
    """ValueError unless `state` is one that numpy itself gives `dtype` in some byte order.
    numpy's dtype __setstate__ takes whatever it is given: names without their fields, a
    subarray or an item size foreign to the type, which later reads turn into crashes."""
    canonical = [dtype.newbyteorder(order).__reduce__()[2] for order in "<>|="]
    if not any(_same(state, known) for known in canonical):
        raise ValueError(f"a state foreign to numpy's dtype {dtype}")


def _same(a, b):
    """Whether two pickled states are equal, value and type alike (no dtype-to-str equality)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


_NDARRAY = object()  # what the pickle's numpy.ndarray names: only an argument of _reconstruct


def _empty_array(subtype, shape, dtype):
    """numpy's _reconstruct for the empty array that an array's pickle starts from; numpy's
    own would allocate any shape the pickle names."""
    if subtype is not _NDARRAY or math.prod(shape) != 0:
        raise ValueError("an array reconstructed with a shape")
    return _reconstruct(_Array, shape, dtype)


def _dtype(spec, align=False, copy=False):
    """numpy.dtype as the official files call it: a type string and two flags."""
    if not (isinstance(spec, str) and type(align) in (bool, int) and type(copy) in (bool, int)):
        raise ValueError("a dtype made from anything but a type string and two flags")
    return np.dtype(spec, bool(align), bool(copy))


# Every global the official files name (numpy.core in the originals, numpy._core in re-pickles).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
}


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickles numpy arrays and plain Python data; refuses every other global.

    The Python unpickler, not the C one: the C one allocates the length that a string's
    opcode claims before it reads, and a memo as long as the largest index a pickle names.
    """

    def __init__(self, data, where):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.where = where

    def load_build(self):
        """BUILD: only an array or a dtype, each given a state checked before numpy sees it."""
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        elif not isinstance(inst, _Array):  # _Array checks its own state
            raise ValueError(f"sets the state of a {type(inst).__name__}")
        super().load_build()

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise DataError(
                f"{self.where}: refused to load global {module}.{name} "
                "(a CIFAR pickle holds only numpy arrays and lists)"
            ) from None


def _unpickle(where, data):
    try:
        return _RestrictedUnpickler(data, where).load()
    except DataError:
        raise
    except Exception as err:  # a damaged pickle can fail in almost any way
        raise DataError(
            f"{where}: not a readable pickle ({type(err).__name__}: {reason(err)})") from None


def _read_bytes(path):
    try:
        return path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or reason(err)})") from None


def _release_files(path, names, progress):
    """{name: (where, bytes)} for the named files of a release folder or archive."""
    if path.is_dir():
        files = {name: (str(path / name), _read_bytes(path / name))
                 for name in names if (path / name).is_file()}
    else:
        files = {parts[-1]: (f"{path}/{'/'.join(parts)}", data)
                 for parts, data in iter_files(path, progress) if parts and parts[-1] in names}
    missing = [name for name in names if name not in files]
    if missing:
        raise DataError(f"{path}: no {', '.join(missing)} in this CIFAR release")
    return files


def _read_release(path, names, progress):
    """{name: (where, unpickled object)} for the named files of a release."""
    files = _release_files(path, names, progress)
    return {name: (where, _unpickle(where, data)) for name, (where, data) in files.items()}


def _class_names(where, meta, key):
    names = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, bytes) for n in names):
        raise DataError(f"{where}: no list of class names under key {key.decode()}")
    return tuple(name.decode("utf-8", "replace") for name in names)


def _labels(where, batch, key, n):
    """The labels under `key`: n integers, a list (as in the official files) or an array."""
    labels = batch[key]
    # Only a flat list of ints is turned into an array: nested lists that share their
    # items (cheap in a pickle) would make numpy allocate an array of every level's length.
    if isinstance(labels, list) and len(labels) == n and all(isinstance(v, int) for v in labels):
        labels = np.asarray(labels)
    if not (isinstance(labels, np.ndarray) and labels.shape == (n,)
            and np.issubdtype(labels.dtype, np.integer)):
        raise DataError(f"{where}: {key.decode()} must be {n} integers, one per image")
    return np.asarray(labels)  # a plain ndarray, not the unpickler's _Array


def _batch(where, batch, label_key, n_classes):
    """Images uint8 (N, 3072) and labels int64 (N,) of one unpickled batch, checked."""
    if not isinstance(batch, dict):
        raise DataError(f"{where}: not a CIFAR batch (a {type(batch).__name__}, not a dict)")
    missing = [key.decode() for key in (b"data", label_key) if key not in batch]
    if missing:
        raise DataError(f"{where}: missing key {', '.join(missing)}")
    images = batch[b"data"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        kind = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(f"{where}: data must be a uint8 array, not {kind}")
    if images.ndim != 2 or images.shape[1] != N_PIXELS:
        raise DataError(f"{where}: data must have shape (N, {N_PIXELS}), not {images.shape}")
    if not len(images):
        raise DataError(f"{where}: holds no images")
    labels = _labels(where, batch, label_key, len(images))
    check_labels(labels, n_classes, where)
    return images.view(np.ndarray), labels.astype(np.int64)


def read_cifar10(path, progress=None):
    """Read the CIFAR-10 python release (`cifar-10-python.tar.gz` or `cifar-10-batches-py/`).

    Training images are data_batch_1..5 in file order; `train_batches` is the file's number - 1.
    """
    files = _read_release(path, CIFAR10_FILES, progress)
    names = _class_names(*files["batches.meta"], b"label_names")
    train = [_batch(*files[name], b"labels", len(names)) for name in CIFAR10_TRAIN]
    test_images, test_labels = _batch(*files["test_batch"], b"labels", len(names))
    return Dataset(
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        class_names=names,
        image_shape=IMAGE_SHAPE,
        source=f"CIFAR-10 python release {path}",
        train_batches=np.repeat(np.arange(N_BATCHES), [len(labels) for _, labels in train]),
    )


def read_cifar100(path, labels="fine", progress=None):
    """Read the CIFAR-100 python release (`cifar-100-python.tar.gz` or `cifar-100-python/`).

    `labels` is "fine" (100 classes) or "coarse" (20 superclasses). The training file has no
    batches: its images, in file order, are cut into the seeded batches of `seeded_batches`.
    """
    label_key, names_key = CIFAR100_LABELS[labels]
    files = _read_release(path, CIFAR100_FILES, progress)
    names = _class_names(*files["meta"], names_key)
    return seeded_dataset(
        train=_batch(*files["train"], label_key, len(names)),
        test=_batch(*files["test"], label_key, len(names)),
        class_names=names,
        image_shape=IMAGE_SHAPE,
        source=f"CIFAR-100 python release ({labels} labels) {path}",
    )
