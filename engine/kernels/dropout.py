"""Inverted dropout on a layer's output, masks drawn from the counter-based generator.

The backward pass needs no mask: a dropped unit's output is 0, so the ReLU mask of
`dense_backward_input` zeroes its gradient, and the kept ones take the same 1 / (1 - p).

    H : float[n, m]   a hidden layer's post-ReLU output, changed in place
"""
from numba import njit, prange

from .rng import uniform
from .serial import prange_only, serial


@njit(cache=True)
def dropout_forward(H, p, key):
    """Zero each entry with probability p and scale the rest by 1 / (1 - p), in place."""
    scale = H.dtype.type(1.0 / (1.0 - p))
    if serial(H.size):
        for i in range(H.shape[0]):
            _drop_row(H, i, p, scale, key)
    else:
        _dropout_parallel(H, p, scale, key)


@njit(parallel=prange_only(), cache=True)
def _dropout_parallel(H, p, scale, key):
    for i in prange(H.shape[0]):
        _drop_row(H, i, p, scale, key)


@njit(cache=True, inline="always")
def _drop_row(H, i, p, scale, key):
    m = H.shape[1]
    for j in range(m):
        H[i, j] = 0 if uniform(key, i * m + j) < p else H[i, j] * scale
