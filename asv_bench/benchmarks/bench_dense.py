"""engine/kernels/dense.py: a 3072 -> 50 layer, the first layer of the classic nets."""
import numpy as np

from cifar_engine.kernels.dense import (column_sums, dense_backward, dense_backward_input,
                                        dense_forward)

from .common import BATCHES, DTYPES, Benchmark, D, fresh

M = 50


class Dense(Benchmark):
    params = [DTYPES, BATCHES]
    param_names = ["dtype", "batch"]

    def setup(self, dtype, n):
        self.X = np.maximum(fresh((n, D), dtype), 0)
        self.W, self.b = fresh((M, D), dtype, 1), fresh((M,), dtype, 2)
        self.G = fresh((n, M), dtype, 3)
        self.S, self.dX = np.empty((n, M), dtype), np.empty((n, D), dtype)
        self.dW, self.db = np.empty((M, D), dtype), np.empty(M, dtype)
        self.time_dense_forward(dtype, n)
        self.time_dense_backward(dtype, n)
        self.time_dense_backward_input(dtype, n)
        self.time_column_sums(dtype, n)

    def time_dense_forward(self, dtype, n):
        dense_forward(self.S, self.X, self.W, self.b, True)

    def time_dense_backward(self, dtype, n):
        dense_backward(self.dW, self.db, self.G, self.X, self.W, 0.005)

    def time_dense_backward_input(self, dtype, n):
        dense_backward_input(self.dX, self.G, self.X, self.W, 1.0)

    def time_column_sums(self, dtype, n):
        column_sums(self.db, self.G)
