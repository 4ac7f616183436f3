"""Matrix products: C = op(A) op(B) through the fastest CBLAS on the machine.

The process's library (`runtime.blas`: NumPy's OpenBLAS, or MKL when installed) is
registered with LLVM under fixed names before anything compiles, so the compiled callers
refer to it by name: they stay cacheable, and the same cached code runs on whichever
library a process chose. `np.dot` inside @njit would call SciPy's copy of OpenBLAS instead,
a second library with a thread pool of its own. Where no library is found (NumPy from a
conda or distribution build), `gemm` falls back to `np.dot`.

The engine, not the library, splits a product between threads: C is cut into at most
MAX_TILES blocks of whole rows or whole columns, by its shape alone, and each block is one
single-threaded library call (the caller holds the library's pool at one thread:
`runtime.threads.blas_single`). A library's own split depends on its thread count, and
under some kernels (OpenBLAS forced to older ones by OPENBLAS_CORETYPE) an entry's rounding
depends on where the split puts it; a split fixed by the shape gives the same bits on any
thread count.

    C : float[m, n]; A : float[m, k] (or [k, m] with trans_a); B : float[k, n] (or [n, k]
    with trans_b); one dtype, float32 or float64; rows contiguous (any row stride).
"""
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ..runtime.blas import DGEMM, HAVE_CBLAS, SGEMM
from .serial import prange_only

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _gemm_type(scalar):
    i64, i32, ptr = types.int64, types.int32, types.voidptr
    return types.void(i32, i32, i32, i64, i64, i64, scalar, ptr, i64, ptr, i64, scalar, ptr, i64)


_sgemm = types.ExternalFunction(SGEMM, _gemm_type(types.float32))
_dgemm = types.ExternalFunction(DGEMM, _gemm_type(types.float64))


@njit(cache=True, inline="always")
def _rows_contiguous(a):
    """Whether BLAS can read a as it lies: unit column stride, rows a positive stride apart."""
    columns_ok = a.shape[1] <= 1 or a.strides[1] == a.itemsize
    return columns_ok and a.strides[0] >= max(a.shape[1], 1) * a.itemsize


MAX_TILES = 16  # blocks a product is cut into at most: a constant, never the thread count
MIN_TILE = 128  # rows or columns a block takes at least, where it re-packs a large operand
SMALL_TILE = 32  # ... and where the re-packed operand is small (a narrow layer's weights)
SMALL_OPERAND = 1 << 18  # elements under which an operand counts as small (1 MiB of float32)
PARALLEL_FLOPS = 1 << 22  # below this, the blocks run one after the other on the caller


@njit(cache=True, inline="always")
def tiling(m, n, k):
    """(by_rows, count, size): C's cut into `count` blocks of `size` whole rows (by_rows)
    or whole columns. Blocks of columns re-read op(A) (m x k) each, blocks of rows op(B)
    (k x n), so the cut runs across the longer side of C; a function of the shape alone."""
    by_rows = m > n
    length, other = (m, k * n) if by_rows else (n, m * k)
    least = SMALL_TILE if other < SMALL_OPERAND else MIN_TILE
    count = max(1, min(MAX_TILES, length // least))
    return by_rows, count, -(-length // count)


@njit(cache=True)
def gemm_cblas(C, A, B, trans_a, trans_b):
    if A.size == 0 or B.size == 0:  # a sum over nothing (or nothing to fill)
        C[:] = 0
        return
    # BLAS takes a row stride but no column stride: other layouts go through copies.
    # (No recursion here: a cached function that calls itself segfaults when reloaded.)
    A, B = _readable(A), _readable(B)
    k = A.shape[0] if trans_a else A.shape[1]
    if _rows_contiguous(C):
        _tiled(C, A, B, trans_a, trans_b, k)
    else:
        out = np.empty(C.shape, C.dtype)
        _tiled(out, A, B, trans_a, trans_b, k)
        copy_matrix(C, out)


@njit(cache=True)
def _tiled(C, A, B, trans_a, trans_b, k):
    m, n = C.shape
    by_rows, count, size = tiling(m, n, k)
    if count == 1:
        _cblas_gemm(C, A, B, trans_a, trans_b)
    elif 2.0 * m * n * k < PARALLEL_FLOPS:
        for t in range(count):
            _gemm_tile(C, A, B, trans_a, trans_b, by_rows, t * size, size)
    else:
        _tiled_parallel(C, A, B, trans_a, trans_b, by_rows, count, size)


@njit(parallel=prange_only(), cache=True)
def _tiled_parallel(C, A, B, trans_a, trans_b, by_rows, count, size):
    for t in prange(count):
        _gemm_tile(C, A, B, trans_a, trans_b, by_rows, t * size, size)


@njit(cache=True, inline="always")
def _gemm_tile(C, A, B, trans_a, trans_b, by_rows, start, size):
    """One block of C (rows or columns start:start + size) as one library call."""
    if by_rows:
        stop = min(C.shape[0], start + size)
        a = A[:, start:stop] if trans_a else A[start:stop]
        _cblas_gemm(C[start:stop], a, B, trans_a, trans_b)
    else:
        stop = min(C.shape[1], start + size)
        b = B[start:stop] if trans_b else B[:, start:stop]
        _cblas_gemm(C[:, start:stop], A, b, trans_a, trans_b)


@njit(cache=True)
def copy_matrix(dst, src):
    """dst[...] = src for two float[m, n]: an explicit loop, because an array assigned to a
    slice compiles Numba's shape-mismatch message formatting (seconds of a cold start)."""
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] = src[i, j]


@njit(cache=True, inline="always")
def _readable(a):
    return a if _rows_contiguous(a) else np.ascontiguousarray(a)


@njit(cache=True)
def _cblas_gemm(C, A, B, trans_a, trans_b):
    m, n = C.shape
    k = A.shape[0] if trans_a else A.shape[1]
    ta = _TRANS if trans_a else _NO_TRANS
    tb = _TRANS if trans_b else _NO_TRANS
    lda, ldb = A.strides[0] // A.itemsize, B.strides[0] // B.itemsize
    ldc = C.strides[0] // C.itemsize
    if C.itemsize == 4:  # float32; float64 otherwise
        _sgemm(_ROW_MAJOR, ta, tb, m, n, k, np.float32(1), A.ctypes.data, lda,
               B.ctypes.data, ldb, np.float32(0), C.ctypes.data, ldc)
    else:
        _dgemm(_ROW_MAJOR, ta, tb, m, n, k, 1.0, A.ctypes.data, lda,
               B.ctypes.data, ldb, 0.0, C.ctypes.data, ldc)


@njit(cache=True)
def gemm_dot(C, A, B, trans_a, trans_b):
    # one call per case: A and A.T have different layouts, which Numba types apart
    if trans_a and trans_b:
        _dot_into(C, A.T, B.T)
    elif trans_a:
        _dot_into(C, A.T, B)
    elif trans_b:
        _dot_into(C, A, B.T)
    else:
        _dot_into(C, A, B)


def _dot_into(C, a, b):
    """C = a b; in place when C is contiguous, else through a temporary."""


@overload(_dot_into)
def _dot_into_typed(C, a, b):
    if C.layout == "C":  # np.dot writes only into contiguous outputs
        return lambda C, a, b: np.dot(a, b, C)

    def through_temporary(C, a, b):
        C[:] = np.dot(a, b)
    return through_temporary


# gemm(C, A, B, trans_a, trans_b): C = op(A) op(B), overwriting C. Both paths stay public
# so that the tests and the benchmarks can run each on this machine.
gemm = gemm_cblas if HAVE_CBLAS else gemm_dot
