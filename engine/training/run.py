"""A whole training run: `fit` trains from a config and loaded data and returns a RunResult;
`train` does the same with a run folder watching (metrics, checkpoints, model, figures).

A run folder, a progress display and a search's pruner are Observers of a run, never part
of it: a search trial, an LR range test and `cifar-engine train` are the same engine.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from ..data import Dataset, Split, dataset_sha256, load_dataset, make_split, resolve_source
from ..data.preprocessing import check_components, fit_preprocessing
from ..errors import SettingError, UserError, literal, require
from ..model.layout import buffer_bytes, check_memory
from ..model.network import EVAL_CHUNK
from ..model.npz import load_network, save_network
from ..plots import curves_figure, network_templates_figure, schedule_figure
from ..runtime.threads import use_threads
from ..util.optional import data_frame
from ..util.progress import tqdm_class
from .config import RECORDED, TrainConfig, resume_config
from .folder import RUN_FILES, RunFolder, environment
from .loop import (METRIC_COLUMNS, Observer, Trainer, build_network, check_translate,
                   make_plan, tell)


@dataclass
class Prepared:
    """A run's data and plan, checked before any training (what --dry-run shows), and the
    preprocessing fitted on the split's train part (config.zca chooses it)."""

    config: object
    dataset: object
    split: object
    plan: object
    preprocessing: object


def prepare(config, dataset=None, split=None, cache_dir=None):
    """Load (unless given) and split the data, plan the run and fit its preprocessing;
    every mistake in the settings or the data is a UserError here, before anything is
    allocated or trained. The preprocessing is fitted last, once everything checked out
    (a ZCA fit's statistics are cached beside the data set's decoded arrays)."""
    check_arguments(config, dataset, split)
    config = replace(config, blas=run_blas(config.blas))
    if dataset is None:
        config = replace(config, data=str(resolve_source(config.data or None)))
        dataset = load_dataset(config.data, labels=config.labels, cache_dir=cache_dir)
    config = replace(config, data_sha256=run_data(config, dataset))
    if split is None:
        split = make_split(dataset, config.split, config.n_val)
    plan = make_plan(config, len(split.train))
    check_translate(config.translate, dataset.image_shape)
    check_components(config.pca, dataset.train_images.shape[1])
    check_fits(config, dataset)
    preprocessing = fit_preprocessing(config.zca, split.train.images, split.train.index,
                                      dataset.cache_entry, config.pca)
    return Prepared(config, dataset, split, plan, preprocessing)


def run_blas(blas):
    """The library a run's products run on: this process's, which must be `blas` when a
    config names one (the bits of a run depend on its library)."""
    from ..runtime.blas import library_name

    here = library_name()
    require(blas in ("", here), "blas",
            f"is {blas}: the run's products ran on {blas}, and this process runs {here}; "
            f"start it with CIFAR_ENGINE_BLAS={blas}")
    return here


def run_data(config, dataset):
    """The sha256 of the run's data set, which must be config.data_sha256 when a config
    records one (a run repeated or resumed from its config.toml reads the same images)."""
    digest = dataset_sha256(dataset)
    where = config.data or dataset.source
    require(config.data_sha256 in ("", digest), "data_sha256",
            f"is {config.data_sha256[:16]}...: {where} now holds a different data set "
            f"(sha256 {digest[:16]}...)")
    return digest


def check_fits(config, dataset):
    """SettingError naming hidden (or batch_size) when the network of `config` for
    `dataset` could not fit in this machine's memory, before anything is allocated."""
    check_memory(*_network_of(config, dataset))


def network_bytes(config, dataset):
    """Bytes of the buffers of the network `config` trains on `dataset`."""
    return buffer_bytes(*_network_of(config, dataset))


def _network_of(config, dataset):
    """(NetworkSpec, max_batch) of the network `config` trains on `dataset`."""
    return (config.network_spec(config.pca or dataset.train_images.shape[1],
                                len(dataset.class_names)),
            max(config.batch_size, EVAL_CHUNK))


