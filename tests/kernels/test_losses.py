"""losses.py: softmax cross-entropy, SVM hinge and softmax, against NumPy."""
import numpy as np
import pytest
from scipy.special import logsumexp

from cifar_engine.kernels.losses import softmax, softmax_xent, svm_hinge

SHAPES = [(1, 10), (7, 3), (100, 65), (30000, 10)]  # (n, K); the last runs the parallel form


@pytest.fixture
def scores(randn, rng):
    """scores(n, K, scale): scores S and labels y in [0, K)."""
    def make(n, K, scale=1.0):
        return scale * randn(n, K), rng.integers(0, K, n)
    return make


def numpy_softmax(S):
    P = np.exp(S - S.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def numpy_xent(S, y):
    """Per-row losses and G = (P - Y) / n of softmax cross-entropy, in float64."""
    n, K = S.shape
    losses = logsumexp(S, axis=1) - S[np.arange(n), y]
    return losses, (numpy_softmax(S) - np.eye(K)[y]) / n


def numpy_svm(S, y):
    """Per-row losses and gradient of the Weston-Watkins hinge (margin 1), in float64."""
    n, K = S.shape
    margins = S - S[np.arange(n), y][:, None] + 1
    margins[np.arange(n), y] = 0
    violated = margins > 0
    G = violated.astype(np.float64)
    G[np.arange(n), y] = -violated.sum(axis=1)
    return np.where(violated, margins, 0).sum(axis=1), G / n


@pytest.mark.parametrize("kernel, numpy_loss", [(softmax_xent, numpy_xent), (svm_hinge, numpy_svm)],
                         ids=["xent", "svm"])
@pytest.mark.parametrize("n, K", SHAPES)
def test_loss_rows_mean_and_gradient_match_numpy(kernel, numpy_loss, n, K, scores, garbage,
                                                 assert_close):
    S, y = scores(n, K, scale=2.0)
    G, losses = garbage(n, K), garbage(n)
    mean = kernel(G, losses, S, y)
    expected_losses, expected_G = numpy_loss(S.astype(np.float64), y)
    assert_close(losses, expected_losses, "losses")
    assert_close(mean, expected_losses.mean(), "mean loss")
    assert_close(G, expected_G, "G")


def test_svm_gradient_is_zero_on_rows_without_violations(dtype):
    S = np.array([[5.0, 0.0, 3.9], [0.0, 1.0, 2.0]], dtype)
    y = np.array([0, 2])
    G, losses = np.full((2, 3), np.nan, dtype), np.empty(2, dtype)
    assert svm_hinge(G, losses, S, y) == 0
    assert np.all(G == 0)


@pytest.mark.parametrize("n, K", SHAPES)
def test_xent_is_finite_and_exact_for_huge_scores(n, K, scores, garbage, assert_close):
    S, y = scores(n, K, scale=1e4)
    G, losses = garbage(n, K), garbage(n)
    mean = softmax_xent(G, losses, S, y)
    assert np.isfinite(mean) and np.all(np.isfinite(G))
    expected_losses, expected_G = numpy_xent(S.astype(np.float64), y)
    assert_close(losses, expected_losses, "losses")
    assert_close(G, expected_G, "G")


@pytest.mark.parametrize("n, K", SHAPES)
@pytest.mark.parametrize("aliased", [False, True], ids=["P-apart", "P-is-S"])
def test_softmax_matches_numpy(n, K, aliased, scores, garbage, assert_close):
    S, _ = scores(n, K, scale=3.0)
    expected = numpy_softmax(S.astype(np.float64))
    P = S if aliased else garbage(n, K)
    softmax(P, S)
    assert_close(P, expected)
