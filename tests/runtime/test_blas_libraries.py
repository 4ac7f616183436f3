"""runtime/blas_libraries.py: which CBLAS the engine uses, and that every library gives the same
training: all kernel tests pass on each, the libraries agree after 20 steps, and on each
one and two threads give bit-identical parameters."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cifar_engine.runtime import blas, blas_libraries
from cifar_engine.runtime.blas_libraries import BlasChoiceError, choose

KERNEL_TESTS = Path(__file__).parent.parent / "kernels"
INSTALLED = sorted(blas_libraries.installed())


def test_the_test_environment_has_both_libraries():
    # the test extra installs mkl, so that every library's tests below run rather than skip
    assert INSTALLED == ["mkl", "openblas"]


def test_numpy_openblas_is_found_loaded_and_told_from_scipys_own_copy():
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, whose symbols are LP64)

    files = blas_libraries._numpy_openblas_files()
    assert len(files) == 1 and "scipy" not in Path(files[0]).parent.name
    assert blas_libraries.openblas_kernel(blas_libraries.load("openblas", files[0]))


@pytest.mark.parametrize("system, file", [("linux", "lib/libmkl_rt.so.2"),
                                          ("darwin", "lib/libmkl_rt.2.dylib"),
                                          ("win32", "Library/bin/mkl_rt.2.dll")])
def test_mkl_is_found_where_the_mkl_package_puts_it_on_each_system(system, file, tmp_path,
                                                                    monkeypatch):
    (tmp_path / file).parent.mkdir(parents=True)
    (tmp_path / file).touch()
    monkeypatch.setattr(blas_libraries, "_loaded", lambda internal_api: [])  # none loaded yet
    monkeypatch.setattr(sys, "platform", system)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    assert blas_libraries._mkl_files() == [str(tmp_path / file)]


@pytest.mark.parametrize("setting", ["fastest", "np.dot", "openblas64", ""])
def test_an_unknown_library_is_refused_naming_the_variable_and_the_choices(setting):
    with pytest.raises(BlasChoiceError, match=r"^CIFAR_ENGINE_BLAS=.*: choose auto, openblas, mkl$"):
        choose(blas_libraries.installed(), setting)


def test_a_library_that_is_not_installed_is_refused_naming_what_is():
    with pytest.raises(BlasChoiceError, match=r"mkl is not installed here \(found: openblas\)"):
        choose({"openblas": blas_libraries.installed()["openblas"]}, "mkl")


@pytest.mark.parametrize("name", INSTALLED)
def test_a_named_library_is_loaded_whatever_auto_would_choose(name, tmp_path):
    library = choose(blas_libraries.installed(), name.upper(), cache_dir=tmp_path)
    assert library.name == name and library.sgemm and library.dgemm
    assert not (tmp_path / blas_libraries.CHOICE_FILE).exists()  # nothing was measured


def test_auto_measures_once_and_then_reads_its_choice(tmp_path, monkeypatch):
    files = blas_libraries.installed()
    calls = []
    real = blas_libraries.measure
    monkeypatch.setattr(blas_libraries, "measure", lambda libs: calls.extend(libs) or real(libs))
    first = choose(files, "auto", cache_dir=tmp_path)
    entry = blas_libraries.measured_choice(tmp_path, files)
    assert sorted(calls) == INSTALLED
    assert entry["choice"] == first.name == blas_libraries._with_margin(entry["seconds"])
    assert choose(files, "auto", cache_dir=tmp_path).name == first.name
    assert len(calls) == len(INSTALLED)  # the second choice read the cache


def test_auto_measures_again_when_the_machine_or_libraries_change(tmp_path, monkeypatch):
    files = blas_libraries.installed()
    stale = {"choices": [{"key": {"cpu": "another CPU"}, "choice": "openblas", "seconds": {}}]}
    (tmp_path / blas_libraries.CHOICE_FILE).write_text(json.dumps(stale))
    monkeypatch.setattr(blas_libraries, "measure", lambda libs: {"openblas": 2.0, "mkl": 1.0})
    assert choose(files, "auto", cache_dir=tmp_path).name == "mkl"
    monkeypatch.setattr(blas_libraries, "measure", lambda libs: {"openblas": 1.0, "mkl": 2.0})
    (tmp_path / blas_libraries.CHOICE_FILE).write_text("{not json")
    assert choose(files, "auto", cache_dir=tmp_path).name == "openblas"


def test_auto_keeps_every_other_keys_choice(tmp_path, monkeypatch):
    # another checkout (other library files) or CPU adds its entry and never replaces one
    files = blas_libraries.installed()
    other = {"key": {"cpu": "another CPU"}, "choice": "mkl", "seconds": {"mkl": 1.0}}
    (tmp_path / blas_libraries.CHOICE_FILE).write_text(json.dumps({"choices": [other]}))
    monkeypatch.setattr(blas_libraries, "measure", lambda libs: {"openblas": 2.0, "mkl": 1.0})
    choose(files, "auto", cache_dir=tmp_path)
    entries = json.loads((tmp_path / blas_libraries.CHOICE_FILE).read_text())["choices"]
    assert other in entries and len(entries) == 2


@pytest.mark.parametrize("seconds, choice", [
    ({"openblas": 1.0, "mkl": 0.9}, "openblas"),   # within the margin: the default stays
    ({"openblas": 1.0, "mkl": 0.5}, "mkl"),        # clearly faster
    ({"openblas": 0.9, "mkl": 1.0}, "openblas")])
def test_auto_takes_another_library_only_when_it_is_clearly_faster(seconds, choice, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(blas_libraries, "measure", lambda libs: seconds)
    assert choose(blas_libraries.installed(), "auto", cache_dir=tmp_path).name == choice


def test_the_libraries_are_measured_in_turns_by_their_fastest_calls(monkeypatch):
    """A load that comes and goes (here: every third call is slow, whichever library makes
    it) weighs on each library alike: each product's least call counts."""
    libraries = {name: blas_libraries.load(name, path)
                 for name, path in blas_libraries.installed().items()}
    clock = iter(range(10**6))
    calls = []

    def fake_sgemm(lib):
        def sgemm(C, A, B, trans_a, trans_b):
            calls.append(lib.name)
        return sgemm

    # each call takes 1 tick, or 100 when its place in the sequence is a multiple of 3
    ticks = []

    def perf_counter():
        t = next(clock)
        if t % 2:  # the end of a call: slow every third call
            ticks.append(t)
            return (t - 1) + (100 if len(ticks) % 3 == 0 else 1)
        return t

    monkeypatch.setattr(blas_libraries, "_ctypes_sgemm", fake_sgemm)
    monkeypatch.setattr(blas_libraries.time, "perf_counter", perf_counter)
    seconds = blas_libraries.measure(libraries, repeats=5)
    n = len(libraries)
    assert calls[:2 * n] == [*libraries, *libraries]  # in turns, call by call
    assert len(calls) == n * 6 * len(blas_libraries.PROBE_PRODUCTS)
    assert seconds == dict.fromkeys(libraries, float(len(blas_libraries.PROBE_PRODUCTS)))


