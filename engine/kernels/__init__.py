"""Numba kernels: pure functions of arrays and scalars, one module per concern.

Nothing here imports the rest of the engine. Kernels never allocate: they fill arrays the
caller owns. Argument order everywhere: outputs, then inputs, then parameters, then scalars.

Shape legend used in every module:
    n = rows in the batch (samples are rows, C order), d = input features of a layer,
    m = output features of a layer, K = classes, D = features of an image (C*H*W).

Each kernel is written once; Numba specialises it for float32 and float64 on first call.
"""

import fcntl
import hashlib
import os
from pathlib import Path

# GEMMs run on OpenBLAS's threads and the fused loops on Numba's OpenMP threads, one after
# the other, many times a step. OpenMP threads that spin after a loop starve the BLAS threads
# of the two cores (a 3072-50-10 step went from 1 ms to 30 ms); passive waiting hands the
# cores over. setdefault: a user's own setting wins. It must precede OpenMP's start-up.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def drop_stale_compiled_code(package_dir):
    """Delete a package's Numba disk cache when any of its sources has changed.

    Numba keys a cached function on its own file's timestamp only. A compiled caller holds
    the machine code of every kernel it calls, so after an edit to dense.py the cached
    step functions would go on running the old dense code. A digest of all the kernel
    sources, kept beside the cache, catches that. (Installs replace every file, so this
    matters for editable checkouts; a read-only package is left alone.)
    """
    here = Path(package_dir)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py"))))
    cache = here / "__pycache__"
    stamp = cache / "kernel-sources.sha256"
    try:
        cache.mkdir(exist_ok=True)
        # Processes starting together (a search's workers) take turns, so that none reads a
        # half-written stamp and drops what another has just compiled. The lock file stays:
        # removing it would let a latecomer lock a new file beside a held one.
        with open(cache / "kernel-sources.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if stamp.is_file() and stamp.read_text() == digest.hexdigest():
                return
            for entry in cache.glob("*.nb[ic]"):
                entry.unlink(missing_ok=True)
            stamp.write_text(digest.hexdigest())
    except OSError:
        pass


drop_stale_compiled_code(os.path.dirname(os.path.abspath(__file__)))
