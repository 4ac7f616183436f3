"""The decoded-array cache: a source is decoded once, then its arrays are memory-mapped.

An entry is a folder `<kind>-<origin>-<state>` in the cache folder, holding one .npy file per
Dataset array and a meta.json. `origin` hashes what is read (kind, resolved path, options),
`state` hashes the cache format and the source's file names, sizes and mtimes: a changed
source gets a new entry, and the entries of its older states are removed. An entry is
written into a temporary folder and renamed into place, so a half-written entry never
appears; on load it is checked against meta.json and rebuilt when anything disagrees. The
temporary folder's name holds the builder's pid: a build removes those of builders that
died (killed during a decode, say) before it starts its own.

An entry may also hold statistics fitted on its arrays (`cached_arrays`: a preprocessing's
fit, say), each an .npz written atomically beside the arrays, checksummed, and removed with
the entry.
"""
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError, UserError
from ..util.atomic import TEMP_SUFFIX, atomic_write, remove_dead_temps, temp_prefix
from .dataset import Dataset, check_dataset, dataset_sha256
from .paths import default_cache_dir
from .reasons import reason

FORMAT_VERSION = 2  # 2: meta.json records the sha256 of the whole data set
ARRAY_DTYPES = {
    "train_images": np.uint8,
    "train_labels": np.int64,
    "test_images": np.uint8,
    "test_labels": np.int64,
    "train_batches": np.int64,
}
N_SAMPLE_ROWS = 64  # image rows whose bytes meta.json checksums, spread over each split


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _state(path):
    """Names, sizes and mtimes of the source: its file, or every file below the folder."""
    if path.is_file():
        stat = path.stat()
        return f"{stat.st_size} {stat.st_mtime_ns}"
    rows = []
    for folder, subfolders, files in os.walk(path):
        subfolders.sort()
        for name in sorted(files):
            stat = os.stat(os.path.join(folder, name))
            rows.append(f"{os.path.relpath(os.path.join(folder, name), path)} "
                        f"{stat.st_size} {stat.st_mtime_ns}")
    return "\n".join(rows)


def entry_dir(cache_dir, path, kind, options):
    """The cache entry folder for the source at `path` as it is now."""
    resolved = path.resolve()
    origin = _digest(json.dumps([kind, str(resolved), options], sort_keys=True))
    state = _digest(f"{FORMAT_VERSION}\n{_state(resolved)}")
    return cache_dir / f"{kind}-{origin}-{state}"


def _checksums(arrays):
    """sha256 of all label arrays, and of a sample of image rows of each split."""
    labels = hashlib.sha256()
    sample = hashlib.sha256()
    for name, array in arrays.items():
        if array.dtype == np.uint8 and len(array):
            rows = np.unique(np.linspace(0, len(array) - 1, N_SAMPLE_ROWS).astype(np.int64))
            sample.update(np.ascontiguousarray(array[rows]).tobytes())
        else:
            labels.update(np.ascontiguousarray(array).tobytes())
    return {"labels": labels.hexdigest(), "image_sample": sample.hexdigest()}


def _unwritable(folder, err):
    return DataError(f"cache folder {folder}: cannot write ({err.strerror or reason(err)})")


def _write(dataset, folder):
    """Save the arrays of `dataset` and its meta.json into `folder`."""
    arrays = {name: getattr(dataset, name) for name in ARRAY_DTYPES}
    files = {}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
        files[name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                       "bytes": (folder / f"{name}.npy").stat().st_size}
    meta = {
        "format": FORMAT_VERSION,
        "source": dataset.source,
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape),
        "arrays": files,
        "checksums": _checksums(arrays),
        "sha256": dataset_sha256(dataset),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


