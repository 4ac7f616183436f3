"""Which loop form a kernel runs: a plain loop for small work, `prange` for large.

A parallel loop goes through the threading layer on every call: on this project's 2-core
machines about 1 us on one thread and about 60 us on two (the sleeping OpenMP worker has to
be woken, as it waits passively; see kernels/__init__.py). And Numba compiles a function
with parallel=True through extra passes (array analysis among them) that slow even its
plain loops: batch norm on 100 x 50 took 8 us there against 4 us in a plain function.

So each kernel is a plain @njit function that runs its loop body (one inlined function)
itself when `serial(work)` is true, and otherwise hands the same body to a `_..._parallel`
twin, the only part compiled with parallel=prange_only(). Both forms give the same result
bit for bit: no loop body depends on which thread runs it. On the small nets, whose steps
take under a millisecond, this took about a tenth off a step.
The twins all have one shape (a prange over the body), written out per kernel: a
function that took the body as an argument could not be cached (Numba counts a function
argument as a dynamic global).
"""
from numba import njit

SERIAL_MAX_WORK = 1 << 18  # elements a loop touches; 1 MiB of float32


@njit(cache=True, inline="always")
def serial(work):
    """True when a loop over `work` elements should run on the calling thread alone."""
    return work < SERIAL_MAX_WORK


def prange_only():
    """njit's `parallel` option for a kernel: only its `prange` loops run in parallel.

    Array expressions in a loop body (`acc[:] = 0`, `mu /= n`) stay plain loops; left to
    Numba's defaults they become parallel loops of their own, which the serial form would
    launch on every call. A fresh dict each time: Numba consumes the one it is given.
    """
    return dict(prange=True, comprehension=False, reduction=False, inplace_binop=False,
                setitem=False, numpy=False, stencil=False, fusion=False)
