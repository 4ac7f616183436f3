"""Fashion-MNIST's IDX files in a folder, gzipped (as distributed) or not.

The files are checked by structure, not by md5: Debian re-compressed the .gz files, so their
md5s differ from upstream's while the data inside is intact.
"""
import gzip
import struct
import zlib

import numpy as np

from ..errors import DataError
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


def _read(folder, name):
    """(path, bytes) of `name`.gz or `name` in folder, decompressed."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            break
    else:
        raise DataError(f"{folder}: no {name}.gz or {name}")
    try:
        data = path.read_bytes()
        return path, gzip.decompress(data) if path.suffix == ".gz" else data
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file, or truncated ({reason(err)})") from None


def _parse(path, data, magic):
    """The uint8 array that an IDX file holds, of shape given by its header."""
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(data) < header or struct.unpack_from(">I", data)[0] != magic:
        found = data[:4].hex() if len(data) >= 4 else "a short file"
        raise DataError(f"{path}: not an IDX file of {ndim}-d unsigned bytes "
                        f"(magic 0x{magic:08x} expected, found {found})")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    if len(data) != header + int(np.prod(shape)):
        raise DataError(f"{path}: header promises {header + int(np.prod(shape))} bytes "
                        f"for shape {shape}, the file holds {len(data)}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _split(folder, split):
    """Images uint8 (N, H*W), labels int64 (N,) and (H, W) of one split."""
    images_name, labels_name = IDX_FILES[split]
    images_path, images = _read(folder, images_name)
    images = _parse(images_path, images, IMAGES_MAGIC)
    labels_path, labels = _read(folder, labels_name)
    labels = _parse(labels_path, labels, LABELS_MAGIC).astype(np.int64)
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
