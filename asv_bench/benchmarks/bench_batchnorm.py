"""engine/kernels/batchnorm.py: a 50-unit and a 1024-unit layer."""
import numpy as np

from cifar_engine.kernels.batchnorm import (batchnorm_backward, batchnorm_forward_infer,
                                            batchnorm_forward_train)

from .common import BATCHES, DTYPES, Benchmark, fresh


class Batchnorm(Benchmark):
    params = [DTYPES, BATCHES, [50, 1024]]
    param_names = ["dtype", "batch", "width"]

    def setup(self, dtype, n, m):
        self.S = fresh((n, m), dtype)
        self.gamma, self.beta = np.ones(m, dtype), np.zeros(m, dtype)
        self.run_mean, self.run_var = np.zeros(m, dtype), np.ones(m, dtype)
        self.H, self.S_hat = np.empty((n, m), dtype), np.empty((n, m), dtype)
        self.mu, self.inv_std = np.empty(m, dtype), np.ones(m, dtype)
        self.G = fresh((n, m), dtype, 1)
        self.dgamma, self.dbeta = np.empty(m, dtype), np.empty(m, dtype)
        self.time_batchnorm_forward_train(dtype, n, m)
        self.time_batchnorm_forward_infer(dtype, n, m)
        self.time_batchnorm_backward(dtype, n, m)

    def time_batchnorm_forward_train(self, dtype, n, m):
        batchnorm_forward_train(self.H, self.S_hat, self.mu, self.inv_std, self.run_mean,
                                self.run_var, self.S, self.gamma, self.beta, 0.9, 1e-5, True)

    def time_batchnorm_forward_infer(self, dtype, n, m):
        batchnorm_forward_infer(self.H, self.run_mean, self.run_var, self.S, self.gamma,
                                self.beta, 1e-5, True)

    def time_batchnorm_backward(self, dtype, n, m):
        # G is rewritten in place into dS; its values do not change the work done
        batchnorm_backward(self.G, self.dgamma, self.dbeta, self.S_hat, self.inv_std, self.gamma)
