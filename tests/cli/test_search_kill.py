"""A `--workers 2` search killed with SIGKILL and resumed ends with the uninterrupted table.

Run under OPENBLAS_CORETYPE=Haswell on OpenBLAS: on a newer CPU those kernels round a
product's entries by where the library's thread split puts them, which is what once made
a trial give other bits in another process. The engine's own split (kernels/blas.py) makes
the bits a function of the shapes alone, so the promise is bit identity, not a tolerance.
"""
import csv
import os
import signal
import subprocess
import sys
import time

CLI = [sys.executable, "-m", "cifar_engine.cli.main"]
SEARCH = ["search", "--param", "lam=1e-5:1e-1:log", "--stage", "4:2cycles", "--stage",
          "2:2cycles", "--hidden", "64", "--batch-size", "20", "--momentum", "0.9",
          "--schedule", "triangular", "--n-s", "30", "--seed", "0", "--workers", "2"]
TIMEOUT = 600  # seconds; a cold Numba cache compiles every kernel first, in each worker


def _env():
    return {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "CIFAR_ENGINE_BLAS": "openblas"}


def _table(folder):
    """search.csv's rows without the columns of wall time."""
    with open(folder / "search.csv", newline="") as file:
        return [{k: v for k, v in row.items() if "second" not in k and "time" not in k}
                for row in csv.DictReader(file)]


def _finished_trials(folder):
    try:
        return (folder / "search.jsonl").read_text().count('"finish"')
    except FileNotFoundError:
        return 0


def test_a_killed_search_resumes_to_the_uninterrupted_table(images, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    data = ["--data", str(images)]
    done = subprocess.run([*CLI, *SEARCH, *data, "--out", str(whole)], env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]

    proc = subprocess.Popen([*CLI, *SEARCH, *data, "--out", str(killed)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None and _finished_trials(killed) < 2:
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.01)
    assert proc.poll() is None, "the search ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
    proc.wait()

    resumed = subprocess.run([*CLI, *SEARCH, *data, "--resume", str(killed)],
                             env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _table(killed) == _table(whole)
