"""The environment variables that Numba, OpenMP and BLAS read as they load, checked before
Numba loads: a bad value would fail inside Numba's import with a traceback (NUMBA_NUM_THREADS
of 0), at the first parallel loop (an unknown NUMBA_THREADING_LAYER), or be ignored with a
warning (OMP_NUM_THREADS=abc). Nothing here imports Numba.

`guard` (run by the package's __init__) checks them when Numba is first imported, so that
the command line and Python callers get the same UserError naming the variable.
"""
import os
import sys

from ..errors import UserError

MAX_THREADS = 4096  # also the threads setting's limit (settings.TRAIN)
THREADING_LAYERS = ("default", "safe", "forksafe", "threadsafe", "omp", "tbb", "workqueue")


def _whole_numbers(value, many=False):
    """Whether value is a whole number in [1, MAX_THREADS] (or a comma-separated list)."""
    parts = value.split(",") if many else [value]
    return all(p.strip().isdigit() and 1 <= int(p) <= MAX_THREADS for p in parts)


_THREADS = f"must be a whole number in [1, {MAX_THREADS}]"
CHECKS = {
    "NUMBA_NUM_THREADS": (_whole_numbers, _THREADS),
    "OMP_NUM_THREADS": (lambda v: _whole_numbers(v, many=True),
                        f"must be whole numbers in [1, {MAX_THREADS}], comma-separated"),
    "OPENBLAS_NUM_THREADS": (_whole_numbers, _THREADS),
    "MKL_NUM_THREADS": (_whole_numbers, _THREADS),
    "NUMBA_THREADING_LAYER": (lambda v: v.strip().lower() in THREADING_LAYERS,
                              f"must be one of {', '.join(THREADING_LAYERS)}"),
}


class EnvironmentVariableError(UserError):
    """An environment variable with a value that the libraries it sets cannot take."""


def check_environment(environ=os.environ):
    """EnvironmentVariableError naming the first variable of CHECKS with a bad value (an
    empty one counts as unset, as in `VAR= command`)."""
    for name, (ok, rule) in CHECKS.items():
        value = environ.get(name, "")
        if value.strip() and not ok(value):
            raise EnvironmentVariableError(f"environment variable {name} {rule}, got {value!r}")


class _CheckBeforeNumba:
    """A meta-path finder that checks the environment as Numba is first imported, then
    steps aside: it finds nothing itself."""

    def find_spec(self, name, path=None, target=None):
        if name == "numba":
            check_environment()  # stays installed while the environment is bad
            sys.meta_path.remove(self)
        return None


def guard():
    """Check the environment when Numba loads (at once, if it is the next import)."""
    if "numba" not in sys.modules and not any(
            isinstance(f, _CheckBeforeNumba) for f in sys.meta_path):
        sys.meta_path.insert(0, _CheckBeforeNumba())
