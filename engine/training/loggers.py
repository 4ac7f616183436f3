"""Run logging to TensorBoard and MLflow: Observers that write what a run measures where
those tools read it, and the registry `LOGGERS` that `--log NAME` looks names up in.

They work at a run's segment and evaluation moments only, never per step: a segment (up to
MAX_SEGMENT steps in one compiled call) gives one batch-loss point, its steps' mean, so a
run writes a few events per evaluation and trains as fast with them as without.
tensorboardX (the `tensorboard` extra) and MLflow (the `mlflow` extra) are imported when an
Observer is made, which is a one-line UserError naming the extra when it is missing.

A search makes its trials' Observers inside each worker from `Logs`, plain settings that
pickle (a live writer or client does not cross processes).
"""
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SettingError, UserError
from ..model.npz import save_network
from ..plots import curves_figure, network_templates_figure
from ..util.optional import optional
from .loop import METRIC_COLUMNS, Observer

TENSORBOARD = "tensorboard"  # the folder of the event files, in a run or search folder
MLFLOW_STORE = "mlflow.db"  # MLflow's default store: an SQLite file in the run folder
MLFLOW_ARTIFACTS = "mlartifacts"  # ... with its artifacts beside it
DEFAULT_EXPERIMENT = "cifar-engine"
TEMPLATES_SHOWN = 64  # first-layer templates in the TensorBoard image, as templates.png
# What each evaluation logs: its MetricRow's columns but the step, which is the x axis.
LOGGED = METRIC_COLUMNS[1:]
# TensorBoard tags, grouped by quantity ("loss/train", "loss/val"; "eta", "epoch").
TAGS = {column: "/".join(reversed(column.split("_"))) for column in LOGGED}
FINAL = ("train_acc", "val_acc", "test_acc")  # a RunResult's accuracies on whole parts


def hyperparameters(config):
    """The settings of a TrainConfig as HParams and MLflow take them: {name: str, int,
    float or bool}; hidden widths as the command line spells them ("1024,512", "none")."""
    return {name: ",".join(map(str, value)) or "none" if isinstance(value, (list, tuple))
            else value for name, value in config.to_dict().items()}


def template_images(net, limit=TEMPLATES_SHOWN):
    """The first `limit` first-layer templates as pictures, each rescaled to its own range
    as templates.png draws them: float32 (n, H, W, C) in [0, 1]."""
    W = net.preprocessing.templates(net.parameters["W1"][:limit]).astype(np.float64)
    low = W.min(axis=1, keepdims=True)
    span = W.max(axis=1, keepdims=True) - low
    W = (W - low) / np.where(span > 0, span, 1.0)
    shape = net.image_shape or (1, 1, W.shape[1])
    return W.reshape(-1, *shape).transpose(0, 2, 3, 1).astype(np.float32)


class TensorBoardObserver(Observer):
    """Writes a run's TensorBoard event files into `logdir` (default: the run folder's
    tensorboard/): at each evaluation its MetricRow (loss, cost and accuracy of the train
    subset and validation, eta, epoch) and the first layer's templates as images; after
    each segment the mean batch loss of its steps, at its last step; at the end the final accuracies and
    the run's settings with them for the HParams view. A step is the number of steps done.
    """

    def __init__(self, logdir=None):
        self._tbx = optional("tensorboardX", "tensorboard", "logging to TensorBoard")
        self.logdir = None if logdir is None else Path(logdir)
        self.writer = None
        self.written = 0  # the steps whose batch losses are in a written mean

    def prepare(self):
        """Nothing to set up: each run writes event files of its own."""

    def started(self, trainer, folder, notes):
        logdir = self.logdir or (folder.path / TENSORBOARD if folder is not None else None)
        if logdir is None:
            raise UserError("TensorBoardObserver: give a logdir for a run without a run folder")
        self.writer = self._tbx.SummaryWriter(str(logdir))
        self.written = trainer.step

    def segment(self, trainer, n_steps):
        losses = trainer.losses[self.written - trainer.first_step:]
        if losses.size:
            self.writer.add_scalar("batch/loss", float(np.mean(losses, dtype=np.float64)),
                                   trainer.step)
        self.written = trainer.step

    def evaluation(self, trainer, row):
        for column, tag in TAGS.items():
            self.writer.add_scalar(tag, getattr(row, column), row.step)
        self.writer.add_images("templates", template_images(trainer.net), row.step,
                               dataformats="NHWC")

    def finished(self, trainer, result):
        if self.writer is None:
            return
        try:
            if result is not None:
                self._hparams(result)
        finally:
            self.writer.close()
            self.writer = None

    def _hparams(self, result):
        """The final accuracies as scalars "final/NAME", and the HParams session of this run
        (its settings, those metrics and the validation curve) in the same event file."""
        final = {f"final/{name}": getattr(result, name) for name in FINAL}
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, result.steps)
        metrics = {**final, TAGS["val_acc"]: None}  # only the tags are read
        for summary in self._tbx.summary.hparams(hyperparameters(result.config), metrics):
            self.writer.file_writer.add_summary(summary)


