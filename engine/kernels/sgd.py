"""Mini-batch SGD with momentum over the whole parameter slab in one pass.

    v = mu v - eta g;  theta = theta + v               (classical momentum; mu = 0 is plain SGD)
    theta = theta + mu v_new - eta g                   (Nesterov, in the form of Sutskever et al.)

    theta, v, g : float[P]   parameters, velocity and gradient slabs (every layer's tensors)
"""
from numba import njit, prange


@njit(parallel=True, cache=True)
def sgd_momentum(theta, v, g, eta, mu, nesterov):
    """Update theta and v in place from g."""
    for i in prange(theta.shape[0]):
        vi = mu * v[i] - eta * g[i]
        v[i] = vi
        if nesterov:
            theta[i] += mu * vi - eta * g[i]
        else:
            theta[i] += vi
