import gzip

import numpy as np
import pytest

from fakes import assert_same_data, idx_bytes, write_idx
from cifar_engine.data.idx import FASHION_MNIST_CLASSES, IMAGES_MAGIC, LABELS_MAGIC, read_idx
from cifar_engine.errors import DataError

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
