"""engine/kernels/losses.py: softmax cross-entropy and SVM hinge on 10 classes."""
import numpy as np

from cifar_engine.kernels.losses import softmax, softmax_xent, svm_hinge

from .common import BATCHES, DTYPES, Benchmark, K, fresh


class Losses(Benchmark):
    params = [DTYPES, BATCHES]
    param_names = ["dtype", "batch"]

    def setup(self, dtype, n):
        self.S = fresh((n, K), dtype)
        self.y = np.random.default_rng(0).integers(0, K, n)
        self.G, self.losses = np.empty((n, K), dtype), np.empty(n, dtype)
        self.time_softmax_xent(dtype, n)
        self.time_svm_hinge(dtype, n)
        self.time_softmax(dtype, n)

    def time_softmax_xent(self, dtype, n):
        softmax_xent(self.G, self.losses, self.S, self.y)

    def time_svm_hinge(self, dtype, n):
        svm_hinge(self.G, self.losses, self.S, self.y)

    def time_softmax(self, dtype, n):
        softmax(self.G, self.S)
