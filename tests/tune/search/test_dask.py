"""Searches on a Dask cluster of two local worker processes: the table of a local search,
workers that die mid-trial, trials that kill every worker they run on, and a scheduler that
cannot be reached."""
import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from test_runner import images, plan_of, table  # noqa: F401 (images: a fixture)

from cifar_engine.cli.main import main
from cifar_engine.training.loop import Observer
from cifar_engine.tune.search import workers
from cifar_engine.tune.search.runner import run_search
from cifar_engine.tune.search.space import trial_seed
from cifar_engine.tune.search.workers import DaskCluster

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
# a cold Numba cache: each worker process may wait its turn to compile the kernels
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes, and a scheduler that writes its scheduler file
    (`cluster.scheduler_file`) as dask-jobqueue and dask-mpi have theirs do."""
    path = tmp_path_factory.mktemp("shared") / "scheduler.json"
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       scheduler_kwargs={"scheduler_file": str(path)})
    cluster.scheduler_file = path
    try:
        yield cluster
    finally:
        cluster.close()


class ExitAtFirstEvaluation(Observer):
    """Ends the worker process (os._exit, as a kill would) at a trial's first evaluation:
    with `seed`, in every trial of that training seed; else in the first trial only (the
    file `marker` records that it happened)."""

    def __init__(self, marker=None, seed=None):
        self.marker, self.seed = marker and str(marker), seed

    def evaluation(self, trainer, row):
        if self.seed is not None:
            if trainer.config.seed == self.seed:
                os._exit(1)
        elif not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)


@pytest.fixture(scope="module")
def local_search(images, tmp_path_factory):  # noqa: F811
    """(plan, folder) of a small search run in this process, with pruning."""
    from cifar_engine.tune.search.pruning import MedianPruner

    plan = plan_of(images, stages=["5:2cycles", "3:1cycles"],
                   pruner=MedianPruner(n_startup_trials=2))
    folder = tmp_path_factory.mktemp("local") / "s"
    run_search(plan, folder, cache_dir=folder.parent / "cache")
    return plan, folder


def test_a_search_on_dask_gives_the_table_of_a_local_one(cluster, local_search, tmp_path):
    plan, local = local_search
    with DaskCluster(cluster.scheduler_address) as executor:
        run_search(plan, tmp_path / "s", executor, cache_dir=tmp_path / "cache")
    assert table(tmp_path / "s") == table(local)


def test_a_worker_that_dies_mid_trial_has_its_trial_run_again(cluster, local_search,
                                                              tmp_path):
    plan, local = local_search
    marker = tmp_path / "a-worker-died"
    with DaskCluster(cluster.scheduler_address,
                     observers=[ExitAtFirstEvaluation(marker)]) as executor:
        run_search(plan, tmp_path / "s", executor, cache_dir=tmp_path / "cache")
    assert marker.exists()
    assert table(tmp_path / "s") == table(local)


def test_a_trial_that_kills_its_workers_again_and_again_fails(cluster, local_search, tmp_path):
    plan, local = local_search
    doomed = trial_seed(plan.seed, 1, 0)  # a trial of one cycle: never pruned before it dies
    scheduler = cluster.scheduler
    allowed, scheduler.allowed_failures = scheduler.allowed_failures, 0
    try:
        with DaskCluster(cluster.scheduler_address,
                         observers=[ExitAtFirstEvaluation(seed=doomed)]) as executor:
            run_search(plan, tmp_path / "s", executor, cache_dir=tmp_path / "cache")
    finally:
        scheduler.allowed_failures = allowed
    rows, expected = table(tmp_path / "s"), table(local)
    assert (rows[5]["stage"], rows[5]["trial"]) == ("1", "0")
    assert rows[5]["status"] == "failed" and "died" in rows[5]["reason"]
    assert rows[:5] + rows[6:] == expected[:5] + expected[6:]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _search_on(capsys, images, tmp_path, address):  # noqa: F811
    """(exit code, stderr, seconds) of a search on the scheduler at `address`."""
    began = time.monotonic()
    code = main(["search", "--data", str(images), "--out", str(tmp_path / "s"),
                 "--param", "lam=0:1", "--dask", address])
    return code, capsys.readouterr().err, time.monotonic() - began


def _one_line(code, err, fragment):
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and "Traceback" not in err and fragment in lines[0], err


@pytest.fixture
def short_connect(monkeypatch):
    monkeypatch.setattr(workers, "CONNECT_TIMEOUT", 1.0)


def test_an_unreachable_scheduler_ends_in_one_line_before_any_trial(capsys, images,  # noqa: F811
                                                                     tmp_path, short_connect):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    code, err, _ = _search_on(capsys, images, tmp_path, address)
    _one_line(code, err, f"--dask {address}: cannot reach the scheduler")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("address", ["not an address", "tcp://127.0.0.1", "foo://host:1"])
def test_a_malformed_address_ends_in_one_line_at_once(images, tmp_path, address):  # noqa: F811
    # in a process of its own: a Client made and dropped stalls at exit, then complains
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cifar_engine.cli.main", "search", "--data",
                           str(images), "--out", str(tmp_path / "s"), "--param", "lam=0:1",
                           "--dask", address], capture_output=True, text=True, timeout=50)
    _one_line(done.returncode, done.stderr, f"--dask {address}: cannot reach the scheduler")
    assert time.monotonic() - began < 40 and not (tmp_path / "s").exists()


@contextlib.contextmanager
def _silent_server():
    """The address of a TCP server on 127.0.0.1 that accepts and says nothing."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"


