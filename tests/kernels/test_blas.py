"""blas.py: C = op(A) op(B) through the chosen CBLAS, and the np.dot fallback, against NumPy."""
import os
import subprocess
import sys

import numpy as np
import pytest

from cifar_engine.kernels import blas

# (m, n, k): a single row, odd sizes, and the first layer of a 3072-50-10 net.
SHAPES = [(1, 3, 5), (7, 13, 65), (100, 50, 3072)]
PATHS = [pytest.param(blas.gemm_cblas, id="cblas",
                      marks=pytest.mark.skipif(not blas.HAVE_CBLAS, reason="no NumPy OpenBLAS")),
         pytest.param(blas.gemm_dot, id="np.dot")]


def _operands(randn, m, n, k, trans_a, trans_b):
    A = randn(k, m) if trans_a else randn(m, k)
    B = randn(n, k) if trans_b else randn(k, n)
    return A, B


def _expected(A, B, trans_a, trans_b):
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    return (A64.T if trans_a else A64) @ (B64.T if trans_b else B64)


@pytest.mark.parametrize("gemm", PATHS)
@pytest.mark.parametrize("m, n, k", SHAPES)
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (False, True), (True, False),
                                              (True, True)])
def test_gemm_is_the_product_of_the_operands(gemm, m, n, k, trans_a, trans_b, randn, garbage,
                                             assert_close):
    A, B = _operands(randn, m, n, k, trans_a, trans_b)
    C = garbage(m, n)
    gemm(C, A, B, trans_a, trans_b)
    assert_close(C, _expected(A, B, trans_a, trans_b))


@pytest.mark.filterwarnings("ignore::numba.NumbaPerformanceWarning")
@pytest.mark.parametrize("gemm", PATHS)
def test_gemm_reads_and_writes_views_with_row_strides(gemm, randn, garbage, assert_close):
    # slices of wider arrays: the leading dimensions are the parents' widths, not the views'
    A_parent, B_parent, C_parent = randn(9, 20), randn(6, 11), garbage(9, 8)
    A, B, C = A_parent[:, 3:10], B_parent[:, 2:9], C_parent[:, 1:7]
    gemm(C, A, B, False, True)
    assert_close(C, _expected(A, B, False, True))
    assert np.isnan(C_parent[:, :1]).all() and np.isnan(C_parent[:, 7:]).all()


@pytest.mark.filterwarnings("ignore::numba.NumbaPerformanceWarning")
def test_gemm_handles_column_strided_operands(randn, garbage, assert_close):
    A, B = randn(5, 12)[:, ::2], randn(6, 4)  # A's columns are 2 apart: no BLAS layout fits
    C = garbage(5, 4)
    blas.gemm(C, A, B, False, False)
    assert_close(C, _expected(A, B, False, False))


@pytest.mark.parametrize("gemm", PATHS)
@pytest.mark.parametrize("m, n, k", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1)])
def test_gemm_handles_empty_and_single_entry_shapes(gemm, m, n, k, randn, garbage,
                                                     assert_close):
    A, B = randn(m, k), randn(k, n)
    C = garbage(m, n)
    gemm(C, A, B, False, False)
    assert_close(C, _expected(A, B, False, False))


def test_numpy_openblas_is_found_in_a_wheel_install():
    # the project installs NumPy from its wheels, which bundle scipy-openblas
    assert blas.HAVE_CBLAS


RELOAD_PROBE = """
import os
import subprocess
import sys

import numpy as np
from cifar_engine.kernels.blas import gemm_cblas
for dtype in (np.float32, np.float64):
    A, B = np.ones((4, 12), dtype)[:, ::2], np.ones((3, 6), dtype)
    C = np.zeros((4, 8), dtype)[:, 1:4]
    gemm_cblas(C, A, B, False, True)
    assert (C == 6).all()
"""


@pytest.mark.skipif(not blas.HAVE_CBLAS, reason="no NumPy OpenBLAS")
def test_gemm_with_odd_layouts_runs_again_from_the_disk_cache(tmp_path):
    # the first process compiles and caches; the second loads the cached code and runs it
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    for run in ("compile", "reload"):
        done = subprocess.run([sys.executable, "-c", RELOAD_PROBE], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{run}: exit {done.returncode}\n{done.stderr[-2000:]}"
