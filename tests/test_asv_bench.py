"""The asv suite stays alive: every benchmark's setup and one call of it run, on tiny inputs.

Nothing here is timed; `make bench` does that.
"""
import importlib
import inspect
import itertools
import os
import pkgutil
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "asv_bench"


def _benchmarks():
    os.environ["CIFAR_ENGINE_BENCH_TINY"] = "1"
    sys.path.insert(0, str(BENCH_DIR))
    try:
        package = importlib.import_module("benchmarks")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("bench_"):
                continue
            module = importlib.import_module(f"benchmarks.{info.name}")
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__:
                    continue
                methods = [m for m in dir(cls) if m.startswith(("time_", "peakmem_", "track_"))]
                grid = itertools.product(*cls.params) if hasattr(cls, "params") else [()]
                for params in grid:
                    for method in methods:
                        yield pytest.param(cls, method, params,
                                           id=f"{info.name}.{cls.__name__}.{method}{list(params)}")
    finally:
        sys.path.remove(str(BENCH_DIR))


BENCHMARKS = list(_benchmarks())


def test_every_kernel_module_has_a_benchmark_module():
    kernels = Path(__file__).resolve().parents[1] / "engine" / "kernels"
    covered = {"blas", "blas_libraries", "dense", "losses", "batchnorm", "dropout", "sgd", "batch", "step"}
    have = {p.stem for p in kernels.glob("*.py")} - {"__init__", "rng", "serial"}
    assert have <= covered
    assert {f"bench_{k}" for k in covered} <= {p.stem for p in (BENCH_DIR / "benchmarks").glob("bench_*.py")}


@pytest.mark.parametrize("cls, method, params", BENCHMARKS)
def test_benchmark_runs_once(cls, method, params):
    bench = cls()
    if hasattr(bench, "setup"):
        bench.setup(*params)
    cached = (bench.setup_cache(),) if hasattr(bench, "setup_cache") else ()
    result = getattr(bench, method)(*cached, *params)
    if method.startswith("track_"):
        assert result > 0