@contextlib.contextmanager
def _http_server():
    """The address of an HTTP server on 127.0.0.1, in a thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("serve", [_silent_server, _http_server])
def test_a_server_that_is_not_a_scheduler_ends_in_one_line_in_bounded_time(  # noqa: F811
        capsys, images, tmp_path, short_connect, serve):
    with serve() as address:
        code, err, seconds = _search_on(capsys, images, tmp_path, address)
    _one_line(code, err, f"--dask {address}: no Dask scheduler answered within 1 s")
    assert seconds < 10 and not (tmp_path / "s").exists()


def test_a_dask_worker_is_not_taken_for_its_scheduler(cluster, capsys, images,  # noqa: F811
                                                      tmp_path):
    address = next(iter(cluster.scheduler_info["workers"]))
    code, err, _ = _search_on(capsys, images, tmp_path, address)
    _one_line(code, err, f"--dask {address}: not a Dask scheduler (a Worker)")


def test_a_scheduler_file_is_read_for_the_address_of_its_scheduler(cluster, local_search,
                                                                   capsys, images, tmp_path):
    plan, local = local_search
    assert cluster.scheduler_file.exists()
    with DaskCluster(str(cluster.scheduler_file)) as executor:
        assert executor.client.scheduler.address == cluster.scheduler_address
        run_search(plan, tmp_path / "s", executor, cache_dir=tmp_path / "cache")
    assert table(tmp_path / "s") == table(local)

    code = main(["search", "--data", str(images), "--out", str(tmp_path / "cli"), "--param",
                 "lam=1e-5:1e-1:log", "--stage", "2:1cycles", "--batch-size", "10", "--n-s",
                 "2ep", "--dask", str(cluster.scheduler_file)])
    assert code == 0, capsys.readouterr().err
    assert len(table(tmp_path / "cli")) == 2


@pytest.mark.parametrize("text, why", [
    (None, "no scheduler file there (is the scheduler started?)"),
    ("{not json", "not a scheduler file (not JSON)"),
    ('{"id": "Scheduler-1"}', 'not a scheduler file (no "address" in it)'),
])
def test_a_missing_or_bad_scheduler_file_is_one_line_after_waiting_for_it(  # noqa: F811
        capsys, images, tmp_path, short_connect, text, why):
    path = tmp_path / "scheduler.json"
    if text is not None:
        path.write_text(text)
    code, err, seconds = _search_on(capsys, images, tmp_path, str(path))
    _one_line(code, err, f"--dask {path}: {why}")
    assert 1 <= seconds < 10 and not (tmp_path / "s").exists()
