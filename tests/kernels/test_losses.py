"""losses.py: softmax cross-entropy (with label smoothing), SVM hinge and softmax, against
NumPy."""
import numpy as np
import pytest
from numba import njit
from scipy.special import logsumexp

from cifar_engine.kernels.losses import softmax, softmax_xent, svm_hinge

SHAPES = [(1, 10), (7, 3), (100, 65), (30000, 10)]  # (n, K); the last runs the parallel form
SMOOTHED_SHAPES = [(n, K) for n in (1, 7, 100) for K in (3, 10)] + [(30000, 10)]
SMOOTHINGS = [0.0, 0.1, 0.5]


@pytest.fixture
def scores(randn, rng):
    """scores(n, K, scale): scores S and labels y in [0, K)."""
    def make(n, K, scale=1.0):
        return scale * randn(n, K), rng.integers(0, K, n)
    return make


def numpy_softmax(S):
    P = np.exp(S - S.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def numpy_xent(S, y, smoothing=0.0):
    """Per-row losses and G = (P - Q) / n of softmax cross-entropy against the smoothed
    targets Q = smoothing / K + (1 - smoothing) Y, in float64: as sum_k Q_k = 1, a row's loss
    -sum_k Q_k log P_k is logsumexp(s) - sum_k Q_k s_k."""
    n, K = S.shape
    Q = smoothing / K + (1 - smoothing) * np.eye(K)[y]
    losses = logsumexp(S, axis=1) - np.sum(Q * S, axis=1)
    return losses, (numpy_softmax(S) - Q) / n


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
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_xent_is_finite_and_exact_for_huge_scores(n, K, smoothing, scores, garbage, assert_close):
    S, y = scores(n, K, scale=1e4)
    G, losses = garbage(n, K), garbage(n)
    mean = softmax_xent(G, losses, S, y, smoothing)
    assert np.isfinite(mean) and np.all(np.isfinite(G))
    expected_losses, expected_G = numpy_xent(S.astype(np.float64), y, smoothing)
    assert_close(losses, expected_losses, "losses")
    assert_close(G, expected_G, "G")


@pytest.mark.parametrize("n, K", SMOOTHED_SHAPES)
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_smoothed_xent_rows_mean_and_gradient_match_numpy(n, K, smoothing, scores, garbage,
                                                          assert_close):
    S, y = scores(n, K, scale=2.0)
    G, losses = garbage(n, K), garbage(n)
    mean = softmax_xent(G, losses, S, y, smoothing)
    expected_losses, expected_G = numpy_xent(S.astype(np.float64), y, smoothing)
    assert_close(losses, expected_losses, "losses")
    assert_close(mean, expected_losses.mean(), "mean loss")
    assert_close(G, expected_G, "G")


def test_smoothing_changes_the_loss_and_gradient_as_the_targets_say(dtype):
    """One row by hand: scores 0 give P = 1/K, so loss = log K whatever smoothing, and
    G = (1/K - q) / n with q = smoothing/K + (1 - smoothing) on the label and smoothing/K elsewhere."""
    K, smoothing = 4, 0.2
    S, y = np.zeros((1, K), dtype), np.array([2])
    G, losses = np.full((1, K), np.nan, dtype), np.full(1, np.nan, dtype)
    assert softmax_xent(G, losses, S, y, smoothing) == pytest.approx(np.log(K), rel=1e-6)
    expected = np.full(K, 1 / K - smoothing / K)
    expected[2] -= 1 - smoothing
    np.testing.assert_allclose(G[0], expected, rtol=1e-6)


@njit
def _xent_before_smoothing(G, losses, S, y):
    """The softmax cross-entropy kernel as it was before label smoothing, verbatim in its
    arithmetic (row loop only: the parallel form runs the same row body)."""
    n, K = S.shape
    for i in range(n):
        s_max = S[i, 0]
        for k in range(1, K):
            s_max = max(s_max, S[i, k])
        z = 0.0
        for k in range(K):
            G[i, k] = np.exp(S[i, k] - s_max)
            z += G[i, k]
        losses[i] = np.log(z) - (S[i, y[i]] - s_max)
        for k in range(K):
            G[i, k] = G[i, k] / z / n
        G[i, y[i]] -= 1.0 / n
    total = 0.0
    for i in range(n):
        total += losses[i]
    return total / n


@pytest.mark.parametrize("n, K", SMOOTHED_SHAPES + SHAPES)
@pytest.mark.parametrize("scale", [2.0, 1e4])
@pytest.mark.parametrize("eps_argument", ["zero", "omitted"])
def test_xent_without_smoothing_is_bit_identical_to_the_kernel_before_smoothing(
        n, K, scale, eps_argument, scores, garbage):
    S, y = scores(n, K, scale=scale)
    # A -inf score off the label: exact one-hot arithmetic never touches it, while the
    # smoothed formula, run with smoothing = 0, would give 0 * -inf = NaN.
    S[0, (y[0] + 1) % K] = -np.inf
    G, losses = garbage(n, K), garbage(n)
    extra = (0.0,) if eps_argument == "zero" else ()
    mean = softmax_xent(G, losses, S, y, *extra)
    old_G, old_losses = garbage(n, K), garbage(n)
    old_mean = _xent_before_smoothing(old_G, old_losses, S, y)
    assert np.all(np.isfinite(old_losses))
    np.testing.assert_array_equal(losses, old_losses)
    np.testing.assert_array_equal(G, old_G)
    assert mean == old_mean


@pytest.mark.parametrize("n, K", SHAPES)
@pytest.mark.parametrize("aliased", [False, True], ids=["P-apart", "P-is-S"])
def test_softmax_matches_numpy(n, K, aliased, scores, garbage, assert_close):
    S, _ = scores(n, K, scale=3.0)
    expected = numpy_softmax(S.astype(np.float64))
    P = S if aliased else garbage(n, K)
    softmax(P, S)
    assert_close(P, expected)
