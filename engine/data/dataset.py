"""The in-memory form of every data source, and the fixed batches of sources that have none."""
import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
N_BATCHES = 5
# Seed of the one fixed shuffle that cuts a training set without official batches into
# N_BATCHES batches: every run and every test sees the same "data_batch_1..5".
SPLIT_SEED = 20_240_601


@dataclass(frozen=True, eq=False)
class Dataset:
    """A decoded data set: images as uint8 rows, channel-major like CIFAR's files.

    Attributes
    ----------
    train_images : uint8 (N_train, C*H*W), maybe a read-only memmap
    train_labels : int64 (N_train,)
    test_images : uint8 (N_test, C*H*W)
    test_labels : int64 (N_test,)
    class_names : tuple of str, indexed by label
    image_shape : (C, H, W)
    source : str, what was read (kind and path)
    train_batches : int64 (N_train,), batch number 0..4 of each training image
    cache_entry : Path or None, the cache entry folder the arrays were read from (statistics
        fitted on them are cached there); None for a Dataset built in memory
    sha256 : str, `dataset_sha256` as the cache entry recorded it, or "" (computed when asked)
    """

    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    class_names: tuple
    image_shape: tuple
    source: str
    train_batches: np.ndarray = field(repr=False)
    cache_entry: object = field(default=None, repr=False)
    sha256: str = field(default="", repr=False)

    @property
    def n_classes(self):
        return len(self.class_names)


HASHED_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels", "train_batches")
HASH_ROWS = 4096  # rows hashed at a time: a memory-mapped set is never copied whole


def dataset_sha256(dataset):
    """sha256 (hex str) of what a run reads of `dataset`: its class names, image shape and
    every array's dtype, shape and bytes. The cache entry records it as it is decoded."""
    if dataset.sha256:
        return dataset.sha256
    digest = hashlib.sha256(repr((dataset.class_names, dataset.image_shape)).encode())
    for name in HASHED_ARRAYS:
        array = getattr(dataset, name)
        digest.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
        for start in range(0, len(array), HASH_ROWS):
            digest.update(np.ascontiguousarray(array[start:start + HASH_ROWS]).data)
    return digest.hexdigest()


def seeded_batches(images, labels):
    """Put a training set in the fixed SPLIT_SEED order and cut it into N_BATCHES batches.

    Parameters
    ----------
    images : uint8 (N, D), in the source's deterministic base order
    labels : int64 (N,)

    Returns
    -------
    images, labels : the same rows in the fixed order (copies)
    batches : int64 (N,), 0 for the first N/5 rows ... 4 for the last (sizes differ by at
        most one when N is not a multiple of 5)
    """
    n = len(labels)
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    batches = np.arange(n, dtype=np.int64) * N_BATCHES // max(n, 1)
    return images[order], labels[order], batches


def seeded_dataset(train, test, class_names, image_shape, source):
    """A Dataset of a source without official batches (see `seeded_batches`).

    Parameters
    ----------
    train, test : (images uint8 (N, C*H*W), labels int64 (N,)), in the source's base order
    class_names : sequence of str
    image_shape : (C, H, W)
    source : str
    """
    train_images, train_labels, batches = seeded_batches(*train)
    return Dataset(train_images, train_labels, *test, tuple(class_names), tuple(image_shape),
                   source, batches)


def check_labels(labels, n_classes, where):
    """Raise DataError naming `where` unless every label lies in 0..n_classes-1."""
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{where}: labels must lie in 0..{n_classes - 1}, found {labels.min()}..{labels.max()}"
        )


def check_dataset(dataset, where):
    """Raise DataError naming `where` unless the arrays of `dataset` agree with each other."""
    n_features = int(np.prod(dataset.image_shape))
    for split in ("train", "test"):
        images, labels = getattr(dataset, f"{split}_images"), getattr(dataset, f"{split}_labels")
        if images.dtype != np.uint8 or images.shape != (len(labels), n_features):
            raise DataError(f"{where}: {split} images are {images.dtype} {images.shape}, "
                            f"expected uint8 ({len(labels)}, {n_features})")
        check_labels(labels, dataset.n_classes, where)
    if dataset.train_batches.shape != dataset.train_labels.shape:
        raise DataError(f"{where}: {len(dataset.train_batches)} batch numbers for "
                        f"{len(dataset.train_labels)} training images")
    check_labels(dataset.train_batches, N_BATCHES, where)
