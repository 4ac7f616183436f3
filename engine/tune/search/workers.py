"""Where a search's trials run: the trial itself (`run_trial`, on any worker), and the
executors that hand trials to workers: this process, W local processes, or a Dask cluster.

A trial travels as a small TrialTask (its settings, not its data): each worker process
loads the data set once, from its path and cache, and keeps it for the trials that follow.
An executor gives back a TrialOutcome per task; the driver (`runner.run_search`) journals
`start` when it dispatches a trial and `finish` when its outcome comes back, while the
trial itself journals its pruning points.
"""
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path


from ...data import load_dataset, make_split
from ...errors import DataError, SettingError, UserError, first_line
from ...runtime.threads import cores, share, use_threads
from ...training.config import TrainConfig
from ...training.loop import Diverged, Interrupted, Observer, Stop
from ...training.run import check_fits, network_bytes, prepare, run
from .journal import Journal
from .pruning import reference_points

SETTLE_POLL = 0.2  # seconds between reads of the journal while waiting for earlier trials
# Seconds a trial waits at a pruning point for the earlier trials of its stage, then goes on
# unpruned: so that a predecessor whose worker died and is not run again (a lost machine)
# cannot stall the stage. The one case in which timing can change a search's table.
SETTLE_TIMEOUT = 600.0
CONNECT_TIMEOUT = 20.0  # seconds to reach a Dask scheduler and hear it answer
SCHEDULER_FILE_POLL = 0.1  # seconds between looks at a scheduler file not yet written


