"""Fashion-MNIST's IDX files in a folder, gzipped (as distributed) or not.

The files are checked by structure, not by md5: Debian re-compressed the .gz files, so their
md5s differ from upstream's while the data inside is intact. A file is read no further than
its header promises, so a header or a gzip stream that lies costs no memory.
"""
import contextlib
import gzip
import math
import struct
import zlib

import numpy as np

from ..errors import DataError
from .archive import read_at_most
from .dataset import check_labels, seeded_dataset
from .reasons import reason

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# split -> (images file, labels file), without the optional .gz
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# magic number -> number of dimensions; 0x08 in the third byte means unsigned bytes
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


def is_idx_folder(folder):
    """Whether `folder` holds Fashion-MNIST's training images file (gzipped or not)."""
    name = IDX_FILES["train"][0]
    return (folder / name).is_file() or (folder / f"{name}.gz").is_file()


def _find(folder, name):
    """The path of `name`.gz or `name` in folder."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    raise DataError(f"{folder}: no {name}.gz or {name}")


def _shape(path, head, magic):
    """The array shape that the IDX header `head` declares."""
    ndim = magic & 0xFF
    if len(head) < 4 * (1 + ndim) or struct.unpack_from(">I", head)[0] != magic:
        found = head[:4].hex() if len(head) >= 4 else "a short file"
        raise DataError(f"{path}: not an IDX file of {ndim}-d unsigned bytes "
                        f"(magic 0x{magic:08x} expected, found {found})")
    return struct.unpack_from(f">{ndim}I", head, 4)


def _read(path, magic):
    """The uint8 array of the IDX file at `path`, of the shape its header declares."""
    header = 4 * (1 + (magic & 0xFF))
    gzipped = path.suffix == ".gz"
    try:
        with open(path, "rb") as raw, \
                (gzip.GzipFile(fileobj=raw) if gzipped else contextlib.nullcontext(raw)) as file:
            shape = _shape(path, read_at_most(file, header), magic)
            # One byte more than promised tells a long file; reading to the end checks gzip's CRC.
            data = read_at_most(file, math.prod(shape) + 1)
    except (EOFError, OSError, zlib.error) as err:
        what = "not a readable gzip file, or truncated" if gzipped else "cannot read"
        raise DataError(f"{path}: {what} ({reason(err)})") from None
    if len(data) != math.prod(shape):
        held = "more" if len(data) > math.prod(shape) else header + len(data)
        raise DataError(f"{path}: header promises {header + math.prod(shape)} bytes "
                        f"for shape {shape}, the file holds {held}")
    return np.frombuffer(data, np.uint8).reshape(shape)


def _split(folder, split):
    """Images uint8 (N, H*W), labels int64 (N,) and (H, W) of one split."""
    images_path, labels_path = (_find(folder, name) for name in IDX_FILES[split])
    images = _read(images_path, IMAGES_MAGIC)
    if not images.size:
        raise DataError(f"{images_path}: holds no images (its header declares "
                        f"{' x '.join(map(str, images.shape))})")
    labels = _read(labels_path, LABELS_MAGIC).astype(np.int64)
    if len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images "
                        f"in {images_path}")
    check_labels(labels, len(FASHION_MNIST_CLASSES), labels_path)
    return images.reshape(len(images), -1), labels, images.shape[1:]


def read_idx(folder, progress=None):
    """Read Fashion-MNIST from the four IDX files in `folder`; image shape (1, 28, 28).

    The training set, in file order, is cut into the seeded batches of `seeded_batches`.
    `progress` is unused (the reader's signature is shared): reading takes under a second.
    """
    *train, train_hw = _split(folder, "train")
    *test, test_hw = _split(folder, "test")
    if train_hw != test_hw:
        raise DataError(f"{folder}: train images are {train_hw}, test images {test_hw}")
    return seeded_dataset(train, test, FASHION_MNIST_CLASSES, (1, *train_hw),
                          f"Fashion-MNIST IDX files {folder}")
