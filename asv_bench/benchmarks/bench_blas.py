"""engine/kernels/blas.py: the products of a 3072 -> 50 layer, through NumPy's OpenBLAS and
through the np.dot fallback (SciPy's OpenBLAS), so that a change in either shows."""
import numpy as np

from cifar_engine.kernels.blas import gemm, gemm_dot

from .common import BATCHES, DTYPES, Benchmark, D, fresh

M = 50


class Gemm(Benchmark):
    params = [DTYPES, BATCHES]
    param_names = ["dtype", "batch"]

    def setup(self, dtype, n):
        self.X, self.W, self.G = fresh((n, D), dtype), fresh((M, D), dtype, 1), fresh((n, M), dtype, 2)
        self.S, self.dW = np.empty((n, M), dtype), np.empty((M, D), dtype)
        self.time_gemm_forward(dtype, n)
        self.time_gemm_weight_gradient(dtype, n)
        self.time_dot_forward(dtype, n)

    def time_gemm_forward(self, dtype, n):
        gemm(self.S, self.X, self.W, False, True)

    def time_gemm_weight_gradient(self, dtype, n):
        gemm(self.dW, self.G, self.X, True, False)

    def time_dot_forward(self, dtype, n):
        gemm_dot(self.S, self.X, self.W, False, True)
