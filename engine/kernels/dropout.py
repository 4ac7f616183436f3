"""Inverted dropout on a layer's output, masks drawn from the counter-based generator.

The backward pass needs no mask: a dropped unit's output is 0, so the ReLU mask of
`dense_backward_input` zeroes its gradient, and the kept ones take the same 1 / (1 - p).

    H : float[n, m]   a hidden layer's post-ReLU output, changed in place
"""
from numba import njit, prange

from .rng import uniform


@njit(parallel=True, cache=True)
def dropout_forward(H, p, key):
    """Zero each entry with probability p and scale the rest by 1 / (1 - p), in place."""
    n, m = H.shape
    scale = H.dtype.type(1.0 / (1.0 - p))
    for i in prange(n):
        for j in range(m):
            if uniform(key, i * m + j) < p:
                H[i, j] = 0
            else:
                H[i, j] *= scale