@dataclass(frozen=True)
class TrialTask:
    """One trial, as a worker receives it.

    folder: the search folder (str), whose journal gets the pruning points; settings: the
    trial's drawn settings {name: value}; config: every TrainConfig setting of the trial
    (a dict, budget and seed included); unit: "cycles" or "epochs", what one checkpoint
    (an evaluation, a pruning point) spans; pruner: a MedianPruner or None; cache_dir: the
    data cache (str or None: the worker's default); settle_timeout: seconds a checkpoint
    waits for the earlier trials of its stage; time_limit: seconds of training (the
    kernels' loading excluded) after which the trial is stopped, or None; logs: the
    `training.loggers.Logs` its worker makes its loggers from (tensorboard/stageS-trialT
    under the search folder, an MLflow run of that name), or None.
    """

    folder: str
    stage: int
    trial: int
    settings: dict
    config: dict
    unit: str
    pruner: object = None
    cache_dir: str = None
    settle_timeout: float = SETTLE_TIMEOUT
    time_limit: float = None
    logs: object = None

    @property
    def seed(self):
        return self.config["seed"]


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended: status ok | diverged | failed | pruned | timeout, its accuracies
    (None when not measured), seconds of the trial (data loading excluded), the reason it
    did not end ok, and its validation accuracy at each checkpoint. Keyword arguments of
    `Journal.finish`."""

    status: str
    train_acc: float = None
    val_acc: float = None
    test_acc: float = None
    seconds: float = None
    reason: str = ""
    points: tuple = ()


def braced(text):
    """text as a SettingError message takes it literally (its braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


class _Pruned(Exception):
    """The pruner stopped the trial at a checkpoint."""


class TimeLimit(Observer):
    """Requests the trial's `stop` ("timeout") `seconds` after its kernels are loaded, so
    that the limit counts training alone (a cold Numba cache compiles for 15-30 s)."""

    def __init__(self, seconds, stop):
        self.seconds = seconds
        self.timer = threading.Timer(seconds, stop.request, ("timeout",))
        self.timer.daemon = True

    def compiled(self, trainer):
        self.timer.start()

    def cancel(self):
        self.timer.cancel()


# -- the trial --------------------------------------------------------------------------------

_DATA = {}
_DATA_LOCK = threading.Lock()  # a Dask worker runs trials in several threads


def loaded_data(base, cache_dir=None):
    """(Dataset, Split) of the settings `base` (a dict with data, labels, split, n_val),
    loaded once per process: the last one asked for is kept."""
    key = (base["data"], base["labels"], base["split"], base["n_val"], str(cache_dir))
    with _DATA_LOCK:
        if key not in _DATA:
            _DATA.clear()
            dataset = load_dataset(base["data"] or None, labels=base["labels"],
                                   cache_dir=cache_dir)
            _DATA[key] = dataset, make_split(dataset, base["split"], base["n_val"])
        return _DATA[key]


def checkpoint_steps(config, n_train, unit):
    """Steps between two checkpoints of a trial: a cycle (2 n_s) or an epoch."""
    steps_per_epoch = max(1, n_train // config.batch_size)
    return 2 * config.half_cycle(steps_per_epoch) if unit == "cycles" else steps_per_epoch


class Checkpoints(Observer):
    """Keeps the validation accuracy of each evaluation (one per checkpoint) in `points`;
    with a pruner, journals each one and stops the trial when the pruner says so.

    The last evaluation ends the budget: it is kept, never pruned on.
    """

    def __init__(self, task):
        self.task, self.points = task, []
        self.journal = Journal(task.folder)

    def evaluation(self, trainer, row):
        self.points.append(row.val_acc)
        task = self.task
        if task.pruner is None or row.step >= trainer.plan.total_steps:
            return
        index = len(self.points) - 1
        self.journal.point(task.stage, task.trial, index, row.val_acc)
        previous = self._settled(index)
        if previous is not None and task.pruner.should_prune(task.stage, index, row.val_acc,
                                                             previous):
            raise _Pruned()

    def _settled(self, index):
        """The earlier trials' points once each has passed `index` or finished; None when
        they have not after settle_timeout (one died and was not run again)."""
        task = self.task
        deadline = time.monotonic() + task.settle_timeout
        while True:
            previous, settled = reference_points(self.journal.read(), task.stage, task.trial,
                                                 index)
            if settled:
                return previous
            if time.monotonic() >= deadline:
                return None
            time.sleep(SETTLE_POLL)


def run_trial(task, threads=0, observers=()):
    """Train the trial of `task` and return its TrialOutcome; never raises for what its
    settings or training did (UserError: failed, Diverged: diverged, pruned, over its
    time limit: timeout).

    threads: at most this many Numba threads (0: as the trainer picks); observers: more
    Observers of the training (they must pickle, for other processes).
    """
    began = time.perf_counter()
    watch, stop = Checkpoints(task), Stop()
    limits = [TimeLimit(task.time_limit, stop)] if task.time_limit else []
    try:
        config = TrainConfig.from_dict(task.config)
        dataset, split = loaded_data(task.config, task.cache_dir)
        began = time.perf_counter()
        every = checkpoint_steps(config, len(split.train), task.unit)
        if threads:
            config = replace(config, threads=min(config.threads or threads, threads))
        prepared = prepare(replace(config, eval_every=every), dataset, split)
        logged = task.logs.observers(f"stage{task.stage}-trial{task.trial}") \
            if task.logs else []
        result, _ = run(prepared, observers=[watch, *limits, *logged, *observers], stop=stop)
    except Diverged as err:
        return _ended("diverged", began, watch, reason=str(err))
    except _Pruned:
        return _ended("pruned", began, watch, val_acc=watch.points[-1])
    except Interrupted:  # only its TimeLimit stops a trial so
        return _ended("timeout", began, watch, val_acc=(watch.points or [None])[-1],
                      reason=f"stopped at its time limit of {task.time_limit:g} s")
    except UserError as err:
        return _ended("failed", began, watch, reason=str(err))
    finally:
        for limit in limits:
            limit.cancel()
    return _ended("ok", began, watch, train_acc=result.train_acc, val_acc=result.val_acc,
                  test_acc=result.test_acc)


def _ended(status, began, watch, **fields):
    return TrialOutcome(status, seconds=round(time.perf_counter() - began, 3),
                        points=tuple(watch.points), **fields)


def memory_problem(settings, candidates, cache_dir=None):
    """(name, value, setting, template) of the first searched value whose network cannot fit
    in this machine's memory, even with each other searched setting at its leanest value;
    None when each fits. settings: every TrainConfig setting but the searched ones (data
    included); candidates: [(name, values)], the values a trial may draw (the ends of a
    range). Plain data, so that it crosses to the driver. A value wrong otherwise is left
    to its trials."""
    dataset, _ = loaded_data(settings, cache_dir)

    def config(values):
        try:
            return TrainConfig.from_dict({**settings, **values})
        except UserError:
            return None

    leanest = {}
    for name, values in candidates:
        sized = [(network_bytes(c, dataset), k) for k, c in
                 enumerate(config({name: v}) for v in values) if c is not None]
        if sized:
            leanest[name] = values[min(sized)[1]]
    for name, values in candidates:
        for value in values:
            trial = config({**leanest, name: value})
            try:
                trial is not None and check_fits(trial, dataset)
            except SettingError as err:
                return name, value, err.setting, err.template
    return None


def data_problem(base, cache_dir=None):
    """What is wrong with the data of `base` (one line), or None when it loads and splits.
    A string rather than the error, so that it crosses to the driver whatever its class."""
    try:
        loaded_data(base, cache_dir)
    except UserError as err:
        return str(err)
    return None


# -- executors --------------------------------------------------------------------------------

class Executor:
    """Hands trials to workers. `slots()` trials run at once; `submit(task)` gives a
    concurrent.futures-like future of its TrialOutcome; `wait(futures)` the ones done (at
    least one); `outcome(future)` its TrialOutcome. A context manager: leaving it stops
    the workers. observers: Observers added to every trial (they must pickle, for other
    processes)."""

    def __init__(self, observers=()):
        self.observers = tuple(observers)

    def check_data(self, base, cache_dir=None):
        """Raise a UserError unless the data of `base` loads where the trials run (here:
        loading it also decodes it into the cache once, before any worker reads it)."""
        loaded_data(base, cache_dir)

    def memory_problem(self, settings, candidates, cache_dir=None):
        """`memory_problem` where the trials run (here: this machine)."""
        return memory_problem(settings, candidates, cache_dir)

    def slots(self):
        return 1

    def submit(self, task):
        raise NotImplementedError

    def wait(self, futures):
        return concurrent.futures.wait(futures, return_when="FIRST_COMPLETED").done

    def outcome(self, future):
        return future.result()

    def close(self, finished=True):
        """Stop the workers; finished=False (on an error or Ctrl-C) does not wait for them."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.close(finished=kind is None)


class InProcess(Executor):
    """Runs the trials one after another in this process, with all its cores."""

    def submit(self, task):
        future = concurrent.futures.Future()
        future.set_result(run_trial(task, 0, self.observers))
        return future


class WorkerDied(UserError):
    """A local worker process died (killed, out of memory): the search stops, to resume."""


class LocalProcesses(Executor):
    """`workers` trials at once, in as many processes started by "spawn" (never forked
    from a process whose Numba threads run), each with its share of the cores for Numba
    and BLAS, each loading the data once. A script that uses it runs its search under
    `if __name__ == "__main__":`, as spawned processes import the main module."""

    def __init__(self, workers, observers=()):
        super().__init__(observers)
        if workers < 1:
            raise SettingError("workers", f"must be >= 1, got {workers}")
        self.workers, self.threads = workers, share(workers)
        self._pool = None

    def slots(self):
        return self.workers

    def submit(self, task):
        if self._pool is None:
            _workers_run_this_blas()
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=use_threads, initargs=(self.threads, self.threads))
        return self._pool.submit(run_trial, task, self.threads, self.observers)

    def outcome(self, future):
        try:
            return future.result()
        except concurrent.futures.process.BrokenProcessPool:
            raise WorkerDied("a worker process died (killed, or out of memory?): the "
                             "search stopped; resume it to go on") from None

    def close(self, finished=True):
        if self._pool is not None:
            self._pool.shutdown(wait=finished, cancel_futures=True)
            self._pool = None


def _workers_run_this_blas():
    """Spawned workers choose their BLAS as they start: name this process's, so that no
    worker measures (or reads another cache entry) and every trial runs on one library."""
    from ...runtime.blas import library_name
    from ...runtime.blas_libraries import ENV, FINDERS

    if library_name() in FINDERS:
        os.environ[ENV] = library_name()


def dask_trial(task, host_slots, observers=()):
    """run_trial on a Dask worker, its threads capped at its share of the machine's cores:
    the cores over every trial slot of the workers on this host (host_slots: {host: slots},
    as the scheduler knew them; a host it did not know counts this worker's slots)."""
    from distributed import get_worker
    from distributed.comm import get_address_host

    worker = get_worker()
    slots = host_slots.get(get_address_host(worker.address), worker.state.nthreads)
    threads = max(1, cores() // max(1, slots))
    use_threads(threads, threads)
    return run_trial(task, threads, observers)


class DaskCluster(Executor):
    """Trials as futures of the Dask cluster whose scheduler is at `address`
    ("tcp://HOST:PORT", or a scheduler file: see `scheduler_address`): one trial per worker
    thread, earlier trials first.

    A worker that dies has its trial run again elsewhere (the scheduler does this by
    itself); a trial whose workers die again and again (KilledWorker, after
    `distributed.scheduler.allowed-failures`) is failed. timeout: seconds to reach the
    scheduler and hear it answer (default CONNECT_TIMEOUT); an address that is not one, or
    where no Dask scheduler answers in time, is a SettingError("dask").
    """

    def __init__(self, address, timeout=None, observers=()):
        super().__init__(observers)
        try:
            from distributed import Client
        except ImportError:
            raise SettingError("dask", "needs dask.distributed: pip install "
                                       "'cifar-engine[distributed]'") from None
        timeout = CONNECT_TIMEOUT if timeout is None else timeout
        address = scheduler_address(address, timeout)
        # Asked first, on a connection of its own: a Client makes its threads before it
        # checks the address, and waits for ever for a server that accepts and says nothing.
        kind = _server_kind(address, timeout)
        if kind != "Scheduler":
            raise SettingError("dask", braced(f"{address}: not a Dask scheduler (a {kind})"))
        try:
            self.client = Client(address, set_as_default=False, timeout=timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            raise SettingError("dask", braced(f"{address}: cannot reach the scheduler "
                                              f"({first_line(err)})")) from None

    def check_data(self, base, cache_dir=None):
        self.slots()
        problem = self.client.submit(data_problem, base, cache_dir, pure=False).result()
        if problem:
            raise DataError(f"on a dask worker: {problem}")

    def memory_problem(self, settings, candidates, cache_dir=None):
        return self.client.submit(memory_problem, settings, candidates, cache_dir,
                                  pure=False).result()

    def slots(self):
        """Trial slots of the workers now (waits for a first worker)."""
        while True:
            total = sum(self.client.nthreads().values())
            if total:
                return total
            self.client.wait_for_workers(1)

    def _host_slots(self):
        slots = {}
        for info in self.client.scheduler_info()["workers"].values():
            slots[info["host"]] = slots.get(info["host"], 0) + info["nthreads"]
        return slots

    def submit(self, task):
        return self.client.submit(dask_trial, task, self._host_slots(), self.observers,
                                  pure=False, priority=-task.trial)

    def wait(self, futures):
        from distributed import wait

        with self.client.as_current():  # not made the process's default client
            return wait(list(futures), return_when="FIRST_COMPLETED").done

    def outcome(self, future):
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as err:
            return TrialOutcome("failed", reason=f"each worker that ran it died "
                                                 f"({type(err).__name__})")

    def close(self, finished=True):
        self.client.close()


def scheduler_address(value, timeout=CONNECT_TIMEOUT):
    """The scheduler's address that `value` gives: `value` itself when it is an address
    ("tcp://HOST:PORT", "HOST:PORT"), else the "address" of the scheduler file it names,
    the JSON file that `dask scheduler --scheduler-file`, dask-jobqueue and dask-mpi write
    (and `distributed.Client(scheduler_file=...)` reads). A file is a value without a
    scheme that exists, ends in .json or holds a path separator. It is waited for up to
    `timeout` seconds, as its scheduler may still be starting; then SettingError("dask")."""
    path = Path(value)
    if "://" in value or not (path.exists() or path.suffix == ".json"
                              or os.sep in value or "/" in value):
        return value
    deadline = time.monotonic() + timeout
    while True:
        address, problem = _read_scheduler_file(path)
        if problem is None:
            return address
        if time.monotonic() >= deadline:
            raise SettingError("dask", braced(f"{value}: {problem}"))
        time.sleep(SCHEDULER_FILE_POLL)


def _read_scheduler_file(path):
    """(address, None) from the scheduler file `path`, or (None, what is wrong with it)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, "no scheduler file there (is the scheduler started?)"
    except OSError as err:
        return None, f"cannot read the scheduler file ({err.strerror or err})"
    except (ValueError, RecursionError):  # also a file its scheduler is still writing
        return None, "not a scheduler file (not JSON)"
    address = data.get("address") if isinstance(data, dict) else None
    if not isinstance(address, str) or not address:
        return None, 'not a scheduler file (no "address" in it)'
    return address, None


def _server_kind(address, timeout):
    """The type of the Dask server at `address` ("Scheduler", "Worker", ...) as it says
    within `timeout` seconds; SettingError("dask") when it cannot be asked or does not answer."""
    from distributed.comm import connect

    async def ask():
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def within_timeout():
        # a second more than connect's own, which gives up first on a port that refuses
        return await asyncio.wait_for(ask(), timeout + 1)

    # in a thread of its own, which has no event loop yet whoever calls
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            identity = pool.submit(asyncio.run, within_timeout()).result()
        except asyncio.TimeoutError:
            raise SettingError("dask", braced(f"{address}: no Dask scheduler answered within "
                                              f"{timeout:g} s")) from None
        except Exception as err:  # noqa: BLE001 (what a server that is not Dask's makes)
            raise SettingError("dask", braced(f"{address}: cannot reach the scheduler "
                                              f"({first_line(err)})")) from None
    kind = identity.get("type") if isinstance(identity, dict) else None
    return kind if isinstance(kind, str) else "server that does not say what it is"


def dispatch(executor, tasks, started, finished, deadline=None):
    """Run `tasks` on `executor`, dispatched in their order as slots free up (so a trial
    waiting on earlier ones at a pruning point never holds a slot they need); returns the
    tasks not started.

    started(task) is called just before a task is submitted, finished(task, outcome) as
    each outcome comes back (those done together in task order). deadline: a
    time.monotonic() after which no task starts (those running finish), or None.
    """
    waiting, running = list(tasks), {}
    while running or waiting and not past_deadline(deadline):
        while waiting and len(running) < executor.slots() and not past_deadline(deadline):
            task = waiting.pop(0)
            started(task)
            running[executor.submit(task)] = task
        done = executor.wait(running) if running else ()
        for future in sorted(done, key=lambda f: running[f].trial):
            finished(running.pop(future), executor.outcome(future))
    return waiting


def past_deadline(deadline):
    return deadline is not None and time.monotonic() >= deadline
