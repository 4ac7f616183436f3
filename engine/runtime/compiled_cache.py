"""Numba's disk cache of the compiled kernels, kept in step with their sources."""
import hashlib
from pathlib import Path

from ..util.lock import locked


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
        # half-written stamp and drops what another has just compiled.
        with locked(cache / "kernel-sources.lock"):
            if stamp.is_file() and stamp.read_text() == digest.hexdigest():
                return
            for entry in cache.glob("*.nb[ic]"):
                entry.unlink(missing_ok=True)
            stamp.write_text(digest.hexdigest())
    except OSError:
        pass
