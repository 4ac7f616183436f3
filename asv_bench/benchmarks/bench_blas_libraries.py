"""The training step and its GEMM-only bound on each BLAS library the engine can call.

A process links its compiled kernels to one library (engine/runtime/blas_libraries.py), so
each figure comes from a worker process of compare.py run with CIFAR_ENGINE_BLAS set:
milliseconds per step, the median of its rounds. A library that is not installed (or an
engine from before the choice existed, for any library but NumPy's OpenBLAS, which every
engine used) is skipped.
"""
import sys
from pathlib import Path

from .common import CONFIGS, TINY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare import run_worker  # noqa: E402

LIBRARIES = ["openblas", "mkl"]


def _installed():
    try:
        from cifar_engine.runtime.blas_libraries import installed
    except ImportError:  # an engine before the choice: NumPy's OpenBLAS only
        return {"openblas"}
    return set(installed())


def _worker_ms(config, impl, library):
    figures = run_worker(config, impl, 2 if TINY else 5, epochs=False, blas=library)
    return figures[f"{impl} step"] * 1e3


class StepByLibrary:
    """ms per training step (as the trainer runs it) and per step's products alone."""

    params = [LIBRARIES, ["A"] if TINY else sorted(CONFIGS)]  # TINY: the test suite's check
    param_names = ["blas", "config"]
    unit = "ms"
    timeout = 900

    def setup(self, blas, config):
        if blas not in _installed():
            raise NotImplementedError(f"{blas} is not installed")

    def track_engine_step(self, blas, config):
        return _worker_ms(config, "engine", blas)

    def track_gemm_bound(self, blas, config):
        return _worker_ms(config, f"gemm[{blas}]", blas)
