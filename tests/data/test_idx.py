import gzip
import struct

import numpy as np
import pytest

from cifar_engine.data import load_dataset
from cifar_engine.data.idx import FASHION_MNIST_CLASSES, IMAGES_MAGIC, LABELS_MAGIC, read_idx
from cifar_engine.errors import DataError
from fakes import assert_same_data, idx_bytes, write_idx
from properties import allocates_at_most

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"


@pytest.mark.parametrize("compress", [True, False])
def test_reads_idx_files_gzipped_or_not(tmp_path, compress):
    fake = write_idx(tmp_path / "fashion", compress=compress)

    dataset = read_idx(fake.path)

    assert_same_data(dataset, fake)
    assert dataset.image_shape == (1, 6, 5)
    assert dataset.class_names == FASHION_MNIST_CLASSES
    assert np.bincount(dataset.train_batches).tolist() == [4] * 5


def _rewrite(path, content):
    path.write_bytes(gzip.compress(content))


def _images(n=20):
    return np.zeros((n, 6, 5), np.uint8)


BAD_FILES = {
    "labels magic on images": (TRAIN_IMAGES, idx_bytes(LABELS_MAGIC, _images()),
                               "magic 0x00000803"),
    "images magic on labels": (TRAIN_LABELS, idx_bytes(IMAGES_MAGIC, _images()),
                               "magic 0x00000801"),
    "short file": (TRAIN_IMAGES, b"\x00\x00", "magic"),
    "data cut short": (TRAIN_IMAGES, idx_bytes(IMAGES_MAGIC, _images())[:-7], "the file holds"),
    "data too long": (TRAIN_IMAGES, idx_bytes(IMAGES_MAGIC, _images()) + b"xx", "the file holds"),
    "count mismatch": (TRAIN_IMAGES, idx_bytes(IMAGES_MAGIC, _images(19)),
                       "20 labels for 19 images"),
    "label 10": (TRAIN_LABELS, idx_bytes(LABELS_MAGIC, np.full(20, 10)), "0..9"),
}


@pytest.mark.parametrize("name, content, message", BAD_FILES.values(), ids=BAD_FILES)
def test_bad_idx_content_is_a_data_error_naming_the_file(idx_folder, name, content, message):
    _rewrite(idx_folder.path / name, content)

    with pytest.raises(DataError, match=r"idx[13]-ubyte") as error:
        read_idx(idx_folder.path)

    assert message in str(error.value)


@pytest.mark.parametrize("cut", [10, -3])
def test_a_truncated_gzip_file(idx_folder, cut):
    path = idx_folder.path / TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:cut])

    with pytest.raises(DataError, match=f"{TRAIN_IMAGES}: not a readable gzip file, or truncated"):
        read_idx(idx_folder.path)


def test_a_gz_file_that_is_not_gzip(idx_folder):
    (idx_folder.path / TRAIN_LABELS).write_bytes(b"plain text")

    with pytest.raises(DataError, match=f"{TRAIN_LABELS}: not a readable gzip file"):
        read_idx(idx_folder.path)


def test_a_missing_file(idx_folder):
    (idx_folder.path / "t10k-labels-idx1-ubyte.gz").unlink()

    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte"):
        read_idx(idx_folder.path)


def _one_idx_file(idx_folder, name, content):
    """idx_folder with `name` (gzipped) holding `content`."""
    _rewrite(idx_folder.path / name, content)
    return idx_folder.path


@pytest.mark.parametrize("n_train, n_test", [(0, 10), (20, 0)])
def test_files_holding_no_images_are_one_data_error(tmp_path, cache_dir, n_train, n_test):
    fake = write_idx(tmp_path / "fashion", n_train=n_train, n_test=n_test)

    with pytest.raises(DataError, match=r"idx3-ubyte\.gz: holds no images") as error:
        load_dataset(fake.path, cache_dir=cache_dir)

    assert "\n" not in str(error.value)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_images_of_no_pixels_are_refused(idx_folder):
    path = _one_idx_file(idx_folder, TRAIN_IMAGES, idx_bytes(IMAGES_MAGIC, np.zeros((20, 0, 5))))

    with pytest.raises(DataError, match="holds no images .*20 x 0 x 5"):
        read_idx(path)


@pytest.mark.parametrize("dims, n_bytes", [
    ((2**31, 2**31, 4), 0),  # 2**64 pixels: 0 in int64 arithmetic, as many as the file holds
    ((2**32 - 1,) * 3, 600),
    ((20, 2**21, 2**21), 600),
])
def test_a_header_promising_more_than_the_file_holds(idx_folder, dims, n_bytes):
    content = struct.pack(">4I", IMAGES_MAGIC, *dims) + bytes(n_bytes)
    path = _one_idx_file(idx_folder, TRAIN_IMAGES, content)

    with pytest.raises(DataError, match="header promises"), allocates_at_most(16):
        read_idx(path)


def test_a_gzip_bomb_is_read_no_further_than_its_header_promises(idx_folder):
    """60 MB of zeros behind a header promising 600 bytes: refused, having decompressed
    little more than the promise."""
    content = idx_bytes(IMAGES_MAGIC, np.zeros((20, 6, 5))) + bytes(60 << 20)
    path = _one_idx_file(idx_folder, TRAIN_IMAGES, content)

    with pytest.raises(DataError, match="the file holds more"), allocates_at_most(8):
        read_idx(path)
