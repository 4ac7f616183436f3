"""sgd.py: plain SGD, classical momentum and Nesterov momentum, against NumPy."""
import numpy as np
import pytest

from cifar_engine.kernels.sgd import sgd_momentum

ETA = 0.05


def numpy_sgd(theta, v, g, mu, nesterov):
    """The update rule of sgd.py's docstring, in float64: (theta, v) after one step."""
    v = mu * v - ETA * g
    return theta + (mu * v - ETA * g if nesterov else v), v


@pytest.mark.parametrize("size", [1, 7, 1000, 300_000])  # the last in parallel form
@pytest.mark.parametrize("mu, nesterov", [(0.0, False), (0.9, False), (0.9, True)],
                         ids=["plain", "momentum", "nesterov"])
def test_three_updates_match_numpy(size, mu, nesterov, randn, assert_close):
    theta, v = randn(size), np.zeros(size, randn(1).dtype)
    theta_np, v_np = theta.astype(np.float64), v.astype(np.float64)
    for _ in range(3):
        g = randn(size)
        sgd_momentum(theta, v, g, ETA, mu, nesterov)
        theta_np, v_np = numpy_sgd(theta_np, v_np, g.astype(np.float64), mu, nesterov)
        assert_close(theta, theta_np, "theta")
        assert_close(v, v_np, "v")


@pytest.mark.parametrize("nesterov", [False, True])
def test_l2_decays_only_the_first_n_decay_entries(nesterov, randn, assert_close):
    lam, n_decay, size = 0.01, 600, 1000
    theta, v, g = randn(size), randn(size), randn(size)
    theta_np, v_np = theta.astype(np.float64), v.astype(np.float64)
    g_np = g.astype(np.float64)
    g_np[:n_decay] += 2 * lam * theta_np[:n_decay]
    sgd_momentum(theta, v, g, ETA, 0.9, nesterov, lam, n_decay)
    theta_np, v_np = numpy_sgd(theta_np, v_np, g_np, 0.9, nesterov)
    assert_close(theta, theta_np, "theta")
    assert_close(v, v_np, "v")
