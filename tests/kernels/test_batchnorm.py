"""batchnorm.py: training and inference forward passes and the backward pass, against NumPy,
and the backward pass against centred differences of a NumPy batch norm."""
from collections import namedtuple

import numpy as np
import pytest

from cifar_engine.kernels.batchnorm import (batchnorm_backward, batchnorm_forward_infer,
                                            batchnorm_forward_train)
from reference import centred_difference

EPS = 1e-5
ALPHA = 0.9
# (n, m): m = 33 and 65 span two and three blocks; 700 x 400 runs the parallel form
SHAPES = [(1, 3), (7, 33), (100, 65), (700, 400)]


def normalise(S, gamma, beta):
    """NumPy batch norm in training mode: (gamma * S_hat + beta, S_hat, mean, biased var)."""
    mu, var = S.mean(axis=0), S.var(axis=0)
    S_hat = (S - mu) / np.sqrt(var + EPS)
    return gamma * S_hat + beta, S_hat, mu, var


def normalise_backward(G, S, gamma):
    """dS of batch norm by the chain rule through mean and variance, one node at a time."""
    n = S.shape[0]
    mu, var = S.mean(axis=0), S.var(axis=0)
    inv_std = 1 / np.sqrt(var + EPS)
    d_hat = G * gamma
    d_var = np.sum(d_hat * (S - mu), axis=0) * -0.5 * inv_std ** 3
    d_mu = -np.sum(d_hat, axis=0) * inv_std + d_var * np.mean(-2 * (S - mu), axis=0)
    return d_hat * inv_std + d_var * 2 * (S - mu) / n + d_mu / n


Layer = namedtuple("Layer", ["S", "gamma", "beta", "running_mean", "running_var"])


@pytest.fixture
def layer(randn, rng, dtype):
    """layer(n, m): a Layer of affine outputs S (not centred), gamma, beta and running
    statistics in the test's dtype, and the same Layer in float64 for NumPy."""
    def make(n, m):
        p = Layer(S=3 * randn(n, m) + 1, gamma=1 + 0.5 * randn(m), beta=randn(m),
                  running_mean=randn(m), running_var=rng.uniform(0.5, 2, m).astype(dtype))
        return p, Layer(*(a.astype(np.float64) for a in p))
    return make


@pytest.mark.parametrize("n, m", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_forward_train_normalises_with_batch_statistics(n, m, relu, layer, garbage,
                                                        assert_close):
    p, q = layer(n, m)
    H, S_hat, mu, inv_std = garbage(n, m), garbage(n, m), garbage(m), garbage(m)
    running_mean, running_var = p.running_mean.copy(), p.running_var.copy()
    batchnorm_forward_train(H, S_hat, mu, inv_std, running_mean, running_var, p.S, p.gamma,
                            p.beta, ALPHA, EPS, relu)
    out, S_hat_np, mu_np, var_np = normalise(q.S, q.gamma, q.beta)
    assert_close(H, np.maximum(out, 0) if relu else out, "H")
    assert_close(S_hat, S_hat_np, "S_hat")
    assert_close(mu, mu_np, "mu")
    assert_close(inv_std, 1 / np.sqrt(var_np + EPS), "inv_std")
    assert_close(running_mean, ALPHA * q.running_mean + (1 - ALPHA) * mu_np, "running_mean")
    assert_close(running_var, ALPHA * q.running_var + (1 - ALPHA) * var_np, "running_var")


@pytest.mark.parametrize("n, m", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_forward_infer_normalises_with_running_statistics(n, m, relu, layer, garbage,
                                                          assert_close):
    p, q = layer(n, m)
    H = garbage(n, m)
    batchnorm_forward_infer(H, p.running_mean, p.running_var, p.S, p.gamma, p.beta, EPS, relu)
    out = q.gamma * (q.S - q.running_mean) / np.sqrt(q.running_var + EPS) + q.beta
    assert_close(H, np.maximum(out, 0) if relu else out)


@pytest.mark.parametrize("n, m", SHAPES)
def test_backward_matches_the_chain_rule(n, m, layer, randn, garbage, assert_close):
    p, q = layer(n, m)
    G = randn(n, m)
    G64 = G.astype(np.float64)
    _, S_hat, _, var = normalise(q.S, q.gamma, 0.0)
    dgamma, dbeta = garbage(m), garbage(m)
    dS = G.copy()
    inv_std = (1 / np.sqrt(var + EPS)).astype(G.dtype)
    batchnorm_backward(dS, dgamma, dbeta, S_hat.astype(G.dtype), inv_std, p.gamma)
    assert_close(dgamma, np.sum(G64 * S_hat, axis=0), "dgamma")
    assert_close(dbeta, G64.sum(axis=0), "dbeta")
    assert_close(dS, normalise_backward(G64, q.S, q.gamma), "dS")


def test_backward_matches_centred_differences():
    rng = np.random.default_rng(7)
    n, m = 7, 5
    S, U = 2 * rng.standard_normal((n, m)) + 1, rng.standard_normal((n, m))
    gamma, beta = 1 + 0.3 * rng.standard_normal(m), rng.standard_normal(m)

    def f():  # a scalar whose gradient at gamma * S_hat + beta is U
        return np.sum(U * normalise(S, gamma, beta)[0])

    _, S_hat, _, var = normalise(S, gamma, beta)
    dS, dgamma, dbeta = U.copy(), np.empty(m), np.empty(m)
    batchnorm_backward(dS, dgamma, dbeta, S_hat, 1 / np.sqrt(var + EPS), gamma)
    for name, kernel, x in [("dS", dS, S), ("dgamma", dgamma, gamma), ("dbeta", dbeta, beta)]:
        np.testing.assert_allclose(kernel, centred_difference(f, x), rtol=1e-6, atol=1e-8,
                                   err_msg=name)
