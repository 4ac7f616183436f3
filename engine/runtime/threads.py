"""The process's thread budget, set in one place: Numba's threads and the BLAS pool.

Training alternates Numba's fused loops with BLAS products, so the two pools take turns on
the same cores; W trials in parallel processes must each stay within their share, or they
oversubscribe the machine.
"""
import functools
import os

import numba
from threadpoolctl import ThreadpoolController, threadpool_limits


def cores():
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def use_threads(numba_threads, blas_threads=None):
    """Run Numba's loops on numba_threads threads (capped at what Numba started) and, when
    given, BLAS on blas_threads."""
    numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    if blas_threads is not None:
        threadpool_limits(limits=max(1, int(blas_threads)), user_api="blas")


@functools.cache
def _blas_pools():
    from . import blas  # noqa: F401  (loads the engine's library, to be controlled too)

    return ThreadpoolController().select(user_api="blas")


def blas_single():
    """A context in which every BLAS pool of the process runs on one thread.

    The engine cuts each product into blocks by shape and runs them on Numba's threads
    (`kernels.blas`); a library splitting a block again by its own thread count would
    make the bits depend on that count. About 25 us to enter and leave.
    """
    return _blas_pools().limit(limits=1)


def share(workers):
    """Each of `workers` processes' share of the cores (at least one)."""
    return max(1, cores() // max(1, int(workers)))
