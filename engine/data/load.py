"""The one entry point: find a source, read it with the reader of its kind, cache the arrays."""
from functools import partial

from ..errors import SettingError, literal
from .cache import cached_dataset
from .cifar_pickle import CIFAR100_LABELS, read_cifar10, read_cifar100
from .idx import read_idx
from .image_folder import read_image_folder
from .source import (CIFAR10_PYTHON, CIFAR100_PYTHON, IDX, IMAGE_FOLDER, detect_source,
                     resolve_source)

READERS = {
    CIFAR10_PYTHON: read_cifar10,
    CIFAR100_PYTHON: read_cifar100,
    IMAGE_FOLDER: read_image_folder,
    IDX: read_idx,
}
LABEL_OPTIONS = tuple(CIFAR100_LABELS)


def _reader(kind, labels):
    if labels not in LABEL_OPTIONS:
        raise SettingError("labels", f"{literal(repr(labels))}: choose one of "
                                     f"{', '.join(LABEL_OPTIONS)}")
    if kind == CIFAR100_PYTHON:
        return partial(read_cifar100, labels=labels)
    if labels != "fine":
        raise SettingError("labels", f"{labels}: only CIFAR-100 has coarse labels, not {kind}")
    return READERS[kind]


def load_dataset(src=None, *, labels="fine", cache_dir=None, progress=None):
    """Load a data set, decoding it only the first time (see `cache`).

    Parameters
    ----------
    src : path or None, the source (see `resolve_source`): a CIFAR-10/100 python release
        (archive or folder), an image folder or a tar of one, or Fashion-MNIST IDX files
    labels : "fine" or "coarse" (CIFAR-100's 20 superclasses)
    cache_dir : path or None, default $CIFAR_ENGINE_CACHE, else `<repo>/data/cache` in a
        checkout, else ~/.cache/cifar-engine
    progress : bool or None, False hides the decoding progress bar (shown on a terminal only)

    Returns
    -------
    Dataset, with read-only memory-mapped arrays.

    Raises
    ------
    DataError : a source that is missing or malformed, or a cache folder that cannot be written
    SettingError : a bad `labels`
    """
    kind, path = detect_source(resolve_source(src))
    read = _reader(kind, labels)
    return cached_dataset(path, kind, {"labels": labels},
                          partial(read, path, progress=progress), cache_dir=cache_dir)
