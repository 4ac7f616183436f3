"""The batch side: gather a mini-batch from the stored images into a float buffer.

The dataset stays compact in memory: uint8 (150 MB for CIFAR-10's training set), or int16
for whitened images (see preprocessing.py); each batch is scaled on the fly as it is
gathered, and augmented in the same pass. Augmentation acts on the preprocessed image: a
pixel that is translated in from outside the frame is 0 (the training mean), and noise is
in units of each feature's scale.

    X        : float[n, D]   the batch (output), D = C * H * W, channel-major like CIFAR
    images   : uint8 or int16[N, D]   the whole dataset (or memory map)
    rows     : int64[n]      which images form the batch, in batch order
    mean     : float[D]      per-feature offset (the training split's mean; 0 when whitened)
    inv_std  : float[D]      per-feature scale (1 / std; the quantisation step when whitened)
"""
from collections import namedtuple

from numba import njit, prange

from .rng import normal, substream, uniform
from .serial import prange_only, serial

Augment = namedtuple("Augment", ["flip", "max_shift", "noise_sigma", "noise_fraction"])
Augment.__doc__ = """What to do to a training batch as it is gathered.

flip: bool, mirror each image left-right with probability 1/2; max_shift: int, translate
each image by a uniform whole number of pixels in [-max_shift, max_shift] on each axis;
noise_sigma, noise_fraction: add N(0, sigma^2) to every feature of a random fraction of
the batch.
"""
NO_AUGMENT = Augment(False, 0, 0.0, 0.0)

# Draws per image, so that each image's flip and shifts have their own counters.
_DRAWS_PER_IMAGE = 3


@njit(cache=True)
def gather(X, images, rows, mean, inv_std, image_shape, augment, key):
    """X[i] = augment((images[rows[i]] - mean) * inv_std); key seeds this batch's draws."""
    if serial(X.size):
        for i in range(X.shape[0]):
            _gather_row(X, i, images, rows[i], mean, inv_std, image_shape, augment, key)
    else:
        _gather_parallel(X, images, rows, mean, inv_std, image_shape, augment, key)


@njit(parallel=prange_only(), cache=True)
def _gather_parallel(X, images, rows, mean, inv_std, image_shape, augment, key):
    for i in prange(X.shape[0]):
        _gather_row(X, i, images, rows[i], mean, inv_std, image_shape, augment, key)


@njit(cache=True)  # not inlined: one compiled body for both loop forms (it is large)
def _gather_row(X, i, images, src, mean, inv_std, image_shape, augment, key):
    n, D = X.shape
    if augment.flip or augment.max_shift > 0:
        _gather_moved(X, i, images, src, mean, inv_std, image_shape, augment, key)
    else:
        for j in range(D):
            X[i, j] = (images[src, j] - mean[j]) * inv_std[j]
    if augment.noise_sigma > 0 and uniform(key, _DRAWS_PER_IMAGE * n + i) < augment.noise_fraction:
        noise_key = substream(key, i)
        for j in range(D):
            X[i, j] += augment.noise_sigma * normal(noise_key, j)


@njit(cache=True, inline="always")
def _gather_moved(X, i, images, src, mean, inv_std, image_shape, augment, key):
    C, H, W = image_shape
    flip = augment.flip and uniform(key, _DRAWS_PER_IMAGE * i) < 0.5
    k = augment.max_shift
    dy = int(uniform(key, _DRAWS_PER_IMAGE * i + 1) * (2 * k + 1)) - k
    dx = int(uniform(key, _DRAWS_PER_IMAGE * i + 2) * (2 * k + 1)) - k
    for c in range(C):
        for y in range(H):
            sy = y - dy
            for x in range(W):
                sx = x - dx
                j = (c * H + y) * W + x
                if sy < 0 or sy >= H or sx < 0 or sx >= W:
                    X[i, j] = 0
                    continue
                if flip:
                    sx = W - 1 - sx
                s = (c * H + sy) * W + sx
                X[i, j] = (images[src, s] - mean[s]) * inv_std[s]
