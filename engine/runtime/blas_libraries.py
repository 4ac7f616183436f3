"""The CBLAS libraries the engine can call, and which one it calls on this machine.

A registry, name -> (where its files are, how to load one), of the libraries with an ILP64
`cblas_?gemm` the process can load: NumPy's bundled OpenBLAS always (in a wheel install),
Intel's MKL when the `mkl` package is installed (`pip install cifar-engine[mkl]`). Loaded
libraries are found by threadpoolctl, on any OS; an MKL not loaded yet, in the environment.
CIFAR_ENGINE_BLAS=auto|openblas|mkl chooses; `auto` (the default) times the products of a wide and a narrow layer with each
library found, once per machine, and keeps the answer in ~/.cache/cifar-engine: one entry
per key (the CPU, the cores, OPENBLAS_CORETYPE and the libraries' files), so that another
checkout or environment adds its own entry and never replaces this one's. Later processes
start at once and load only the library they use. Another library displaces DEFAULT only
when it is clearly faster (MARGIN): within the noise of a shared machine, a second
measurement could choose otherwise, and the run would end elsewhere.
Vendor names decide nothing: MKL is the faster on some Intel machines and half as fast as
OpenBLAS on the AMD EPYC this project is measured on.

MKL is started on its GNU OpenMP threading layer, the same libgomp runtime as Numba's
`omp` threading layer, so that one OpenMP pool serves the fused loops and the products; and
in its strict reproducible mode, so that a seed gives the same bits on any thread count.
"""
import contextlib
import ctypes
import glob
import json
import os
import sys
import time
from collections import namedtuple
from pathlib import Path

from ..util.lock import FileLock
from ..util.system import cpu_flags, cpu_model

ENV = "CIFAR_ENGINE_BLAS"
AUTO = "auto"
CHOICE_FILE = "blas-choice.json"
DEFAULT = "openblas"  # NumPy's own: always there
MARGIN = 0.85  # another library is chosen only when its probe takes under this share of DEFAULT's

Library = namedtuple("Library", ["name", "version", "path", "sgemm", "dgemm"])
Library.__doc__ = """A loaded CBLAS: its name, version string, file, and the addresses of
its ILP64 row-major `cblas_sgemm` and `cblas_dgemm` (int64 sizes and leading dimensions)."""


class BlasChoiceError(ValueError):
    """CIFAR_ENGINE_BLAS names a library that is unknown or not installed."""


def _loaded(internal_api):
    """threadpoolctl's facts ({"filepath", "version", "architecture", ...}) of the loaded
    libraries of `internal_api` ("openblas", "mkl"), on any OS; NumPy's OpenBLAS loads with it."""
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    return [info for info in threadpool_info() if info["internal_api"] == internal_api]


def _numpy_openblas_files():
    """NumPy's OpenBLAS (scipy-openblas): the loaded OpenBLAS with ILP64 symbols (SciPy's
    own copy has LP64 ones)."""
    return [info["filepath"] for info in _loaded("openblas")
            if _exports(info["filepath"], "scipy_cblas_sgemm64_")]


def _load_openblas(path):
    lib = ctypes.CDLL(path)
    config = lib.scipy_openblas_get_config64_
    config.restype = ctypes.c_char_p
    version = config().decode().split()[1]  # "OpenBLAS 0.3.31 ..."
    return Library("openblas", version, path, _address(lib, "scipy_cblas_sgemm64_"),
                   _address(lib, "scipy_cblas_dgemm64_"))


# mkl_rt where the PyPI `mkl` package puts it in an environment, by system
MKL_RT = {"win32": ("Library", "bin", "mkl_rt*.dll"), "darwin": ("lib", "libmkl_rt*.dylib"),
          "linux": ("lib", "libmkl_rt.so*")}


def _mkl_files():
    """mkl_rt: a copy already loaded, then the environment's (MKL_RT), newest first."""
    roots = dict.fromkeys([sys.prefix, sys.base_prefix, os.environ.get("CONDA_PREFIX") or ""])
    where = MKL_RT.get(sys.platform, MKL_RT["linux"])
    found = [info["filepath"] for info in _loaded("mkl")]
    found += [p for root in roots if root
              for p in sorted(glob.glob(os.path.join(root, *where)), reverse=True)]
    return list(dict.fromkeys(found))


MKL_THREADING_GNU = 3
MKL_CBWR_AUTO_STRICT = 2 | 0x10000  # MKL_CBWR_AUTO | MKL_CBWR_STRICT


