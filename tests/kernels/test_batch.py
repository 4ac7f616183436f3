"""batch.py: gather standardises the chosen uint8 images and augments them as documented."""
import itertools

import numpy as np
import pytest

from cifar_engine.kernels.batch import NO_AUGMENT, Augment, gather

IMAGE_SHAPE = (3, 5, 7)  # C, H, W: not square, so a swapped axis shows
D = int(np.prod(IMAGE_SHAPE))
KEY = np.uint64(2024)


@pytest.fixture
def data(rng, dtype):
    """40 random uint8 images with their per-feature mean and 1 / std in the test's dtype."""
    images = rng.integers(0, 256, (40, D), dtype=np.uint8)
    mean = images.mean(axis=0).astype(dtype)
    inv_std = (1 / (images.std(axis=0) + 1)).astype(dtype)
    return images, mean, inv_std


@pytest.fixture
def gathered(data, rng, garbage):
    """gathered(n, augment): (X as float[n, C, H, W], the plain gather of the same rows)."""
    def run(n, augment):
        images, mean, inv_std = data
        rows = rng.integers(0, len(images), n)
        X, plain = garbage(n, D), garbage(n, D)
        gather(X, images, rows, mean, inv_std, IMAGE_SHAPE, augment, KEY)
        gather(plain, images, rows, mean, inv_std, IMAGE_SHAPE, NO_AUGMENT, KEY)
        return X.reshape(n, *IMAGE_SHAPE), plain.reshape(n, *IMAGE_SHAPE)
    return run


def translate(img, dy, dx):
    """img[c, y - dy, x - dx] at (c, y, x), 0 where that falls outside the frame."""
    _, H, W = img.shape
    out = np.zeros_like(img)
    out[:, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        img[:, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


def moves_of(X, plain, flips, max_shift):
    """For each row of X, the (flip, dy, dx) that turns the plain image into it."""
    shifts = range(-max_shift, max_shift + 1)
    found = []
    for x, img in zip(X, plain):
        matches = [(flip, dy, dx) for flip, dy, dx in itertools.product(flips, shifts, shifts)
                   if np.array_equal(x, translate(img[:, :, ::-1] if flip else img, dy, dx))]
        assert matches, "a row is no flip and translation of its image"
        found.append(matches[0])
    return found


@pytest.mark.parametrize("n", [1, 7, 64, 3000])  # 3000 rows run the parallel form
def test_without_augmentation_rows_are_standardised_images(n, data, rng, garbage, assert_close):
    images, mean, inv_std = data
    rows = rng.integers(0, len(images), n)
    X = garbage(n, D)
    gather(X, images, rows, mean, inv_std, IMAGE_SHAPE, NO_AUGMENT, KEY)
    assert_close(X, (images[rows] - mean.astype(np.float64)) * inv_std.astype(np.float64))


def test_flip_mirrors_about_half_the_rows_left_right(gathered):
    X, plain = gathered(64, Augment(True, 0, 0.0, 0.0))
    flips = [flip for flip, _, _ in moves_of(X, plain, flips=(False, True), max_shift=0)]
    assert 16 < sum(flips) < 48


@pytest.mark.parametrize("flip", [False, True])
def test_shifts_translate_by_every_offset_up_to_max_shift_with_zeros_in(flip, gathered):
    X, plain = gathered(100, Augment(flip, 2, 0.0, 0.0))
    moves = moves_of(X, plain, flips=(False, True) if flip else (False,), max_shift=2)
    assert {dy for _, dy, _ in moves} == {dx for _, _, dx in moves} == set(range(-2, 3))


@pytest.mark.parametrize("fraction, changed", [(0.0, 0), (1.0, 64)])
def test_noise_fraction_sets_which_rows_change(fraction, changed, gathered):
    X, plain = gathered(64, Augment(False, 0, 0.5, fraction))
    assert np.sum(np.any(X != plain, axis=(1, 2, 3))) == changed


def test_noise_has_the_given_sigma(gathered):
    X, plain = gathered(64, Augment(False, 0, 0.5, 1.0))
    noise = (X - plain).astype(np.float64)
    assert abs(noise.mean()) < 0.03 and abs(noise.std() - 0.5) < 0.03


def test_same_key_reproduces_the_batch_and_another_key_changes_it(data, garbage):
    everything = Augment(True, 2, 0.5, 0.5)
    images, mean, inv_std = data
    rows = np.arange(32)
    batches = []
    for key in (KEY, KEY, KEY + np.uint64(1)):
        X = garbage(32, D)
        gather(X, images, rows, mean, inv_std, IMAGE_SHAPE, everything, key)
        batches.append(X)
    np.testing.assert_array_equal(batches[0], batches[1])
    assert not np.array_equal(batches[0], batches[2])
