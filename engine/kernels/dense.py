"""Fully-connected layer: S = X W^T + b, with the ReLU fused into the same pass.

Contract: forward overwrites its output; backward overwrites dW, db and dX (gradients are
computed once per step, never accumulated). The products go to BLAS through `blas.gemm`.

    X : float[n, d]   layer input (the previous layer's post-ReLU output, or the batch)
    W : float[m, d]   weights, one row per output unit
    b : float[m]      bias, or float[0] for a layer that feeds batch norm (beta replaces it)
    S : float[n, m]   layer output
    G : float[n, m]   gradient of the mean loss at S (already carries the 1/n)
"""
from numba import njit, prange

from .blas import gemm


@njit(parallel=True, cache=True)
def dense_forward(S, X, W, b, relu):
    """S = X W^T + b, then max(S, 0) in the same pass when relu is true."""
    gemm(S, X, W, False, True)
    n, m = S.shape
    has_bias = b.shape[0] > 0
    for i in prange(n):
        for j in range(m):
            s = S[i, j]
            if has_bias:
                s += b[j]
            if relu and s < 0:
                s = 0
            S[i, j] = s


@njit(parallel=True, cache=True)
def dense_backward(dW, db, G, X, W, lam):
    """dW = G^T X + 2 lam W; db = sum of G over rows (skipped when db is float[0])."""
    gemm(dW, G, X, True, False)
    m, d = dW.shape
    two_lam = dW.dtype.type(2 * lam)
    if two_lam != 0:
        for j in prange(m):
            for k in range(d):
                dW[j, k] += two_lam * W[j, k]
    if db.shape[0] > 0:
        column_sums(db, G)


@njit(parallel=True, cache=True)
def dense_backward_input(dX, G, W, X, scale):
    """dX = (G W) masked where X <= 0 (the ReLU that produced X), times scale elsewhere.

    scale is 1, or 1 / (1 - p) under inverted dropout: a dropped unit has X == 0, so the
    same mask also carries dropout's backward pass, with no mask stored.
    """
    gemm(dX, G, W, False, False)
    n, d = dX.shape
    scale = dX.dtype.type(scale)
    for i in prange(n):
        for k in range(d):
            if X[i, k] > 0:
                dX[i, k] *= scale
            else:
                dX[i, k] = 0


_COLUMN_BLOCK = 64


@njit(parallel=True, cache=True)
def column_sums(out, A):
    """out[j] = sum_i A[i, j], each column summed in row order (the same on any thread count).

    A : float[n, m]; out : float[m]. Threads take blocks of columns and walk the rows, so
    every read is a contiguous run of a row.
    """
    n, m = A.shape
    n_blocks = (m + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK
    for blk in prange(n_blocks):
        lo = blk * _COLUMN_BLOCK
        hi = min(lo + _COLUMN_BLOCK, m)
        acc = out[lo:hi]
        acc[:] = 0
        for i in range(n):
            row = A[i, lo:hi]
            for j in range(hi - lo):  # indexed from 0: compiles to vector code
                acc[j] += row[j]
