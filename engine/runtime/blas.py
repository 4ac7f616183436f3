"""The process's BLAS: the library chosen as the engine loads (`blas_libraries.choose`:
CIFAR_ENGINE_BLAS, else a measurement cached per machine), its `cblas_?gemm` entry points
registered with LLVM under the fixed names SGEMM and DGEMM that the compiled kernels call
(`kernels.blas`), and its description for reports."""
import os

import llvmlite.binding as llvm

from .blas_libraries import choose, installed, openblas_kernel, slowed_kernel

SGEMM, DGEMM = "cifar_engine_cblas_sgemm", "cifar_engine_cblas_dgemm"

INSTALLED = installed()  # {name: file}
LIBRARY = choose(INSTALLED)  # the Library in use, or None (np.dot)
HAVE_CBLAS = LIBRARY is not None
if HAVE_CBLAS:
    llvm.add_symbol(SGEMM, LIBRARY.sgemm)
    llvm.add_symbol(DGEMM, LIBRARY.dgemm)


def library_name():
    """The name of the library the products run on: a key of blas_libraries.FINDERS, or
    "np.dot" for the fallback."""
    return LIBRARY.name if HAVE_CBLAS else "np.dot"


def describe():
    """The products' library for reports (JSON-ready): {"library", "version", "installed",
    "kernel" (OpenBLAS's kernel family, else None), "openblas_coretype" (the variable, else
    None), "slowed" (a line when that variable holds OpenBLAS below this CPU, else None)}."""
    kernel = openblas_kernel(LIBRARY) if HAVE_CBLAS and LIBRARY.name == "openblas" else None
    slowed = slowed_kernel(kernel)
    return {"library": library_name(), "version": LIBRARY.version if HAVE_CBLAS else None,
            "installed": sorted(INSTALLED), "kernel": kernel,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "slowed": None if slowed is None else (
                f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} holds OpenBLAS on its "
                f"{slowed[0]} kernels, older than this CPU's {slowed[1]}: wide products run "
                f"slower (make compare measures how much)")}
