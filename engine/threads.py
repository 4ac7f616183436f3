"""The process's thread budget, set in one place: Numba's threads and the BLAS pool.

Training alternates Numba's fused loops with BLAS products, so the two pools take turns on
the same cores; W trials in parallel processes must each stay within their share, or they
oversubscribe the machine.
"""
import os

import numba
from threadpoolctl import threadpool_limits


def cores():
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def use_threads(numba_threads, blas_threads=None):
    """Run Numba's loops on numba_threads threads (capped at what Numba started) and, when
    given, BLAS on blas_threads."""
    numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    if blas_threads is not None:
        threadpool_limits(limits=max(1, int(blas_threads)), user_api="blas")


def share(workers):
    """Each of `workers` processes' share of the cores (at least one)."""
    return max(1, cores() // max(1, int(workers)))
