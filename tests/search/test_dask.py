"""Searches on a Dask cluster of two local worker processes: the table of a local search,
workers that die mid-trial, trials that kill every worker they run on, and a scheduler that
cannot be reached."""
import os
import socket

import pytest

from cifar_engine.cli.main import main
from cifar_engine.search.runner import run_search
from cifar_engine.search.space import trial_seed
from cifar_engine.search.workers import DaskCluster
from cifar_engine.trainer import Observer
from test_runner import images, plan_of, table  # noqa: F401 (images: a fixture)

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
# a cold Numba cache: each worker process may wait its turn to compile the kernels
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
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
    from cifar_engine.search.pruning import MedianPruner

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


def test_an_unreachable_scheduler_ends_in_one_line_before_any_trial(capsys, images,  # noqa: F811
                                                                     tmp_path):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["search", "--data", str(images), "--out", str(tmp_path / "s"),
                     "--param", "lam=0:1", "--dask", address])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and f"--dask {address}: cannot reach the scheduler" in lines[0]
    assert not (tmp_path / "s").exists()
