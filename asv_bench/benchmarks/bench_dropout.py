"""engine/kernels/dropout.py: inverted dropout on a 50-unit layer."""
import numpy as np

from cifar_engine.kernels.dropout import dropout_forward

from .common import BATCHES, DTYPES, Benchmark, fresh


class Dropout(Benchmark):
    params = [DTYPES, BATCHES]
    param_names = ["dtype", "batch"]

    def setup(self, dtype, n):
        self.H = fresh((n, 50), dtype)
        self.key = np.uint64(12345)
        self.time_dropout_forward(dtype, n)

    def time_dropout_forward(self, dtype, n):
        dropout_forward(self.H, 0.5, self.key)