_ARGUMENTS = {"config": (TrainConfig, "a TrainConfig (TrainConfig(**settings) or "
                                      "resolve_config)"),
              "dataset": (Dataset, "a Dataset (load_dataset) or None"),
              "split": (Split, "a Split of the dataset (make_split) or None")}


def check_arguments(config, dataset=None, split=None):
    """UserError naming the first of a run's arguments that is not of its type."""
    for name, value in (("config", config), ("dataset", dataset), ("split", split)):
        kind, what = _ARGUMENTS[name]
        if not isinstance(value, kind) and (name == "config" or value is not None):
            raise UserError(f"{name} must be {what}, got {type(value).__name__}")


@dataclass
class RunResult:
    """What a run gives back: its network, history and accuracies.

    history: a MetricRow per evaluation (`columns()` gives them by name); losses: float32
    batch loss of each step trained in this process; seconds: training only;
    compile_seconds: loading or compiling the kernels, before the first step.
    """

    config: object
    net: object = field(repr=False)
    history: list = field(repr=False)
    losses: np.ndarray = field(repr=False)
    steps: int
    epochs: float
    train_acc: float
    val_acc: float
    test_acc: float
    seconds: float
    compile_seconds: float
    without_tta: dict = None  # {'val_acc', 'test_acc'} without test-time augmentation

    def columns(self):
        """The history by column name: {name: float64[n_evaluations]}."""
        table = np.array(self.history, dtype=np.float64).reshape(-1, len(METRIC_COLUMNS))
        return {name: table[:, k] for k, name in enumerate(METRIC_COLUMNS)}

    def to_frame(self):
        """The history as a pandas DataFrame: a row per evaluation, METRIC_COLUMNS (step
        int64, the others float64)."""
        table = np.array(self.history, dtype=np.float64).reshape(-1, len(METRIC_COLUMNS))
        return data_frame(table, METRIC_COLUMNS).astype({"step": "int64"})

    def plot(self, path=None):
        """The curves of the history (`plots.curves_figure`): a Figure, saved to `path`
        first unless it is None."""
        from ..plots import curves_figure

        return curves_figure(self.columns(), path)

    def summary(self):
        """The JSON-ready summary of the run (summary.json without its environment)."""
        return {"train_acc": self.train_acc, "val_acc": self.val_acc, "test_acc": self.test_acc,
                "steps": self.steps, "epochs": self.epochs, "seconds": round(self.seconds, 3),
                "compile_seconds": round(self.compile_seconds, 3), "seed": self.config.seed,
                **({} if self.without_tta is None else
                   {"tta": self.config.tta, "without_tta": self.without_tta})}


def start(prepared, net=None, step=0, history=(), stop=None):
    """A Trainer for the prepared run (a fresh network unless `net` is given), with the
    process's threads set for it."""
    config, dataset = prepared.config, prepared.dataset
    if net is None:
        net = build_network(config, prepared.preprocessing, dataset.image_shape,
                            dataset.class_names)
    use_threads(config.threads or net.step_threads(config.batch_size))
    return Trainer(config, prepared.split, net, prepared.plan, step, history, stop)


def result_of(trainer):
    """The RunResult of a trainer at its current step."""
    return RunResult(trainer.config, trainer.net, list(trainer.history), trainer.losses,
                     trainer.step, trainer.step / trainer.plan.steps_per_epoch,
                     seconds=trainer.seconds, compile_seconds=trainer.compile_seconds,
                     **trainer.final_accuracies())


