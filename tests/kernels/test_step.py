"""step.py's gather_inputs: the inputs of a batch, gathered and augmented, then projected
when the source has a projection (checked against `gather` and a NumPy product)."""
import numpy as np
import pytest

from cifar_engine.kernels.batch import Augment, gather
from cifar_engine.kernels.step import BatchSource, gather_inputs

IMAGE_SHAPE = (3, 5, 7)
D = int(np.prod(IMAGE_SHAPE))
KEY = np.uint64(77)
AUGMENT = Augment(True, 2, 0.1, 0.5)


@pytest.fixture
def source(rng, dtype):
    """A BatchSource of 40 random uint8 images; projection(k) gives it a random (D, k) one."""
    images = rng.integers(0, 256, (40, D), dtype=np.uint8)
    mean = images.mean(axis=0).astype(dtype)
    inv_std = (1 / (images.std(axis=0) + 1)).astype(dtype)

    def make(k):
        projection = (rng.standard_normal((D, k)) if k else np.zeros((0, 0))).astype(dtype)
        return BatchSource(images, np.zeros(40, np.int64), mean, inv_std, IMAGE_SHAPE,
                           projection)
    return make


@pytest.mark.parametrize("n", [1, 9, 600])
@pytest.mark.parametrize("in_order", [False, True])
def test_projected_inputs_are_the_augmented_rows_times_the_projection(n, in_order, source, rng,
                                                                     garbage, assert_close):
    data = source(6)
    rows = rng.integers(0, 40, n)
    X, raw, R = garbage(n, 6), garbage(n + 3, D), garbage(n, D)

    gather_inputs(X, raw, data, rows, AUGMENT, KEY, in_order)

    gather(R, data.images, rows, data.mean, data.inv_std, IMAGE_SHAPE, AUGMENT, KEY)
    assert np.isfinite(R).all()
    assert_close(X, R.astype(np.float64) @ data.projection.astype(np.float64))


def test_in_order_a_rows_inputs_do_not_depend_on_the_rows_beside_it(source, rng, garbage):
    data = source(6)
    rows = rng.integers(0, 40, 300)
    X, one, raw = garbage(300, 6), garbage(1, 6), garbage(300, D)

    gather_inputs(X, raw, data, rows, AUGMENT, KEY, True)
    gather_inputs(one, raw, data, rows[:1], AUGMENT, KEY, True)

    assert np.array_equal(one, X[:1])


def test_without_a_projection_the_rows_are_gathered_as_they_are(source, rng, garbage):
    data = source(0)
    rows = rng.integers(0, 40, 20)
    X, R = garbage(20, D), garbage(20, D)

    gather_inputs(X, garbage(20, 0), data, rows, AUGMENT, KEY, False)

    gather(R, data.images, rows, data.mean, data.inv_std, IMAGE_SHAPE, AUGMENT, KEY)
    assert np.array_equal(X, R)