def _load_mkl(path):
    lib = ctypes.CDLL(path)
    lib.MKL_Set_Threading_Layer(ctypes.c_int(MKL_THREADING_GNU))
    # Strict conditional numerical reproducibility: the same bits on any thread count (as
    # OpenBLAS gives), without which 1 and 2 threads part after a few steps. It must
    # precede every other MKL call that computes.
    if lib.MKL_CBWR_Set(ctypes.c_int(MKL_CBWR_AUTO_STRICT)) != 0:  # MKL_CBWR_SUCCESS
        raise OSError(f"{path}: this MKL has no strict reproducible mode")
    text = ctypes.create_string_buffer(256)
    lib.MKL_Get_Version_String(text, ctypes.c_int(len(text)))
    version = text.value.decode().split("Version ")[-1].split("-")[0].strip()
    return Library("mkl", version, path, _address(lib, "cblas_sgemm_64"),
                   _address(lib, "cblas_dgemm_64"))


def _exports(path, symbol):
    try:
        return hasattr(ctypes.CDLL(path), symbol)
    except OSError:
        return False


def _address(lib, symbol):
    return ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value


# name -> (files: the candidate files, best first; load: path -> Library, or raises OSError,
# AttributeError or IndexError when the file is not a usable copy)
FINDERS = {"openblas": (_numpy_openblas_files, _load_openblas),
           "mkl": (_mkl_files, _load_mkl)}


def installed():
    """{name: file} of the libraries in FINDERS whose files are here (none loaded yet)."""
    files = {name: files() for name, (files, _) in FINDERS.items()}
    return {name: paths[0] for name, paths in files.items() if paths}


def load(name, path):
    """The Library `name` from `path`, or None when it does not load."""
    try:
        return FINDERS[name][1](path)
    except (OSError, AttributeError, IndexError):
        return None


def choose(files, setting=None, cache_dir=None):
    """Load and return the Library to use, from files ({name: path}, as `installed` gives):
    the one `setting` (default $CIFAR_ENGINE_BLAS, else auto) names, or with auto the fastest
    by `measure`, measured once per machine and cached. None when none loads.

    Raises BlasChoiceError for an unknown name or one that is not installed.
    """
    setting = (setting if setting is not None else os.environ.get(ENV, AUTO)).strip().lower()
    if setting != AUTO:
        if setting not in FINDERS:
            raise BlasChoiceError(f"{ENV}={setting}: choose {AUTO}, {', '.join(FINDERS)}")
        library = load(setting, files[setting]) if setting in files else None
        if library is None:
            raise BlasChoiceError(f"{ENV}={setting}: {setting} is not installed here "
                                  f"(found: {', '.join(files) or 'none'})")
        return library
    if len(files) > 1:
        fastest = _fastest(files, cache_dir)
        if fastest is not None:
            return fastest
    return next(filter(None, (load(name, path) for name, path in files.items())), None)


def _fastest(files, cache_dir):
    """The Library auto chooses among files, from the machine's cache when it holds this
    key; None when fewer than two load. Processes that start together (a test run's
    workers, a search's) measure one at a time, under the cache's lock, and those after the
    first read its choice: one key gets one choice, whatever the load meant for the probe."""
    path = Path(cache_dir or _user_cache()) / CHOICE_FILE
    key = _machine_key(files)
    library = _known(path, key, files)
    if library is not None:
        return library
    with _measuring(path):
        return _known(path, key, files) or _measured(path, key, files)


def _known(path, key, files):
    """The Library the cache at `path` chose for `key`, or None."""
    known = next((e for e in _entries(path) if e.get("key") == key), None)
    if known is not None and known.get("choice") in files:
        return load(known["choice"], files[known["choice"]])
    return None


@contextlib.contextmanager
def _measuring(path):
    """Hold the cache's lock; without one (no writable cache folder) measure anyway."""
    try:
        held = FileLock(path.with_name(f"{path.name}.lock")).acquire(blocking=True)
    except OSError:
        held = None
    try:
        yield
    finally:
        if held is not None:
            held.release()


def _measured(path, key, files):
    """Measure the libraries of `files`, keep the choice for `key` at `path`; the Library,
    or None when fewer than two load."""
    libraries = {name: load(name, file) for name, file in files.items()}
    libraries = {name: lib for name, lib in libraries.items() if lib is not None}
    if len(libraries) < 2:
        return None
    seconds = measure(libraries)
    choice = _with_margin(seconds)
    fresh = _entries(path)  # as it is now: another checkout may have added its key meanwhile
    _write_json(path, {"choices": [e for e in fresh if e.get("key") != key]
                       + [{"key": key, "choice": choice, "seconds": seconds}]})
    return libraries[choice]


