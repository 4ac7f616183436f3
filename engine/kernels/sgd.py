"""Mini-batch SGD with momentum over the whole parameter slab in one pass.

    v = mu v - eta g;  theta = theta + v               (classical momentum; mu = 0 is plain SGD)
    theta = theta + mu v_new - eta g                   (Nesterov, in the form of Sutskever et al.)

    theta, v, g : float[P]   parameters, velocity and gradient slabs (every layer's tensors)

L2 regularisation can be folded in: the first n_decay entries (the weight matrices) take
g + 2 lam theta as their gradient, which saves the backward pass a sweep over the weights.
"""
from numba import njit, prange

from .serial import prange_only, serial

_BLOCK = 8192  # entries per task: large enough to amortise the split, small enough to balance


@njit(cache=True)
def sgd_momentum(theta, v, g, eta, mu, nesterov, lam=0.0, n_decay=0):
    """Update theta and v in place from g (plus 2 lam theta on theta[:n_decay])."""
    t = theta.dtype.type  # scalars in the slab's dtype keep the loop in float32 vectors
    eta, mu, two_lam = t(eta), t(mu), t(2 * lam)
    # one expression for both rules: theta += c v_new - e g
    c, e = (mu, eta) if nesterov else (t(1), t(0))
    n_blocks = (theta.shape[0] + _BLOCK - 1) // _BLOCK
    if serial(theta.size):
        for blk in range(n_blocks):
            _update_block(theta, v, g, eta, mu, two_lam, c, e, n_decay, blk)
    else:
        _sgd_parallel(theta, v, g, eta, mu, two_lam, c, e, n_decay, n_blocks)


@njit(parallel=prange_only(), cache=True)
def _sgd_parallel(theta, v, g, eta, mu, two_lam, c, e, n_decay, n_blocks):
    for blk in prange(n_blocks):
        _update_block(theta, v, g, eta, mu, two_lam, c, e, n_decay, blk)


@njit(cache=True, inline="always")
def _update_block(theta, v, g, eta, mu, two_lam, c, e, n_decay, blk):
    lo = blk * _BLOCK
    hi = min(lo + _BLOCK, theta.shape[0])
    cut = min(max(n_decay, lo), hi)  # the block's decayed entries are [lo, cut)
    _update(theta[lo:cut], v[lo:cut], g[lo:cut], eta, mu, two_lam, c, e)
    _update(theta[cut:hi], v[cut:hi], g[cut:hi], eta, mu, two_lam * 0, c, e)  # no decay


@njit(cache=True, inline="always")
def _update(theta, v, g, eta, mu, two_lam, c, e):
    # a branch-free loop over slices indexed from 0: Numba compiles it to vector code
    for i in range(theta.shape[0]):
        gi = g[i] + two_lam * theta[i]
        vi = mu * v[i] - eta * gi
        v[i] = vi
        theta[i] += c * vi - e * gi
