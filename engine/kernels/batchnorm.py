"""Batch normalisation between a layer's affine map and its ReLU (as in Ioffe and Szegedy).

Training mode normalises with the batch's mean and (biased) variance and updates the
running averages; inference mode normalises with the running averages. The ReLU is fused
into the forward pass. Forward overwrites H, S_hat, mu, var; backward overwrites dgamma,
dbeta and turns G into dS in place.

    S      : float[n, m]   affine output of the layer (X W^T, no bias)
    S_hat  : float[n, m]   normalised S, kept for the backward pass
    H      : float[n, m]   max(gamma * S_hat + beta, 0)
    mu, var: float[m]      batch mean and variance (1/n), kept for the backward pass
    gamma, beta, running_mean, running_var : float[m]

Threads take blocks of columns and walk the rows: every column's sums are taken in row
order by one thread, so the result does not depend on the thread count.
"""
import numpy as np
from numba import njit, prange

_COLUMN_BLOCK = 32


@njit(parallel=True, cache=True)
def batchnorm_forward_train(H, S_hat, mu, var, running_mean, running_var, S, gamma, beta,
                            alpha, eps, relu):
    """Normalise with batch statistics; running = alpha * running + (1 - alpha) * batch."""
    n, m = S.shape
    for blk in prange((m + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK):
        lo = blk * _COLUMN_BLOCK
        hi = min(lo + _COLUMN_BLOCK, m)
        for j in range(lo, hi):
            mu[j] = 0
            var[j] = 0
        for i in range(n):
            for j in range(lo, hi):
                mu[j] += S[i, j]
        for j in range(lo, hi):
            mu[j] /= n
        for i in range(n):
            for j in range(lo, hi):
                c = S[i, j] - mu[j]
                var[j] += c * c
        for j in range(lo, hi):
            var[j] /= n
            running_mean[j] = alpha * running_mean[j] + (1 - alpha) * mu[j]
            running_var[j] = alpha * running_var[j] + (1 - alpha) * var[j]
        for i in range(n):
            for j in range(lo, hi):
                s_hat = (S[i, j] - mu[j]) / np.sqrt(var[j] + eps)
                S_hat[i, j] = s_hat
                h = gamma[j] * s_hat + beta[j]
                H[i, j] = 0 if relu and h < 0 else h


@njit(parallel=True, cache=True)
def batchnorm_forward_infer(H, S, running_mean, running_var, gamma, beta, eps, relu):
    """Normalise with the running statistics (inference mode)."""
    n, m = S.shape
    for i in prange(n):
        for j in range(m):
            h = gamma[j] * (S[i, j] - running_mean[j]) / np.sqrt(running_var[j] + eps) + beta[j]
            H[i, j] = 0 if relu and h < 0 else h


@njit(parallel=True, cache=True)
def batchnorm_backward(G, dgamma, dbeta, S_hat, var, gamma, eps):
    """G (gradient at gamma * S_hat + beta) becomes dS in place; fills dgamma and dbeta.

    dS = gamma / (n sqrt(var + eps)) * (n G - dbeta - S_hat dgamma), the batch-statistics
    backward pass in one sweep per column block.
    """
    n, m = G.shape
    for blk in prange((m + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK):
        lo = blk * _COLUMN_BLOCK
        hi = min(lo + _COLUMN_BLOCK, m)
        for j in range(lo, hi):
            dgamma[j] = 0
            dbeta[j] = 0
        for i in range(n):
            for j in range(lo, hi):
                dgamma[j] += G[i, j] * S_hat[i, j]
                dbeta[j] += G[i, j]
        for i in range(n):
            for j in range(lo, hi):
                scale = gamma[j] / (n * np.sqrt(var[j] + eps))
                G[i, j] = scale * (n * G[i, j] - dbeta[j] - S_hat[i, j] * dgamma[j])
