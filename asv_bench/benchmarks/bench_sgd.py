"""engine/kernels/sgd.py: one update of the whole parameter slab of configurations A and E."""
import numpy as np

from cifar_engine.kernels.sgd import sgd_momentum

from .common import DTYPES, Benchmark, fresh

SLAB_SIZES = {"A": 3072 * 50 + 50 + 50 * 10 + 10,
              "E": 3072 * 1024 + 2 * 1024 + 1024 * 512 + 2 * 512 + 512 * 10 + 10}


class SgdMomentum(Benchmark):
    params = [DTYPES, sorted(SLAB_SIZES), [False, True]]
    param_names = ["dtype", "config", "nesterov"]

    def setup(self, dtype, config, nesterov):
        size = SLAB_SIZES[config]
        self.theta, self.v = fresh((size,), dtype), np.zeros(size, dtype)
        self.g = fresh((size,), dtype, 1)
        self.time_sgd_momentum(dtype, config, nesterov)

    def time_sgd_momentum(self, dtype, config, nesterov):
        sgd_momentum(self.theta, self.v, self.g, 1e-3, 0.9, nesterov)
