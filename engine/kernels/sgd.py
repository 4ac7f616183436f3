"""Mini-batch SGD with momentum over the whole parameter slab in one pass.

    v = mu v - eta g;  theta = theta + v               (classical momentum; mu = 0 is plain SGD)
    theta = theta + mu v_new - eta g                   (Nesterov, in the form of Sutskever et al.)

    theta, v, g : float[P]   parameters, velocity and gradient slabs (every layer's tensors)

L2 regularisation can be folded in: the first n_decay entries (the weight matrices) take
g + 2 lam theta as their gradient, which saves the backward pass a sweep over the weights.
"""
from numba import njit, prange


@njit(parallel=True, cache=True)
def sgd_momentum(theta, v, g, eta, mu, nesterov, lam=0.0, n_decay=0):
    """Update theta and v in place from g (plus 2 lam theta on theta[:n_decay])."""
    two_lam = 2 * lam
    for i in prange(theta.shape[0]):
        gi = g[i] + two_lam * theta[i] if i < n_decay else g[i]
        vi = mu * v[i] - eta * gi
        v[i] = vi
        if nesterov:
            theta[i] += mu * vi - eta * gi
        else:
            theta[i] += vi
