"""engine/kernels/batch.py: gathering a standardised (and augmented) batch of CIFAR images."""
import numpy as np

from cifar_engine.kernels.batch import NO_AUGMENT, Augment, gather

from .common import BATCHES, DTYPES, IMAGE_SHAPE, Benchmark, D, images

AUGMENTS = {"none": NO_AUGMENT, "flip+shift": Augment(True, 4, 0.0, 0.0),
            "noise": Augment(False, 0, 0.1, 0.5)}


class Gather(Benchmark):
    params = [DTYPES, BATCHES, sorted(AUGMENTS)]
    param_names = ["dtype", "batch", "augment"]

    def setup(self, dtype, n, augment):
        self.images, _ = images(10_000)
        self.rows = np.random.default_rng(0).permutation(10_000)[:n]
        self.mean, self.inv_std = np.full(D, 120.0, dtype), np.full(D, 1 / 64.0, dtype)
        self.X = np.empty((n, D), dtype)
        self.augment = AUGMENTS[augment]
        self.time_gather(dtype, n, augment)

    def time_gather(self, dtype, n, augment):
        gather(self.X, self.images, self.rows, self.mean, self.inv_std, IMAGE_SHAPE,
               self.augment, np.uint64(7))
