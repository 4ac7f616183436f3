"""Builders of tiny data sets in each format the engine reads, and their expected arrays.

conftest.py turns them into fixtures; tests that corrupt a source import the helpers here.
"""
import dataclasses
import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from cifar_engine.data import CIFAR10_CLASSES, SPLIT_SEED

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct


@dataclasses.dataclass(frozen=True)
class Fake:
    """A source written to disk and what reading it must give (training set in base order)."""

    path: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple
    image_shape: tuple


def random_images(n, shape, seed):
    """uint8 (n, prod(shape)) noise."""
    return np.random.default_rng(seed).integers(0, 256, (n, int(np.prod(shape))), dtype=np.uint8)


def balanced_labels(n, n_classes, seed):
    """int64 (n,) that cover every class when n >= n_classes, in a shuffled order."""
    return np.random.default_rng(seed).permutation(np.arange(n) % n_classes).astype(np.int64)


def seeded(array):
    """`array` in the fixed order of the seeded batches (what a reader stores)."""
    return array[np.random.default_rng(SPLIT_SEED).permutation(len(array))]


def assert_same_data(dataset, fake, seeded_train=True):
    """Check that `dataset` holds exactly the fake's arrays, names and shape."""
    order = seeded if seeded_train else (lambda array: array)
    np.testing.assert_array_equal(dataset.train_images, order(fake.train_images))
    np.testing.assert_array_equal(dataset.train_labels, order(fake.train_labels))
    np.testing.assert_array_equal(dataset.test_images, fake.test_images)
    np.testing.assert_array_equal(dataset.test_labels, fake.test_labels)
    assert dataset.class_names == fake.class_names
    assert dataset.image_shape == fake.image_shape
    assert dataset.train_images.dtype == np.uint8 and dataset.train_labels.dtype == np.int64


# --- CIFAR python releases -------------------------------------------------------------