def test_auto_with_one_library_takes_it_without_measuring(tmp_path):
    only = {"openblas": blas_libraries.installed()["openblas"]}
    assert choose(only, "auto", cache_dir=tmp_path).name == "openblas"
    assert not (tmp_path / blas_libraries.CHOICE_FILE).exists()


@pytest.mark.parametrize("name", INSTALLED)
def test_each_library_computes_the_probe_products(name):
    library = blas_libraries.load(name, blas_libraries.installed()[name])
    sgemm = blas_libraries._ctypes_sgemm(library)
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((37, 300), dtype=np.float32), rng.standard_normal((300, 21), dtype=np.float32)
    C = np.empty((21, 37), np.float32)
    sgemm(C, B, A, True, True)  # C = B^T A^T
    np.testing.assert_allclose(C, (A.astype(np.float64) @ B).T, rtol=1e-4, atol=1e-4)
    assert blas_libraries.measure({library.name: library}, repeats=1)[library.name] > 0


# -- every library through the compiled engine, each in its own process ------------------------

def run(code, library, **env):
    """Run code in a fresh interpreter whose engine uses `library`; returns its stdout."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "CIFAR_ENGINE_BLAS": library, **env})
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.parametrize("library", [name for name in INSTALLED if name != blas.library_name()])
def test_every_kernel_test_passes_on_each_other_library(library):
    # this process's library is checked by the kernel tests of this run; the others here.
    # NUMBA_CACHE_DIR is shared: the same cached code, linked to the other library by name
    out = run("import sys, pytest; sys.exit(pytest.main(["
              f"{str(KERNEL_TESTS)!r}, '-q', '-p', 'no:cacheprovider', '-x']))", library)
    assert " passed" in out and " failed" not in out


TWENTY_STEPS = """
import numba, numpy as np
from cifar_engine.runtime import blas
from cifar_engine.kernels.batch import Augment
from cifar_engine.model.network import Network, NetworkSpec
from cifar_engine.data.preprocessing import Standardise
shape = (3, 8, 8)
spec = NetworkSpec(input_size=192, n_classes=10, hidden=(96, 48), batch_norm=True,
                   dropout=0.2, lam=0.001)