def _open_array(entry, name, spec):
    """Memory-map one array, read-only; ValueError unless it matches its meta.json spec."""
    file = entry / f"{name}.npy"
    if file.stat().st_size != spec["bytes"]:
        raise ValueError(f"{file}: {file.stat().st_size} bytes, meta says {spec['bytes']}")
    array = np.load(file, mmap_mode="r", allow_pickle=False)
    if list(array.shape) != spec["shape"] or array.dtype != np.dtype(spec["dtype"]) \
            or array.dtype != ARRAY_DTYPES[name]:
        raise ValueError(f"{file}: {array.dtype} {array.shape} disagrees with meta.json")
    return array


def _load(entry):
    """The Dataset an entry holds, memory-mapped, or None if it is missing or does not check out."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta["format"] != FORMAT_VERSION:
            return None
        arrays = {name: _open_array(entry, name, meta["arrays"][name]) for name in ARRAY_DTYPES}
        if _checksums(arrays) != meta["checksums"]:
            return None
        dataset = Dataset(**arrays, class_names=tuple(meta["class_names"]),
                          image_shape=tuple(meta["image_shape"]), source=meta["source"],
                          cache_entry=entry, sha256=meta["sha256"])
        check_dataset(dataset, entry)
    except (OSError, ValueError, KeyError, TypeError):  # DataError is a ValueError too
        return None
    return dataset


def _store(read, entry):
    """Write the Dataset that `read()` returns as `entry`, through a temporary folder."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(entry.parent)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(entry.name), suffix=TEMP_SUFFIX,
                                    dir=entry.parent))
    except OSError as err:  # before the long decode, so that it is not wasted
        raise _unwritable(entry.parent, err) from None
    try:
        dataset = read()
        try:
            _write(dataset, tmp)
            shutil.rmtree(entry, ignore_errors=True)  # an entry that failed its checks
            os.rename(tmp, entry)
        except OSError as err:
            raise _unwritable(entry.parent, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prune(entry):
    """Remove the entries of the same source in its older states."""
    origin = entry.name.rsplit("-", 1)[0]
    for old in entry.parent.glob(f"{origin}-*"):
        if old != entry:
            shutil.rmtree(old, ignore_errors=True)


def cached_dataset(path, kind, options, read, cache_dir=None):
    """The Dataset of the source at `path`, from the cache, decoded by `read()` if need be.

    Parameters
    ----------
    path : Path of the source
    kind : str, the source's kind (part of the cache key)
    options : dict of JSON values, reading options (part of the cache key)
    read : callable returning the decoded Dataset
    cache_dir : path or None, default `default_cache_dir()`

    Returns
    -------
    Dataset whose arrays are read-only memmaps into the cache entry.
    """
    entry = entry_dir(Path(cache_dir or default_cache_dir()).expanduser(), path, kind, options)
    dataset = _load(entry)
    if dataset is None:
        _store(read, entry)
        _prune(entry)
        dataset = _load(entry)
        if dataset is None:
            raise DataError(f"{entry}: the cache entry just written does not read back")
    return dataset


# -- statistics fitted on an entry's arrays --------------------------------------------------

CHECKSUM = "sha256"  # the member of a statistics file that checksums the others


def _arrays_digest(arrays):
    """sha256 of every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _read_arrays(path):
    """The arrays of a statistics file, or None when it is missing or does not check out."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        checksum = str(arrays.pop(CHECKSUM)[()])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    return arrays if checksum == _arrays_digest(arrays) else None


def cached_arrays(path, compute):
    """The arrays that `compute()` returns ({name: array}), read from the .npz at `path`
    when an earlier call left them there, else computed and written there atomically.

    A file that is damaged (it fails its checksum, or does not read) is computed again and
    replaced. path None: computed, not cached. A cache folder that cannot be written costs
    only the saving: the arrays are still returned.
    """
    if path is None:
        return compute()
    path = Path(path)
    arrays = _read_arrays(path)
    if arrays is None:
        arrays = compute()
        remove_dead_temps(path.parent)
        try:
            with atomic_write(path) as file:
                np.savez(file, **arrays, **{CHECKSUM: np.array(_arrays_digest(arrays))})
        except UserError:
            pass
    return arrays
