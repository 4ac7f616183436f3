"""engine/kernels/step.py through Network: whole training steps, epochs and inference,
for the five reference configurations A-E."""
import numpy as np

from .common import (CONFIGS, EPOCH_IMAGES, EVAL_IMAGES, Benchmark, images, network,
                     use_step_threads)


class TrainStep(Benchmark):
    """One step as the trainer runs it: gather, forward, backward, SGD-momentum update."""

    params = [sorted(CONFIGS)]
    param_names = ["config"]

    def setup(self, config):
        self.batch = CONFIGS[config]["batch_size"]
        self.net = network(config)
        use_step_threads(self.net, config)
        imgs, labels = images(EPOCH_IMAGES)
        self.source = self.net.batch_source(imgs, labels)
        self.order = np.random.default_rng(0).permutation(EPOCH_IMAGES)
        self.etas = np.full(1, 1e-3)
        self.losses = np.zeros(1, self.net.dtype)
        self.time_train_step(config)

    def time_train_step(self, config):
        self.net.run_steps(self.source, self.order, 0, self.batch, 0, self.etas, self.losses)


class Epoch(Benchmark):
    """Shuffle, then steps over EPOCH_IMAGES (45,000) images, as the trainer runs an epoch."""

    params = [sorted(CONFIGS)]
    param_names = ["config"]
    timeout = 600
    number = 1
    repeat = (1, 5, 120.0)

    def setup(self, config):
        self.batch = CONFIGS[config]["batch_size"]
        self.steps = EPOCH_IMAGES // self.batch
        self.net = network(config)
        use_step_threads(self.net, config)
        imgs, labels = images(EPOCH_IMAGES)
        self.index = np.arange(EPOCH_IMAGES)
        self.source = self.net.batch_source(imgs, labels)
        self.etas = np.full(self.steps, 1e-3)
        self.losses = np.zeros(self.steps, self.net.dtype)
        self.net.run_steps(self.source, self.index, 0, self.batch, 0, self.etas[:1],
                           self.losses)

    def time_epoch(self, config):
        order = np.random.default_rng(1).permutation(self.index)
        self.net.run_steps(self.source, order, 0, self.batch, 0, self.etas, self.losses)

    def peakmem_epoch(self, config):
        self.time_epoch(config)


class Inference(Benchmark):
    """Loss and accuracy over EVAL_IMAGES (10,000) uint8 images, in chunks."""

    params = [sorted(CONFIGS)]
    param_names = ["config"]

    def setup(self, config):
        self.net = network(config)
        self.images, self.labels = images(EVAL_IMAGES, seed=1)
        self.net.evaluate(self.images[:10], self.labels[:10])

    def time_evaluate(self, config):
        self.net.evaluate(self.images, self.labels)