def run(prepared, folder=None, observers=(), stop=None, checkpoint=None, notes=()):
    """Train a prepared run to its end: the one way every run is built, whoever starts it
    (`cifar-engine train`, `fit`, `train`, `resume`, a search trial and its retraining).

    folder: a claimed RunFolder that keeps the run's files (metrics.csv and best.npz at each
    evaluation, checkpoints; model.npz, summary.json and the figures at the end), or None;
    observers: more Observers; stop: a Stop that ends the run at its next segment, with a
    checkpoint (Interrupted); checkpoint: (net, step, history) to continue from; notes: lines
    for summary.json. Returns (RunResult, summary.json's dict, or None without a folder).
    Diverged and Interrupted propagate, after the folder's last checkpoint. Every Observer
    hears `finished` at the end, whichever way the run ends.
    """
    net, step, history = checkpoint or (None, 0, ())
    trainer = start(prepared, net, step, history, stop)
    watchers = [*([FolderObserver(folder)] if folder is not None else []), *observers]
    result = None
    try:
        tell(watchers, "started", trainer, folder, tuple(notes))
        trainer.compile(watchers)
        tell(watchers, "compiled", trainer)
        trainer.run(watchers)
        ended = result_of(trainer)
        summary = finish(ended, folder, prepared, notes) if folder is not None else None
        result = ended
    finally:
        tell(watchers, "finished", trainer, result)
    return result, summary


def fit(config, dataset=None, split=None, observers=(), cache_dir=None, stop=None,
        progress=False):
    """Train as `config` (a TrainConfig) says and return its RunResult; no file is written.

    dataset: a loaded Dataset (default: load config.data); split: its Split (default: the
    config's). observers: Observers of the run; stop: a Stop; progress: show a ProgressBar.
    """
    with _progress(observers, progress) as observers:
        return run(prepare(config, dataset, split, cache_dir), observers=observers,
                   stop=stop)[0]


