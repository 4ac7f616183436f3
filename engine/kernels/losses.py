"""Losses on the last layer's scores, each returning the mean loss and writing its gradient.

Both kernels write G = d(mean loss)/dS, which carries the 1/n, and the per-row losses, which
the caller sums in row order (a parallel reduction would change with the thread count).

    S      : float[n, K]   scores (logits)
    y      : int[n]        labels in [0, K)
    G      : float[n, K]   gradient at S (output)
    losses : float[n]      loss of each row (output)
    smoothing : float  label smoothing of softmax_xent, in [0, 1) (default 0: none)
"""
import numpy as np
from numba import njit, prange

from .serial import prange_only, serial


@njit(cache=True)
def softmax_xent(G, losses, S, y, smoothing=0.0):
    """Softmax cross-entropy, with label smoothing in [0, 1); returns the mean loss.

    Row i's target is q_k = smoothing/K + (1 - smoothing)[k = y_i] (0: one-hot), its loss
    -sum_k q_k log p_k with p = softmax(s_i), and G = (P - Q) / n. The row maximum is
    subtracted before exp, and the loss is taken as log(sum exp) - sum_k q_k s_k of the
    shifted scores, so no probability is ever passed to log. With smoothing > 0 every loss
    this returns (the evaluation losses too) is the smoothed objective, not the plain
    cross-entropy; smoothing = 0 runs the one-hot arithmetic, bit for bit.
    """
    if serial(S.size):
        for i in range(S.shape[0]):
            _softmax_xent_row(G, losses, S, y, smoothing, i)
    else:
        _softmax_xent_parallel(G, losses, S, y, smoothing)
    return _mean(losses)


@njit(parallel=prange_only(), cache=True)
def _softmax_xent_parallel(G, losses, S, y, smoothing):
    for i in prange(S.shape[0]):
        _softmax_xent_row(G, losses, S, y, smoothing, i)


@njit(cache=True, inline="always")
def _softmax_xent_row(G, losses, S, y, smoothing, i):
    n, K = S.shape
    c = y[i]
    s_max, z = _exp_shifted(G, S, i)
    if smoothing == 0:
        losses[i] = np.log(z) - (S[i, c] - s_max)
        for k in range(K):
            G[i, k] = G[i, k] / z / n
        G[i, c] -= 1.0 / n
        return
    # sum_k q_k (s_k - s_max) = u sum_k (s_k - s_max) + (1 - smoothing)(s_c - s_max)
    u = smoothing / K
    shifted = 0.0
    for k in range(K):
        shifted += S[i, k] - s_max
        G[i, k] = (G[i, k] / z - u) / n
    G[i, c] -= (1.0 - smoothing) / n
    losses[i] = np.log(z) - u * shifted - (1.0 - smoothing) * (S[i, c] - s_max)


@njit(cache=True)
def svm_hinge(G, losses, S, y):
    """Multi-class SVM hinge loss with margin 1 (Weston-Watkins form); returns the mean loss.

    loss_i = sum_{k != y_i} max(0, s_k - s_{y_i} + 1). G[i, k] = 1/n where the margin is
    violated, G[i, y_i] = -(violations)/n.
    """
    if serial(S.size):
        for i in range(S.shape[0]):
            _svm_hinge_row(G, losses, S, y, i)
    else:
        _svm_hinge_parallel(G, losses, S, y)
    return _mean(losses)


@njit(parallel=prange_only(), cache=True)
def _svm_hinge_parallel(G, losses, S, y):
    for i in prange(S.shape[0]):
        _svm_hinge_row(G, losses, S, y, i)


@njit(cache=True, inline="always")
def _svm_hinge_row(G, losses, S, y, i):
    n, K = S.shape
    c = y[i]
    s_y = S[i, c]
    total = 0.0
    violations = 0
    for k in range(K):
        margin = S[i, k] - s_y + 1.0
        if k != c and margin > 0:
            total += margin
            violations += 1
            G[i, k] = 1.0 / n
        else:
            G[i, k] = 0
    G[i, c] = -violations / n
    losses[i] = total


@njit(cache=True)
def softmax(P, S):
    """Row-wise softmax probabilities P of scores S (max subtracted). P may alias S."""
    if serial(S.size):
        for i in range(S.shape[0]):
            _softmax_row(P, S, i)
    else:
        _softmax_parallel(P, S)


@njit(parallel=prange_only(), cache=True)
def _softmax_parallel(P, S):
    for i in prange(S.shape[0]):
        _softmax_row(P, S, i)


@njit(cache=True, inline="always")
def _softmax_row(P, S, i):
    _, z = _exp_shifted(P, S, i)
    for k in range(S.shape[1]):
        P[i, k] /= z


@njit(cache=True, inline="always")
def _exp_shifted(E, S, i):
    """E[i] = exp(S[i] - max S[i]); returns (max S[i], sum E[i]). E may alias S."""
    K = S.shape[1]
    s_max = S[i, 0]
    for k in range(1, K):
        s_max = max(s_max, S[i, k])
    z = 0.0
    for k in range(K):
        E[i, k] = np.exp(S[i, k] - s_max)
        z += E[i, k]
    return s_max, z


@njit(cache=True)
def _mean(losses):
    total = 0.0
    for i in range(losses.shape[0]):
        total += losses[i]
    return total / losses.shape[0]