net = Network(spec, seed=3, max_batch=64, momentum=0.9)
rng = np.random.default_rng(5)
pixels = rng.integers(0, 256, (640, 192), dtype=np.uint8)
net.set_preprocessing(Standardise(pixels.mean(axis=0), pixels.std(axis=0) + 1), image_shape=shape)
source = net.batch_source(pixels, rng.integers(0, 10, 640))
order = rng.permutation(640)
assert net.run_steps(source, order, 0, 32, 0, np.full(20, 0.05), np.zeros(20, np.float32),
                     Augment(True, 1, 0.1, 0.5)) == 20
np.save(OUT, np.concatenate([p.ravel() for p in net.parameters.values()]))
print(blas.library_name(), numba.get_num_threads())
"""


def twenty_steps(tmp_path, library, threads):
    out = tmp_path / f"{library}-{threads}.npy"
    printed = run(TWENTY_STEPS.replace("OUT", repr(str(out))), library,
                  NUMBA_NUM_THREADS=str(threads))
    assert printed.split() == [library, str(threads)]
    return np.load(out)


@pytest.mark.parametrize("library", INSTALLED)
def test_one_and_two_threads_give_bit_identical_parameters_on_each_library(library, tmp_path):
    np.testing.assert_array_equal(twenty_steps(tmp_path, library, 1),
                                  twenty_steps(tmp_path, library, 2))


def test_the_libraries_agree_to_float32_rounding_after_20_steps(tmp_path):
    slabs = {name: twenty_steps(tmp_path, name, 2) for name in INSTALLED}
    first, *others = slabs.values()
    scale = np.abs(first).max()
    for name, slab in slabs.items():
        assert slab.dtype == np.float32
        # products summed in another order differ by a few float32 ulps, and 20 steps carry
        # them on; a wrong product (transposed, a stride off) would differ by the weights
        np.testing.assert_allclose(slab, first, rtol=0, atol=1e-4 * scale, err_msg=name)
    assert any(not np.array_equal(first, slab) for slab in others), \
        "the libraries gave bit-identical results: is the same library running twice?"


CHOOSE_WITH_OWN_PREFERENCE = """
import sys, time
from cifar_engine.runtime import blas_libraries as b
first, second = sys.argv[1:3]
def measure(libraries):
    time.sleep(0.5)  # both processes probe at once unless the cache's lock orders them
    return {first: 1.0, second: 2.0}
b.measure = measure
print(b.choose(b.installed(), "auto", cache_dir=sys.argv[3]).name)
"""


def test_processes_that_start_together_keep_one_choice(tmp_path):
    """Two processes whose probes would disagree: the second waits for the first's choice."""
    assert len(INSTALLED) >= 2, "the test extra installs mkl beside NumPy's OpenBLAS"
    a, b = INSTALLED[:2]
    procs = [subprocess.Popen([sys.executable, "-c", CHOOSE_WITH_OWN_PREFERENCE, *order,
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for order in ((a, b), (b, a))]
    chosen = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert chosen[0] == chosen[1] and chosen[0] in (a, b)
    entries = json.loads((tmp_path / blas_libraries.CHOICE_FILE).read_text())["choices"]
    assert len(entries) == 1 and entries[0]["choice"] == chosen[0]
