"""The real data sets that CI and the developers' machines hold. They fail, never skip, when
the data is missing: a silent skip would hide a broken data path."""
import time

import numpy as np

from cifar_engine.data import CIFAR10_CLASSES, FASHION_MNIST_CLASSES, N_BATCHES, load_dataset
from real_data import CIFAR10_JPEG, FASHION_MNIST
from real_data import require as _require


def _assert_counts(dataset, n_train, n_test, image_shape, class_names):
    assert dataset.image_shape == image_shape
    assert dataset.class_names == class_names
    n_classes = len(class_names)
    assert dataset.train_images.shape == (n_train, int(np.prod(image_shape)))
    assert dataset.test_images.shape == (n_test, int(np.prod(image_shape)))
    assert np.bincount(dataset.train_labels).tolist() == [n_train // n_classes] * n_classes
    assert np.bincount(dataset.test_labels).tolist() == [n_test // n_classes] * n_classes
    assert np.bincount(dataset.train_batches).tolist() == [n_train // N_BATCHES] * N_BATCHES


def test_cifar10_jpeg_archive(cifar10_jpeg):
    _assert_counts(cifar10_jpeg, 50_000, 10_000, (3, 32, 32), CIFAR10_CLASSES)
    assert 100 < cifar10_jpeg.train_images[:1000].mean() < 150  # natural images, not zeros


def test_cifar10_jpeg_second_load_is_fast(cifar10_jpeg, real_cache):
    start = time.perf_counter()
    again = load_dataset(CIFAR10_JPEG, cache_dir=real_cache, progress=False)
    elapsed = time.perf_counter() - start

    assert elapsed < 1.0, f"the cached load took {elapsed:.2f} s"
    np.testing.assert_array_equal(again.test_labels, cifar10_jpeg.test_labels)


def test_fashion_mnist(real_cache):
    _require(FASHION_MNIST, "apt-get install dataset-fashion-mnist (.ci/run does it)")

    dataset = load_dataset(FASHION_MNIST, cache_dir=real_cache, progress=False)

    _assert_counts(dataset, 60_000, 10_000, (1, 28, 28), FASHION_MNIST_CLASSES)