class MlflowObserver(Observer):
    """Logs a run to MLflow: its settings as parameters, each evaluation's MetricRow as
    metrics at its step (train_loss, val_acc, eta, ...), the final accuracies (final_NAME),
    and at the end model.npz, summary.json and the figures as artifacts.

    tracking_uri: the store (default: $MLFLOW_TRACKING_URI, else an SQLite store in `root`:
    mlflow.db, its artifacts in mlartifacts/); root: default the run folder; experiment: its
    name; run_name: default the run folder's name. MLflow's client, not its global state,
    so that runs in threads keep apart.
    """

    def __init__(self, tracking_uri=None, experiment=DEFAULT_EXPERIMENT, run_name=None,
                 root=None):
        self._tracking = optional("mlflow.tracking", "mlflow", "logging to MLflow")
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.run_name, self.root = run_name, root
        self.client = self.run_id = self.folder = None

    def prepare(self, root=None):
        """(client, experiment id) of the store, root the folder of a default one (made,
        with a new store's database, on first use); before runs that share it start in
        parallel, so that one process makes it."""
        uri, artifacts = store_uri(self.tracking_uri, self.root or root)
        client = self._tracking.MlflowClient(uri)
        return client, experiment_id(client, self.experiment, artifacts)

    def started(self, trainer, folder, notes):
        from mlflow.entities import Param

        self.folder = folder
        self.client, experiment = self.prepare(folder.path if folder is not None else None)
        name = self.run_name or (folder.path.name if folder is not None else None)
        self.run_id = self.client.create_run(experiment, run_name=name).info.run_id
        params = [Param(k, str(v)) for k, v in hyperparameters(trainer.config).items()]
        self.client.log_batch(self.run_id, params=params)

    def evaluation(self, trainer, row):
        self._metrics({name: getattr(row, name) for name in LOGGED}, row.step)

    def _metrics(self, values, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, int(step))
                                                    for k, v in values.items()])

    def finished(self, trainer, result):
        if self.run_id is None:
            return
        if result is None:
            self.client.set_terminated(self.run_id, "FAILED")
            return
        self._metrics({f"final_{name}": getattr(result, name) for name in FINAL},
                      result.steps)
        with artifact_files(self.folder, result) as paths:
            for path in paths:
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, "FINISHED")


def store_uri(tracking_uri, root):
    """(the MLflow tracking URI, the artifact location of an experiment made there or None):
    tracking_uri, else $MLFLOW_TRACKING_URI, else the SQLite store mlflow.db in `root`."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    if root is None:
        raise UserError("MlflowObserver: give a tracking_uri (or set MLFLOW_TRACKING_URI) "
                        "for a run without a run folder")
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / MLFLOW_STORE}", (root / MLFLOW_ARTIFACTS).as_uri()


def experiment_id(client, name, artifacts=None):
    """The id of the experiment `name`, made (its artifacts at `artifacts`, or the store's
    default) when missing; another process making it at the same time is no error."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, artifact_location=artifacts)
        except MlflowException:
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    return found.experiment_id


@contextlib.contextmanager
def artifact_files(folder, result):
    """The files of a finished run to keep as artifacts: its run folder's model, summary
    and figures; without a folder, model.npz and the figures written for it in a temporary
    folder (removed after the block)."""
    if folder is not None:
        yield [p for p in (folder.model, folder.summary, folder.curves, folder.templates)
               if p.exists()]
        return
    with tempfile.TemporaryDirectory(prefix="cifar-engine-") as tmp:
        model, templates, curves = (Path(tmp) / name for name in
                                    ("model.npz", "templates.png", "curves.png"))
        save_network(model, result.net)
        network_templates_figure(result.net, templates)
        if result.history:
            curves_figure(result.columns(), curves)
        yield [path for path in (model, curves, templates) if path.exists()]


def _tensorboard(logs, run_name):
    logdir = None if logs.root is None else Path(logs.root) / TENSORBOARD / (run_name or "")
    return TensorBoardObserver(logdir)


def _mlflow(logs, run_name):
    return MlflowObserver(logs.tracking_uri, logs.experiment, run_name, logs.root)


# `--log NAME`: a factory per name, (Logs, run name or None) -> a fresh Observer.
LOGGERS = {"tensorboard": _tensorboard, "mlflow": _mlflow}


@dataclass(frozen=True)
class Logs:
    """Which loggers (names of LOGGERS) watch runs, and where they write.

    root: the folder their files go under (a search folder: tensorboard/RUN_NAME/,
    mlflow.db); None: each run's own folder. tracking_uri: MLflow's store (see
    MlflowObserver); experiment: MLflow's experiment. Plain data, so that it pickles to a
    search's workers, which make their Observers from it.
    """

    names: tuple = ()
    tracking_uri: str = None
    root: str = None
    experiment: str = DEFAULT_EXPERIMENT

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(dict.fromkeys(self.names)))
        unknown = [name for name in self.names if name not in LOGGERS]
        if unknown:
            raise SettingError("log", f"must be one of {', '.join(LOGGERS)}, got "
                                      f"{unknown[0]!r}")

    def observers(self, run_name=None):
        """Fresh Observers of one run, named run_name under root (None: the run's folder);
        a UserError naming the extra to install when one is missing."""
        return [LOGGERS[name](self, run_name) for name in self.names]

    def prepare(self):
        """Check the extras here, and make a shared MLflow store and experiment once,
        before runs in parallel (a search's trials) write into it."""
        for observer in self.observers():
            observer.prepare()