def _with_margin(seconds):
    """The fastest of {name: seconds}, unless DEFAULT is within MARGIN of it."""
    fastest = min(seconds, key=seconds.get)
    if DEFAULT in seconds and seconds[fastest] >= MARGIN * seconds[DEFAULT]:
        return DEFAULT
    return fastest


def _entries(path):
    """The cache file's entries ({key, choice, seconds} each); [] when it is unreadable."""
    try:
        entries = json.loads(path.read_text()).get("choices", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def measured_choice(cache_dir=None, files=None):
    """What auto measured on this machine for `files` (default: the installed libraries):
    {key, choice, seconds}, or None."""
    key = _machine_key(installed() if files is None else files)
    entries = _entries(Path(cache_dir or _user_cache()) / CHOICE_FILE)
    return next((e for e in entries if e.get("key") == key), None)


def _user_cache():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cifar-engine"


def _machine_key(files):
    sizes = {name: [path, os.path.getsize(path)] for name, path in files.items()}
    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""), "libraries": sizes}


# OpenBLAS's x86 kernel families for float products, oldest first, and the CPU flags each
# needs (newer families add bf16 and int8 products, which the engine does not call).
KERNEL_FLAGS = [("Haswell", {"avx2", "fma"}),
                ("SkylakeX", {"avx512f", "avx512bw", "avx512vl", "avx512dq"})]


def openblas_kernel(lib):
    """The kernel family an OpenBLAS Library runs ("Haswell", "SkylakeX", ...), or None."""
    return next((info.get("architecture") for info in _loaded("openblas")
                 if info["filepath"] == lib.path), None)


def slowed_kernel(kernel):
    """When OPENBLAS_CORETYPE holds OpenBLAS on an older family than this CPU runs:
    (the forced family, the CPU's newest family); else None."""
    ranks = {name.lower(): rank for rank, (name, _) in enumerate(KERNEL_FLAGS)}
    forced = os.environ.get("OPENBLAS_CORETYPE")
    flags = cpu_flags()
    native = [name for name, needs in KERNEL_FLAGS if needs <= flags]
    if not forced or not kernel or not native or kernel.lower() not in ranks:
        return None
    return (kernel, native[-1]) if ranks[kernel.lower()] < ranks[native[-1].lower()] else None


def _write_json(path, value):
    """Best effort: a machine without a writable home measures again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass


# (m, n, k, trans_a, trans_b): a 3072 -> 1024 layer at batch 256 (forward, weight gradient)
# and a 3072 -> 50 layer at batch 100: the wide and the narrow end of what the engine runs.
PROBE_PRODUCTS = [(256, 1024, 3072, False, True), (1024, 3072, 256, True, False),
                  (100, 50, 3072, False, True), (50, 3072, 100, True, False)]


def measure(libraries, repeats=5):
    """{name: seconds} of PROBE_PRODUCTS in float32 through each Library of {name: lib}:
    per product, the least of `repeats` calls after a warm-up call, summed (about 0.1-0.5 s
    a library in all). The libraries take turns call by call, so that a load that comes and
    goes on a shared machine weighs on each alike, and the least of the calls is what a
    product costs with the cores to itself."""
    import numpy as np

    rng = np.random.default_rng(0)
    sgemms = {name: _ctypes_sgemm(lib) for name, lib in libraries.items()}
    total = dict.fromkeys(libraries, 0.0)
    for m, n, k, trans_a, trans_b in PROBE_PRODUCTS:
        A = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
        B = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
        C = np.empty((m, n), np.float32)
        least = dict.fromkeys(libraries, float("inf"))
        for call in range(repeats + 1):
            for name, sgemm in sgemms.items():
                start = time.perf_counter()
                sgemm(C, A, B, trans_a, trans_b)
                if call:  # the first call of each warms it up
                    least[name] = min(least[name], time.perf_counter() - start)
        for name in libraries:
            total[name] += least[name]
    return total


def _ctypes_sgemm(lib):
    """C = op(A) op(B) through lib's sgemm from Python (C-contiguous float32 arrays)."""
    call = ctypes.CFUNCTYPE(None, *([ctypes.c_int] * 3), *([ctypes.c_int64] * 3), ctypes.c_float,
                            ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                            ctypes.c_float, ctypes.c_void_p, ctypes.c_int64)(lib.sgemm)

    def sgemm(C, A, B, trans_a, trans_b):
        m, n = C.shape
        k = A.shape[0] if trans_a else A.shape[1]
        call(101, 112 if trans_a else 111, 112 if trans_b else 111, m, n, k, 1.0,
             A.ctypes.data, A.shape[1], B.ctypes.data, B.shape[1], 0.0, C.ctypes.data, n)
    return sgemm
