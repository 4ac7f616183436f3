"""The process the engine runs in: the environment it checks before Numba loads
(`environment`), the BLAS library it calls (`blas`, chosen among `blas_libraries`), its
threads (`threads`) and Numba's compiled-code cache (`compiled_cache`)."""
import functools
import os
from pathlib import Path


@functools.cache
def prepare_kernels():
    """Make the process ready for the compiled kernels (which call this as they load):
    OpenMP's wait policy set, and a compiled-code cache that matches the kernels' sources."""
    from .compiled_cache import drop_stale_compiled_code

    # GEMMs and the fused loops on Numba's OpenMP threads take turns many times a step.
    # OpenMP threads that spin after a loop starve the BLAS calls of the two cores (a
    # 3072-50-10 step went from 1 ms to 30 ms); passive waiting hands the cores over.
    # setdefault: a user's own setting wins. It must precede OpenMP's start-up.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    drop_stale_compiled_code(Path(__file__).resolve().parent.parent / "kernels")