class Py2Pickler(pickle._Pickler):
    """Pickles the way CIFAR's Python-2 cPickle did: protocol 2, byte strings as BINSTRING
    (not Python 3's `_codecs.encode` call), numpy's reconstructor under `numpy.core`."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file):
        super().__init__(file, protocol=2)

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def dump_py2(obj, path):
    buffer = io.BytesIO()
    Py2Pickler(buffer).dump(obj)
    Path(path).write_bytes(buffer.getvalue())


def load_py2(path):
    return pickle.loads(Path(path).read_bytes(), encoding="bytes")


def rewrite_pickle(path, change):
    """Apply `change(obj)` (which edits in place) to the pickle at `path`."""
    obj = load_py2(path)
    change(obj)
    dump_py2(obj, path)


def _cifar_batch(images, labels, label_key, name):
    return {
        b"batch_label": name.encode(),
        label_key: [int(label) for label in labels],
        b"data": images,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(labels))],
    }


def write_cifar10(folder, per_batch=6, n_test=8):
    """A `cifar-10-batches-py` folder: 5 batches of `per_batch` images and a test batch."""
    folder.mkdir(parents=True)
    n_train = 5 * per_batch
    train_images = random_images(n_train, (3, 32, 32), 1)
    test_images = random_images(n_test, (3, 32, 32), 2)
    train_labels, test_labels = balanced_labels(n_train, 10, 3), balanced_labels(n_test, 10, 4)
    for i in range(5):
        rows = slice(i * per_batch, (i + 1) * per_batch)
        dump_py2(_cifar_batch(train_images[rows], train_labels[rows], b"labels",
                              f"training batch {i + 1} of 5"), folder / f"data_batch_{i + 1}")
    dump_py2(_cifar_batch(test_images, test_labels, b"labels", "testing batch 1 of 1"),
             folder / "test_batch")
    dump_py2({b"num_cases_per_batch": per_batch, b"num_vis": 3072,
              b"label_names": [name.encode() for name in CIFAR10_CLASSES]},
             folder / "batches.meta")
    return Fake(folder, train_images, train_labels, test_images, test_labels,
                CIFAR10_CLASSES, (3, 32, 32))


CIFAR100_FINE = tuple(f"fine{i:02d}" for i in range(100))
CIFAR100_COARSE = tuple(f"coarse{i:02d}" for i in range(20))


def write_cifar100(folder, n_train=15, n_test=5, labels="fine"):
    """A `cifar-100-python` folder (train, test, meta). Returns the Fake for `labels`."""
    folder.mkdir(parents=True)
    images = {"train": random_images(n_train, (3, 32, 32), 5),
              "test": random_images(n_test, (3, 32, 32), 6)}
    fine = {"train": balanced_labels(n_train, 100, 7), "test": balanced_labels(n_test, 100, 8)}
    coarse = {split: values // 5 for split, values in fine.items()}
    for split in ("train", "test"):
        batch = _cifar_batch(images[split], fine[split], b"fine_labels", split)
        batch[b"coarse_labels"] = [int(label) for label in coarse[split]]
        dump_py2(batch, folder / split)
    dump_py2({b"fine_label_names": [n.encode() for n in CIFAR100_FINE],
              b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE]}, folder / "meta")
    chosen, names = (fine, CIFAR100_FINE) if labels == "fine" else (coarse, CIFAR100_COARSE)
    return Fake(folder, images["train"], chosen["train"], images["test"], chosen["test"],
                names, (3, 32, 32))


# --- image folders ----------------------------------------------------------------------

def write_image_tree(root, classes=("ant", "bee", "cow"), per_class=(4, 2), size=(5, 3),
                     mode="RGB", suffix=".png"):
    """ROOT/{train,test}/<class>/NNNN<suffix>: `per_class` (train, test) images per class,
    size (W, H). The expected arrays are in base order (class, then file name)."""
    width, height = size
    channels = 1 if mode == "L" else 3
    arrays = {}
    for split, count in zip(("train", "test"), per_class):
        images = random_images(count * len(classes), (channels, height, width), len(split))
        for row, (label, i) in enumerate((label, i) for label in range(len(classes))
                                         for i in range(count)):
            folder = root / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            hwc = images[row].reshape(channels, height, width).transpose(1, 2, 0)
            Image.fromarray(hwc[:, :, 0] if mode == "L" else hwc).save(
                folder / f"{i:04d}{suffix}")
        arrays[split] = images, np.repeat(np.arange(len(classes)), count)
    return Fake(root, *arrays["train"], *arrays["test"], tuple(classes),
                (channels, height, width))


def write_learnable_tree(root, per_class=(100, 20), noise=40.0):
    """ROOT/{train,test}/{dark,grey,light}/N.png: 8x8 RGB images whose class is their
    brightness (40, 120, 200) under Gaussian pixel noise of sd `noise`, so that a tiny run
    learns them gradually (curves and search values that look like real ones)."""
    rng = np.random.default_rng(0)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(("dark", "grey", "light")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.normal(40 + 80 * label, noise, (8, 8, 3)).clip(0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}.png")
    return root


def tar_folder(folder, archive, top=None):
    """A tar (gzipped when the name ends .gz/.tgz) of the content of `folder`, under `top`."""
    mode = "w:gz" if archive.name.endswith((".gz", ".tgz")) else "w"
    with tarfile.open(archive, mode) as tar:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix()
            tar.add(path, arcname=f"{top}/{name}" if top else name, recursive=False)
    return archive


# --- Fashion-MNIST IDX ------------------------------------------------------------------

def idx_bytes(magic, array):
    """An IDX file: magic, dimensions, then the uint8 data."""
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_idx(folder, n_train=20, n_test=10, size=(6, 5), compress=True):
    """The four Fashion-MNIST IDX files of tiny (H, W) = `size` images."""
    from cifar_engine.data.idx import (FASHION_MNIST_CLASSES, IDX_FILES, IMAGES_MAGIC,
                                       LABELS_MAGIC)

    folder.mkdir(parents=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = random_images(n, size, 9 + n)
        labels = balanced_labels(n, 10, 10 + n)
        contents = (idx_bytes(IMAGES_MAGIC, images.reshape(n, *size)),
                    idx_bytes(LABELS_MAGIC, labels))
        for name, content in zip(IDX_FILES[split], contents):
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(content))
            else:
                (folder / name).write_bytes(content)
        arrays[split] = images, labels
    return Fake(folder, *arrays["train"], *arrays["test"], FASHION_MNIST_CLASSES, (1, *size))


# `cifar-engine train` options for a run of a few dozen steps on a tiny image tree (100
# training images per class): 16 hidden units, batches of 10, one cycle of 2 epochs.
FAST_TRAIN = ["--hidden", "16", "--batch-size", "10", "--schedule", "triangular", "--n-s", "2ep",
              "--eta-min", "1e-4", "--eta-max", "0.05", "--eval-every", "6"]


def assert_one_line_error(result, message):
    """A click CliRunner result that ended as a user mistake must: exit 2, nothing on stdout,
    one `cifar-engine: error:` line on stderr holding `message`, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("cifar-engine: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output
