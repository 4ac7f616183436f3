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
from .serial import prange_only, serial


@njit(cache=True)
def dense_forward(S, X, W, b, relu):
    """S = X W^T + b, then max(S, 0) in the same pass when relu is true."""
    gemm(S, X, W, False, True)
    _add_bias_relu(S, b, relu)


ROW_BLOCK = 16   # rows of S that share each row of Wt read (`product_in_order`)
COL_BLOCK = 256  # columns of S summed at a time: a block's 16 x 256 sums stay in L1


@njit(cache=True)
def dense_forward_in_order(S, X, Wt, b, relu):
    """`dense_forward` with S = X W^T from `product_in_order`: Wt float[d, m] is W
    transposed. For inference, where a row's scores must not depend on its neighbours."""
    product_in_order(S, X, Wt)
    _add_bias_relu(S, b, relu)


@njit(cache=True, inline="always")
def _add_bias_relu(S, b, relu):
    """S += b, then max(S, 0) when relu: the pass both forward products end in."""
    if serial(S.size):
        for i in range(S.shape[0]):
            _bias_relu(S[i], b, relu)
    else:
        _bias_relu_parallel(S, b, relu)


@njit(cache=True)
def product_in_order(S, X, Wt):
    """S = X Wt (float[n, m] = float[n, d] float[d, m]), each entry summed over d in order
    with one rounding per multiply and per add.

    A BLAS rounds an entry by where it falls in the library's blocks (under some kernels,
    its row's position in the call), so a row's scores could change with the rows scored
    beside it. Here an entry depends on its own row and column alone: not on the rows
    beside it, the thread count, the library or the CPU. It runs at about a tenth of BLAS's
    speed, vectorised over the columns of S.
    """
    n_blocks = -(-S.shape[0] // ROW_BLOCK)
    if serial(S.size * Wt.shape[0] // 64):
        for blk in range(n_blocks):
            _product_block(S, X, Wt, blk)
    else:
        _product_in_order_parallel(S, X, Wt, n_blocks)


@njit(parallel=prange_only(), cache=True)
def _product_in_order_parallel(S, X, Wt, n_blocks):
    for blk in prange(n_blocks):
        _product_block(S, X, Wt, blk)


@njit(cache=True, inline="always")
def _product_block(S, X, Wt, blk):
    # views and loops from 0: with an index that could be negative, LLVM keeps it scalar
    n, m = S.shape
    i0, i1 = blk * ROW_BLOCK, min(n, (blk + 1) * ROW_BLOCK)
    for j0 in range(0, m, COL_BLOCK):
        width = min(COL_BLOCK, m - j0)
        for i in range(i0, i1):
            s = S[i, j0:j0 + width]
            for j in range(width):
                s[j] = 0
        for k in range(Wt.shape[0]):
            w = Wt[k, j0:j0 + width]
            for i in range(i0, i1):
                s, x = S[i, j0:j0 + width], X[i, k]
                for j in range(width):
                    s[j] += x * w[j]


@njit(parallel=prange_only(), cache=True)
def _bias_relu_parallel(S, b, relu):
    for i in prange(S.shape[0]):
        _bias_relu(S[i], b, relu)


@njit(cache=True, inline="always")
def _bias_relu(s, b, relu):
    has_bias = b.shape[0] > 0
    for j in range(s.shape[0]):
        v = s[j] + b[j] if has_bias else s[j]
        s[j] = 0 if relu and v < 0 else v


@njit(cache=True)
def dense_backward(dW, db, G, X, W, lam):
    """dW = G^T X + 2 lam W; db = sum of G over rows (skipped when db is float[0])."""
    gemm(dW, G, X, True, False)
    two_lam = dW.dtype.type(2 * lam)
    if two_lam != 0 and serial(dW.size):
        for j in range(dW.shape[0]):
            _add_scaled(dW[j], W[j], two_lam)
    elif two_lam != 0:
        _add_scaled_parallel(dW, W, two_lam)
    if db.shape[0] > 0:
        column_sums(db, G)


@njit(parallel=prange_only(), cache=True)
def _add_scaled_parallel(dW, W, two_lam):
    for j in prange(dW.shape[0]):
        _add_scaled(dW[j], W[j], two_lam)


@njit(cache=True, inline="always")
def _add_scaled(out, a, c):
    for k in range(out.shape[0]):
        out[k] += c * a[k]


@njit(cache=True)
def dense_backward_input(dX, G, X, W, scale):
    """dX = (G W) masked where X <= 0 (the ReLU that produced X), times scale elsewhere.

    scale is 1, or 1 / (1 - p) under inverted dropout: a dropped unit has X == 0, so the
    same mask also carries dropout's backward pass, with no mask stored.
    """
    gemm(dX, G, W, False, False)
    scale = dX.dtype.type(scale)
    if serial(dX.size):
        for i in range(dX.shape[0]):
            _relu_mask(dX[i], X[i], scale)
    else:
        _relu_mask_parallel(dX, X, scale)


@njit(parallel=prange_only(), cache=True)
def _relu_mask_parallel(dX, X, scale):
    for i in prange(dX.shape[0]):
        _relu_mask(dX[i], X[i], scale)


@njit(cache=True, inline="always")
def _relu_mask(dx, x, scale):
    for k in range(dx.shape[0]):
        dx[k] = dx[k] * scale if x[k] > 0 else 0


_COLUMN_BLOCK = 64


@njit(cache=True)
def column_sums(out, A):
    """out[j] = sum_i A[i, j], each column summed in row order (the same on any thread count).

    A : float[n, m]; out : float[m]. Threads take blocks of columns and walk the rows, so
    every read is a contiguous run of a row.
    """
    n_blocks = (A.shape[1] + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK
    if serial(A.size):
        for blk in range(n_blocks):
            _column_block_sums(out, A, blk)
    else:
        _column_sums_parallel(out, A, n_blocks)


@njit(parallel=prange_only(), cache=True)
def _column_sums_parallel(out, A, n_blocks):
    for blk in prange(n_blocks):
        _column_block_sums(out, A, blk)


@njit(cache=True, inline="always")
def _column_block_sums(out, A, blk):
    lo = blk * _COLUMN_BLOCK
    hi = min(lo + _COLUMN_BLOCK, A.shape[1])
    acc = out[lo:hi]
    acc[:] = 0
    for i in range(A.shape[0]):
        row = A[i, lo:hi]
        for j in range(hi - lo):  # indexed from 0: compiles to vector code
            acc[j] += row[j]
