"""Batch normalisation between a layer's affine map and its ReLU (as in Ioffe and Szegedy).

Training mode normalises with the batch's mean and (biased) variance and updates the
running averages; inference mode normalises with the running averages. The ReLU is fused
into the forward pass. Forward overwrites H, S_hat, mu, inv_std; backward overwrites
dgamma, dbeta and turns G into dS in place. The running statistics are the layer's state:
they follow the outputs in both forward passes, updated (training) or read (inference).

    S       : float[n, m]   affine output of the layer (X W^T, no bias)
    S_hat   : float[n, m]   normalised S, kept for the backward pass
    H       : float[n, m]   max(gamma * S_hat + beta, 0)
    mu      : float[m]      batch mean
    inv_std : float[m]      1 / sqrt(batch variance (1/n) + eps), kept for the backward pass
    gamma, beta, running_mean, running_var : float[m]

Threads take blocks of columns and walk the rows: every column's sums are taken in row
order by one thread, so the result does not depend on the thread count. The inner loops run
over slices of a row block, indexed from 0, which Numba compiles to vector code. Square
roots and divisions are taken once per column, never per element.
"""
import numpy as np
from numba import njit, prange

from .serial import prange_only, serial

_COLUMN_BLOCK = 32


@njit(cache=True)
def batchnorm_forward_train(H, S_hat, mu, inv_std, running_mean, running_var, S, gamma, beta,
                            alpha, eps, relu):
    """Normalise with batch statistics; running = alpha * running + (1 - alpha) * batch."""
    n_blocks = (S.shape[1] + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK
    if serial(S.size):
        for blk in range(n_blocks):
            _forward_train_block(H, S_hat, mu, inv_std, running_mean, running_var, S, gamma,
                                 beta, alpha, eps, relu, blk)
    else:
        _forward_train_parallel(H, S_hat, mu, inv_std, running_mean, running_var, S, gamma,
                                beta, alpha, eps, relu, n_blocks)


@njit(parallel=prange_only(), cache=True)
def _forward_train_parallel(H, S_hat, mu, inv_std, running_mean, running_var, S, gamma, beta,
                            alpha, eps, relu, n_blocks):
    for blk in prange(n_blocks):
        _forward_train_block(H, S_hat, mu, inv_std, running_mean, running_var, S, gamma,
                             beta, alpha, eps, relu, blk)


@njit(cache=True, inline="always")
def _forward_train_block(H, S_hat, mu, inv_std, running_mean, running_var, S, gamma, beta,
                         alpha, eps, relu, blk):
    n, m = S.shape
    lo = blk * _COLUMN_BLOCK
    hi = min(lo + _COLUMN_BLOCK, m)
    mu_b, inv_b = mu[lo:hi], inv_std[lo:hi]
    mu_b[:] = 0
    inv_b[:] = 0  # holds the variance until the block's statistics are complete
    for i in range(n):
        s = S[i, lo:hi]
        for j in range(hi - lo):
            mu_b[j] += s[j]
    mu_b /= n
    for i in range(n):
        s = S[i, lo:hi]
        for j in range(hi - lo):
            c = s[j] - mu_b[j]
            inv_b[j] += c * c
    for j in range(lo, hi):
        var = inv_std[j] / n
        running_mean[j] = alpha * running_mean[j] + (1 - alpha) * mu[j]
        running_var[j] = alpha * running_var[j] + (1 - alpha) * var
        inv_std[j] = 1 / np.sqrt(var + eps)
    g_b, b_b = gamma[lo:hi], beta[lo:hi]
    for i in range(n):
        s, s_hat, h = S[i, lo:hi], S_hat[i, lo:hi], H[i, lo:hi]
        for j in range(hi - lo):
            x = (s[j] - mu_b[j]) * inv_b[j]
            s_hat[j] = x
            y = g_b[j] * x + b_b[j]
            h[j] = 0 if relu and y < 0 else y


@njit(cache=True)
def batchnorm_forward_infer(H, running_mean, running_var, S, gamma, beta, eps, relu):
    """Normalise with the running statistics (inference mode)."""
    if serial(S.size):
        for i in range(S.shape[0]):
            _forward_infer_row(H[i], running_mean, running_var, S[i], gamma, beta, eps, relu)
    else:
        _forward_infer_parallel(H, running_mean, running_var, S, gamma, beta, eps, relu)


@njit(parallel=prange_only(), cache=True)
def _forward_infer_parallel(H, running_mean, running_var, S, gamma, beta, eps, relu):
    for i in prange(S.shape[0]):
        _forward_infer_row(H[i], running_mean, running_var, S[i], gamma, beta, eps, relu)


@njit(cache=True, inline="always")
def _forward_infer_row(h, running_mean, running_var, s, gamma, beta, eps, relu):
    for j in range(s.shape[0]):
        scale = gamma[j] / np.sqrt(running_var[j] + eps)
        y = scale * (s[j] - running_mean[j]) + beta[j]
        h[j] = 0 if relu and y < 0 else y


@njit(cache=True)
def batchnorm_backward(G, dgamma, dbeta, S_hat, inv_std, gamma):
    """G (gradient at gamma * S_hat + beta) becomes dS in place; fills dgamma and dbeta.

    dS = gamma inv_std / n * (n G - dbeta - S_hat dgamma), the batch-statistics backward
    pass in one sweep per column block.
    """
    n_blocks = (G.shape[1] + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK
    if serial(G.size):
        for blk in range(n_blocks):
            _backward_block(G, dgamma, dbeta, S_hat, inv_std, gamma, blk)
    else:
        _backward_parallel(G, dgamma, dbeta, S_hat, inv_std, gamma, n_blocks)


@njit(parallel=prange_only(), cache=True)
def _backward_parallel(G, dgamma, dbeta, S_hat, inv_std, gamma, n_blocks):
    for blk in prange(n_blocks):
        _backward_block(G, dgamma, dbeta, S_hat, inv_std, gamma, blk)


@njit(cache=True, inline="always")
def _backward_block(G, dgamma, dbeta, S_hat, inv_std, gamma, blk):
    n, m = G.shape
    lo = blk * _COLUMN_BLOCK
    hi = min(lo + _COLUMN_BLOCK, m)
    dg, db = dgamma[lo:hi], dbeta[lo:hi]
    dg[:] = 0
    db[:] = 0
    for i in range(n):
        g, s_hat = G[i, lo:hi], S_hat[i, lo:hi]
        for j in range(hi - lo):
            dg[j] += g[j] * s_hat[j]
            db[j] += g[j]
    gam, inv = gamma[lo:hi], inv_std[lo:hi]
    for i in range(n):
        g, s_hat = G[i, lo:hi], S_hat[i, lo:hi]
        for j in range(hi - lo):
            g[j] = (gam[j] * inv[j] / n) * (n * g[j] - db[j] - s_hat[j] * dg[j])
