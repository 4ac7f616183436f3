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
    t = theta.dtype.type  # scalars in the slab's dtype keep the loop in float32 vectors
    eta, mu, two_lam = t(eta), t(mu), t(2 * lam)
    # one expression for both rules: theta += c v_new - e g
    c, e = (mu, eta) if nesterov else (t(1), t(0))
    for i in prange(theta.shape[0]):
        gi = g[i] + two_lam * theta[i] if i < n_decay else g[i]
        vi = mu * v[i] - eta * gi
        v[i] = vi
        theta[i] += c * vi - e * gi