class ProgressBar(Observer):
    """A tqdm.auto bar of a run's steps (a widget in a notebook, text elsewhere): it advances
    by each segment's steps, its rate and time left counting training only, and shows eta
    and the validation accuracy of each evaluation. `close()` it after the run."""

    def __init__(self):
        self.tqdm = tqdm_class()  # a missing tqdm is said before anything trains
        self.bar = None

    def compiled(self, trainer):
        self.bar = self.tqdm(total=trainer.plan.total_steps, initial=trainer.step,
                             desc="training", unit="step", dynamic_ncols=True)

    def segment(self, trainer, n_steps):
        self.bar.update(n_steps)

    def evaluation(self, trainer, row):
        self.bar.set_postfix(eta=f"{row.eta:.2e}", val_acc=f"{row.val_acc:.4f}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _progress(observers, progress):
    """The observers, with a ProgressBar (closed after the block) when `progress`."""
    bar = ProgressBar() if progress else None
    try:
        yield [*observers, *([bar] if bar else [])]
    finally:
        if bar is not None:
            bar.close()


class FolderObserver(Observer):
    """Keeps a run folder up to date: metrics.csv at each evaluation, best.npz whenever the
    validation accuracy beats every earlier evaluation's (test accuracy never chooses),
    checkpoints."""

    def __init__(self, folder):
        self.folder = folder

    def evaluation(self, trainer, row):
        self.folder.write_metrics(trainer.history)
        if row.val_acc > max((r.val_acc for r in trainer.history[:-1]), default=-1.0):
            save_network(self.folder.best, trainer.net)

    def checkpoint(self, trainer):
        self.folder.save_checkpoint(trainer.net, trainer.step, trainer.history)


def finish(result, folder, prepared, notes=()):
    """Write model.npz, summary.json and the figures of a finished run; returns the summary."""
    net = result.net
    summary = {**result.summary(), "best": _best_summary(folder, result, prepared),
               "data": prepared.dataset.source,
               "preprocessing": net.preprocessing.describe(), "notes": list(notes),
               "environment": environment()}
    save_network(folder.model, net)
    folder.write_summary(summary)
    curves_figure(folder.read_metrics(), folder.curves)
    network_templates_figure(net, folder.templates)
    return summary


def draw_figures(path):
    """Draw the figures of the run folder `path` as far as its run got, while it trains too:
    curves.png from metrics.csv when it has rows, templates.png from its latest model
    (model.npz, else best.npz, else checkpoint.npz). Returns [(figure Path, what it shows)].

    Everything is read before anything is drawn; a folder with nothing to draw, or a file
    that cannot be read, is a UserError naming it.
    """
    folder = RunFolder(path)
    if not folder.path.is_dir():
        raise UserError(f"{path}: no such folder")
    model = next((p for p in (folder.model, folder.best, folder.checkpoint) if p.exists()), None)
    metrics = folder.read_metrics() if folder.metrics.exists() else None
    if model is None and (metrics is None or not len(metrics["step"])):
        raise UserError(f"{path}: nothing to draw yet (no evaluation in metrics.csv, no "
                        f"model.npz, best.npz or checkpoint.npz)")
    net = load_network(model, max_batch=1)[0] if model is not None else None
    drawn = []
    if metrics is not None and len(metrics["step"]):
        curves_figure(metrics, folder.curves)
        drawn.append((folder.curves, f"curves of {len(metrics['step'])} evaluations, to step "
                                     f"{int(metrics['step'][-1])} (metrics.csv)"))
    if net is not None:
        network_templates_figure(net, folder.templates)
        drawn.append((folder.templates, f"first-layer templates of {model.name}"))
    return drawn


def _best_summary(folder, result, prepared):
    """The evaluation of best.npz (the best validation accuracy): its step and accuracies."""
    if not folder.best.exists() or not result.history:
        return None
    row = max(result.history, key=lambda r: r.val_acc)  # the first of equal bests, as saved
    best = {"step": int(row.step), "val_acc": row.val_acc}
    tta = result.config.tta
    if row.step == result.steps:  # the final model: its test accuracies are known
        if tta == "none":
            return {**best, "test_acc": result.test_acc}
        return {**best, "test_acc": result.without_tta["test_acc"],
                "test_acc_tta": result.test_acc}
    net, _ = load_network(folder.best, max_batch=EVAL_CHUNK)
    test = prepared.split.test
    source = net.batch_source(test.images, test.labels)
    best["test_acc"] = net.evaluate_source(source, test.index)["accuracy"]
    if tta != "none":
        best["test_acc_tta"] = net.evaluate_tta(test.images, test.labels, test.index, tta,
                                                source)["accuracy"]
    return best


def train(config, out=None, cache_dir=None, observers=(), overwrite=False, notes=(),
          stop=None, progress=False):
    """Train as `config` says into the run folder `out` (default runs/<timestamp>);
    returns (RunResult, summary). Everything is checked and the preprocessing fitted before
    the folder is claimed, so a mistake leaves nothing behind; the folder is locked for the
    run, and a folder holding another run's files is refused unless overwrite=True.
    notes: lines for config.toml and summary.json (how the settings were resolved);
    progress: show a ProgressBar."""
    with _progress(observers, progress) as observers:
        prepared = prepare(config, cache_dir=cache_dir)
        folder = RunFolder(out or RunFolder.fresh_name())
        with folder.claim_new(overwrite=overwrite):
            folder.write_text(folder.config, prepared.config.to_toml(notes))
            return run(prepared, folder, observers, stop, notes=notes)


def resume(path, changes=None, cache_dir=None, observers=(), stop=None):
    """Continue the run in the folder `path` from its checkpoint, to the end of its plan;
    returns (RunResult, summary). changes: settings that may change on a resume (a new stop
    rule, eval_every, checkpoint_every, threads), recorded in its config.toml."""
    folder = RunFolder(path)
    with folder.claim_resume():
        prepared, checkpoint, notes = _resumed(folder, changes or {}, cache_dir)
        if notes:
            folder.write_text(folder.config, prepared.config.to_toml(notes))
        return run(prepared, folder, observers, stop, checkpoint, notes)


def train_or_resume(config, out, cache_dir=None, observers=(), notes=(), stop=None):
    """Train as `config` says into the run folder `out`, or carry on the run of `config`
    that is there: what a job that may be stopped and started again (a requeued cluster
    job) runs. Returns (RunResult, summary), or (None, summary.json's dict) when the run
    there had finished: nothing is trained then.

    `out` holds no run: a new one (`train`). It holds the run of `config`: interrupted
    after a checkpoint, it is resumed (`resume`); stopped before its first, it starts
    again; finished (summary.json), it is left alone. A run of other settings there is a
    SettingError naming the first that differs, whatever its state.
    """
    folder = RunFolder(out)
    if not folder.holds(RUN_FILES):
        return train(config, out, cache_dir, observers, notes=notes, stop=stop)
    _require_same_run(config, TrainConfig.from_toml(folder.config), folder.path)
    if folder.holds(["summary.json"]):
        return None, folder.read_summary()
    if folder.holds(["checkpoint.npz"]):
        return resume(out, None, cache_dir, observers, stop)
    return train(config, out, cache_dir, observers, overwrite=True, notes=notes, stop=stop)


def _require_same_run(config, theirs, where):
    """SettingError naming the first setting in which `config` differs from `theirs`, the
    config of the run in the folder `where`. A recorded setting that `config` leaves unset
    is checked as that run is resumed (the data's digest, the BLAS)."""
    mine = replace(config, data=str(resolve_source(config.data or None)))
    unset = [name for name in RECORDED if getattr(mine, name) == ""]
    differ = mine.differences(theirs, ignore=unset)
    if differ:
        name, mine, theirs = differ[0], mine.to_dict(), theirs.to_dict()
        raise SettingError(name, f"is {literal(mine[name])} here, {literal(theirs[name])} in "
                                 f"the run in {literal(where)}: give the same settings to "
                                 f"carry on that run, or another {{out}}")


def _resumed(folder, changes, cache_dir):
    """(Prepared, checkpoint, notes) of the claimed run folder with its changes."""
    config, notes = resume_config(TrainConfig.from_toml(folder.config), changes)
    prepared = prepare(config, cache_dir=cache_dir)
    net, step, history = folder.load_checkpoint(max(config.batch_size, EVAL_CHUNK),
                                                config.momentum, config.nesterov)
    if step > prepared.plan.total_steps:
        stop = next((n for n in ("cycles", "epochs", "steps") if n in changes), "steps")
        raise SettingError(stop, f"ends the run at step {prepared.plan.total_steps}, before "
                                 f"its checkpoint (step {step})")
    return prepared, (net, step, history), notes


@dataclass
class Preview:
    """A run checked and planned but not trained (`cifar-engine train --dry-run`): its
    Prepared, folder and notes, and where its schedule was drawn (None when the folder holds
    the run that overwrite would replace: a dry run draws nothing into another run)."""

    prepared: object
    folder: object
    notes: tuple
    schedule: object


def preview(config, out=None, overwrite=False, cache_dir=None, notes=()):
    """Check and plan a new run as `train` would, claim its folder as a dry run, and draw
    its schedule; train nothing. Returns a Preview."""
    prepared = prepare(config, cache_dir=cache_dir)
    folder = RunFolder(out or RunFolder.fresh_name())
    with folder.claim_new(overwrite=overwrite, dry_run=True):
        return _drawn(prepared, folder, notes)


def preview_resume(path, changes=None, cache_dir=None):
    """`preview` of the run that `resume(path, changes)` would continue."""
    folder = RunFolder(path)
    with folder.claim_resume():
        prepared, _, notes = _resumed(folder, changes or {}, cache_dir)
        return _drawn(prepared, folder, notes)


def _drawn(prepared, folder, notes):
    """The Preview of a claimed folder, its schedule drawn unless another run is there."""
    if folder.replacing:
        return Preview(prepared, folder, tuple(notes), None)
    schedule_figure(*prepared.plan.sampled(), folder.schedule)
    return Preview(prepared, folder, tuple(notes), folder.schedule)
