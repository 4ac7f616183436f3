"""Start-up of a new process: the time to its first training step, cold and warm cache.

Cold: an empty Numba cache (NUMBA_CACHE_DIR points at a new folder), so every kernel
compiles. Warm: the same folder again. Each figure is the median of --runs processes,
measured from before the interpreter starts to the end of the first step of a 3072-50-10
network (float32, batch 100, as the trainer runs it).
Usage: python asv_bench/startup.py [--runs 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import numpy as np
from cifar_engine.model.network import Network, NetworkSpec
net = Network(NetworkSpec(input_size=3072, n_classes=10, hidden=(50,)), max_batch=100)
rng = np.random.default_rng(0)
source = net.batch_source(rng.integers(0, 256, (1000, 3072), dtype=np.uint8),
                          rng.integers(0, 10, 1000))
net.run_steps(source, np.arange(1000), 0, 100, 0, np.full(1, 0.01), np.zeros(1, np.float32))
"""


def first_step_seconds(cache_dir=None):
    """Seconds to a new process's first step, with Numba's cache in cache_dir (None: the
    usual cache)."""
    env = {**os.environ, **({"NUMBA_CACHE_DIR": cache_dir} if cache_dir else {})}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD], env=env, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cold, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(first_step_seconds(cache))
            warm.append(first_step_seconds(cache))
    for name, v in (("cold cache", cold), ("warm cache", warm)):
        print(f"{name}: median {statistics.median(v):.2f} s [min {min(v):.2f}, max {max(v):.2f}] "
              f"over {args.runs} processes")


if __name__ == "__main__":
    main()
