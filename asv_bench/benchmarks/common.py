"""Seeded, cached inputs and the five reference configurations.

!!! Only append: results from different commits stay comparable only if these inputs do. !!!

Set CIFAR_ENGINE_BENCH_TINY=1 to shrink every input (the test suite does, to keep the
benchmarks alive without timing them).
"""
import os
from functools import lru_cache

import numpy as np

TINY = os.environ.get("CIFAR_ENGINE_BENCH_TINY") == "1"

D = 3072                       # CIFAR-10 features
K = 10                         # classes
IMAGE_SHAPE = (3, 32, 32)
EPOCH_IMAGES = 500 if TINY else 45_000
EVAL_IMAGES = 500 if TINY else 10_000
DTYPES = ["float32", "float64"]
BATCHES = [1, 100] if TINY else [1, 100, 500]
LAM = 0.005
MOMENTUM = 0.9

# The comparison's configurations: hidden widths, batch norm, batch size (float32, SGD with
# momentum 0.9, L2 on the weight matrices).
CONFIGS = {
    "A": dict(hidden=(50,), batch_norm=False, batch_size=100),
    "B": dict(hidden=(50, 50), batch_norm=True, batch_size=100),
    "C": dict(hidden=(50, 30, 20, 20, 10, 10, 10, 10), batch_norm=True, batch_size=100),
    "D": dict(hidden=(140,), batch_norm=False, batch_size=500),
    "E": dict(hidden=(1024, 512), batch_norm=True, batch_size=256),
}


class Benchmark:
    pass


@lru_cache(maxsize=None)
def images(n, seed=0):
    """uint8[n, D] random images and int64[n] labels (timing does not need real pixels)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, D), dtype=np.uint8), rng.integers(0, K, n)


@lru_cache(maxsize=None)
def floats(shape, dtype, seed=0):
    """A standard-normal array of `shape` in `dtype`, read-only so that it stays as cached."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    a.flags.writeable = False
    return a


def fresh(shape, dtype, seed=0):
    """A writable copy of `floats(shape, dtype, seed)`, touched so its pages are resident."""
    return np.array(floats(shape, dtype, seed))


def network(config, dtype="float32", seed=0):
    """The Network of a configuration, standardised like CIFAR-10 data."""
    from cifar_engine.model.network import Network, NetworkSpec

    c = CONFIGS[config]
    spec = NetworkSpec(input_size=D, n_classes=K, hidden=c["hidden"], batch_norm=c["batch_norm"],
                       lam=LAM, dtype=dtype)
    net = Network(spec, seed=seed, max_batch=max(c["batch_size"], 1000), momentum=MOMENTUM)
    mean, std = np.full(D, 120.0), np.full(D, 64.0)
    if hasattr(net, "set_preprocessing"):
        from cifar_engine.data.preprocessing import Standardise

        net.set_preprocessing(Standardise(mean, std), image_shape=IMAGE_SHAPE)
    else:  # the engine of commits before preprocessing was one fitted value (bench-history)
        net.set_standardisation(mean, std, image_shape=IMAGE_SHAPE)
    return net


def use_step_threads(net, config):
    """Set Numba's threads as the trainer does for this configuration."""
    import numba

    numba.set_num_threads(net.step_threads(CONFIGS[config]["batch_size"]))
