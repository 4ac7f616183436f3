"""A run folder on disk: config, metrics, summary, model, checkpoint and figures.

Every file is written atomically (temporary file, then rename), so a kill at any moment
leaves the previous version or the new one, never a broken one. A run owns its folder: it
claims it (`claim_new`, `claim_resume`), which takes the folder's lock for as long as the run
lasts, so two runs never write into one folder. Every command that writes a folder claims
it so, as the kind of run it is (KINDS): a training run (or its dry run), an LR range test
or a search. A folder's files record which kind owns it, and a claim refuses a folder that
another kind owns.
"""
import csv
import io
import json
import os
import platform
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..data.paths import checkout_root
from ..errors import SettingError, UserError, literal
from ..model.npz import check_extra, load_network, save_network
from ..util.atomic import (atomic_write, make_folders, read_regular, remove_dead_temps,
                           remove_empty_folders)
from ..util.lock import FileLock, LockHeld
from ..util.system import cpu_model
from .loop import METRIC_COLUMNS

LOCK_NAME = ".lock"
# A folder holding any of these holds a run; figures alone do not (a dry run writes one).
RUN_FILES = ("config.toml", "metrics.csv", "summary.json", "model.npz", "best.npz",
             "checkpoint.npz")
MODELS = ("final", "best")  # model.npz: the network at the end; best.npz: at its best validation
FIGURES = ("curves.png", "templates.png", "schedule.png")
# The kinds of run that own a folder: (article, noun, the files that show one is there).
KINDS = {
    "train": ("a", "run", RUN_FILES),
    "lr-range-test": ("an", "LR range test", ("lr_range.json", "lr_range.csv", "lr_range.png")),
    "search": ("a", "search", ("search.json", "search.jsonl", "search.csv", "search.png")),
}
# The files that a run of each kind needs to be resumed.
RESUMABLE = {"train": ("config.toml", "checkpoint.npz"), "search": ("search.json",)}


class RunFolder:
    """The files of one run of `kind` (a key of KINDS) under `path`."""

    def __init__(self, path, kind="train"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.path, self.kind = Path(path), kind
        self.replacing = False  # claimed over a run of its kind (claim_new's overwrite)
        self._lock = None
        self._created = []  # the folders claim_new made, deepest first

    config = property(lambda self: self.path / "config.toml")
    metrics = property(lambda self: self.path / "metrics.csv")
    summary = property(lambda self: self.path / "summary.json")
    model = property(lambda self: self.path / "model.npz")
    best = property(lambda self: self.path / "best.npz")
    checkpoint = property(lambda self: self.path / "checkpoint.npz")
    curves = property(lambda self: self.path / "curves.png")
    templates = property(lambda self: self.path / "templates.png")
    schedule = property(lambda self: self.path / "schedule.png")

    @staticmethod
    def fresh_name(root="runs"):
        return Path(root) / time.strftime("%Y%m%d-%H%M%S")

    def claim_new(self, overwrite=False, dry_run=False):
        """Own the folder for a new run until `release`; returns self.

        A missing folder is made; an empty one is taken as it is. A folder that holds a run
        of another kind (any of its KINDS files) is refused; one that holds a run of this
        kind is refused unless `overwrite`, which removes that run's files (and, for a
        training run, its FIGURES) first; other files are left alone. A `dry_run` removes
        nothing: `replacing` says whether the run would replace one. What killed writers
        left (temporary files) is removed. Mistakes raise SettingError("out").
        """
        self._make()
        self._take_lock("out")
        try:
            found = self._runs_found()
            other = next((kind for kind in found if kind != self.kind), None)
            if other:
                article, noun, _ = KINDS[other]
                raise SettingError("out", f"{literal(self.path)} holds {article} {noun} "
                                          f"({', '.join(found[other])}): choose another folder")
            if self.kind in found and not overwrite:
                raise SettingError("out", self._occupied(found[self.kind]))
            self.replacing = self.kind in found
            if overwrite and not dry_run:
                self._remove_engine_files()
            remove_dead_temps(self.path, locked=True)
        except BaseException:
            self.release()
            raise
        return self

    def claim_resume(self):
        """Own the folder to resume its run until `release`; returns self.

        The folder must hold the files of RESUMABLE[kind] (a training run's config.toml and
        checkpoint.npz), as files. What killed writers left (temporary files) is removed.
        Mistakes raise SettingError("resume").
        """
        if self.kind not in RESUMABLE:
            raise ValueError(f"a run of kind {self.kind} cannot be resumed")
        where = literal(self.path)
        if not self.path.is_dir():
            what = "not a folder" if os.path.lexists(self.path) else "no such folder"
            raise SettingError("resume", f"{where}: {what}")
        self._take_lock("resume")
        try:
            for name in RESUMABLE[self.kind]:
                self._require_file(self.path / name, self._missing(name))
            remove_dead_temps(self.path, locked=True)
        except BaseException:
            self.release()
            raise
        return self

    def release(self, remove_if_empty=True):
        """Give up the folder: drop its lock and remove its .lock file.

        With `remove_if_empty`, a folder that claim_new made is removed, with the parents it
        made, when nothing was written into it (a run that failed before its first file).
        """
        if self._lock is not None:
            self._lock.release()  # removes .lock
            self._lock = None
        if remove_if_empty:
            remove_empty_folders(self._created)
        self._created = []

    @property
    def claimed(self):
        return self._lock is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def _make(self):
        where = literal(self.path)
        if os.path.lexists(self.path) and not self.path.is_dir():
            raise SettingError("out", f"{where}: not a folder")
        self._created = make_folders(self.path, lambda err: SettingError(
            "out", f"{where}: cannot write there ({literal(err.strerror or err)})"))

    def _take_lock(self, setting):
        if self._lock is not None:
            raise RuntimeError(f"{self.path}: already claimed by this RunFolder")
        where = literal(self.path)
        try:
            self._lock = FileLock(self.path / LOCK_NAME).acquire()
        except LockHeld as held:
            self.release()
            holder = f"process {held.pid}" if held.pid else "another process"
            raise SettingError(setting, f"{where}: in use by another run ({holder})") from None
        except OSError as err:
            self.release()
            where = literal(err.filename or self.path)  # the folder, or its .lock itself
            raise SettingError(setting, f"{where}: cannot write there "
                                        f"({literal(err.strerror or err)})") from None

    def _runs_found(self):
        """{kind: the names of its files} of the runs whose files the folder holds."""
        found = {kind: [name for name in files if os.path.lexists(self.path / name)]
                 for kind, (_, _, files) in KINDS.items()}
        return {kind: names for kind, names in found.items() if names}

    def _occupied(self, found):
        where = literal(self.path)
        if self.kind == "search":  # a search is continued, never replaced
            return (f"{where} holds a search already: continue it with {{resume}} {where}, "
                    f"or give another {{out}}")
        if self.kind == "train" and self.checkpoint.exists() and not self.summary.exists():
            return (f"{where} holds an unfinished run: continue it with {{resume}} {where}, "
                    f"or replace it with {{overwrite}}")
        return (f"{where} holds another {KINDS[self.kind][1]} ({', '.join(found)}): choose "
                f"another folder, or replace it with {{overwrite}}")

    def _missing(self, name):
        if name != "checkpoint.npz":
            return f"no {name} there"
        return ("no checkpoint.npz there: the run stopped before its first checkpoint; start "
                f"it again with {{config}} {literal(self.config)} {{out}} {literal(self.path)} "
                f"{{overwrite}}")

    def _remove_engine_files(self):
        for name in KINDS[self.kind][2] + (FIGURES if self.kind == "train" else ()):
            try:
                (self.path / name).unlink(missing_ok=True)
            except OSError as err:
                raise SettingError("out", f"{literal(self.path / name)}: cannot remove it "
                                          f"({literal(err.strerror or err)})") from None

    def _require_file(self, path, missing):
        if not os.path.lexists(path):
            raise SettingError("resume", f"{literal(self.path)}: {missing}")
        if not path.is_file():
            raise SettingError("resume", f"{literal(path)}: not a file")

    def model_file(self, which="final"):
        """The file of the run's final model or of its best by validation (MODELS)."""
        if which not in MODELS:
            raise SettingError("model", f"must be one of {', '.join(MODELS)}, got {which!r}")
        return self.model if which == "final" else self.best

    def write_text(self, path, text):
        with atomic_write(path, "w") as file:
            file.write(text)

    def write_metrics(self, history):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(METRIC_COLUMNS)
        for row in history:
            writer.writerow([row[0], *(repr(float(v)) for v in row[1:])])
        self.write_text(self.metrics, buffer.getvalue())

    def read_metrics(self):
        """The metrics table as a dict of float arrays by column.

        A missing, unreadable or damaged file raises a one-line UserError naming it.
        """
        try:
            text = read_regular(self.metrics).decode("utf-8")
        except UnicodeDecodeError as err:
            raise _damaged(self.metrics, f"not text: byte {err.start}") from None
        return _parse_metrics(text, self.metrics)

    def write_summary(self, summary):
        self.write_text(self.summary, json.dumps(summary, indent=2) + "\n")

    def read_summary(self):
        """summary.json as a dict; a one-line UserError naming it unless it holds a JSON
        object."""
        try:
            summary = json.loads(read_regular(self.summary))
        except (ValueError, RecursionError) as err:
            raise UserError(f"{self.summary}: not a run summary (not JSON: {err})") from None
        if not isinstance(summary, dict):
            raise UserError(f"{self.summary}: not a run summary (not a JSON object)")
        return summary

    def holds(self, names):
        """The names of `names` (files of the folder) that are there."""
        return [name for name in names if os.path.lexists(self.path / name)]

    def save_checkpoint(self, net, step, history):
        """checkpoint.npz: the network's state (velocity included), the step it reached and
        its history (MetricRows), as `load_checkpoint` gives them back."""
        extra = {"step": step,
                 "history": np.array(history, dtype=np.float64).reshape(-1, len(METRIC_COLUMNS))}
        velocity = net.state_dict(["velocity"], copy=False)["velocity"]
        extra.update({f"velocity/{k}": v for k, v in velocity.items()})
        save_network(self.checkpoint, net, extra)

    def load_checkpoint(self, max_batch, momentum, nesterov):
        """(net, step, history) from the checkpoint; a missing one is a one-line error."""
        if not self.checkpoint.exists():
            raise SettingError("resume", f"{literal(self.path)}: no checkpoint.npz there")
        net, extra = load_network(self.checkpoint, max_batch=max_batch, momentum=momentum,
                                  nesterov=nesterov)
        check_extra(self.checkpoint, extra, {
            "step": (), "history": (None, len(METRIC_COLUMNS)),
            **{f"velocity/{k}": v.shape for k, v in net.velocity.items()}})
        if extra["step"] < 0 or extra["step"] != int(extra["step"]):
            raise UserError(f"{self.checkpoint}: damaged checkpoint (step {extra['step']})")
        net.load_state({"velocity": {name: extra[f"velocity/{name}"] for name in net.velocity}})
        history = [(int(r[0]), *map(float, r[1:])) for r in extra["history"]]
        return net, int(extra["step"]), history


def _damaged(path, why):
    return UserError(f"{path}: damaged metrics table ({why})")


def _parse_metrics(text, path):
    """The columns of METRIC_COLUMNS in `text`, a CSV file as write_metrics writes it."""
    if not text:
        raise _damaged(path, "empty")
    if not text.endswith("\n"):  # every write ends a row; a cut one does not
        raise _damaged(path, "truncated: no newline at the end")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        missing = [name for name in METRIC_COLUMNS if name not in header]
        if missing:
            raise _damaged(path, f"no column {missing[0]!r}")
        where = [header.index(name) for name in METRIC_COLUMNS]
        columns = [[] for _ in METRIC_COLUMNS]
        for row in reader:
            if len(row) != len(header):
                raise _damaged(path, f"line {reader.line_num}: {len(row)} values, "
                                     f"expected {len(header)}")
            for name, values, i in zip(METRIC_COLUMNS, columns, where):
                values.append(_number(row[i], path, reader.line_num, name))
    except csv.Error as err:
        raise _damaged(path, f"line {reader.line_num}: {err}") from None
    return {name: np.array(values, dtype=np.float64)
            for name, values in zip(METRIC_COLUMNS, columns)}


def _number(value, path, line, column):
    try:
        return float(value)
    except ValueError:
        pass
    shown = value if len(value) <= 20 else value[:20] + "..."
    raise _damaged(path, f"line {line}: {shown!r} in column {column} is not a number")


def environment():
    """What the run ran on: versions, threads, BLAS, CPU model, git commit when known."""
    import numba

    from ..runtime import blas

    return {
        "engine": version("cifar-engine"),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
        "threads": numba.get_num_threads(),
        "threading_layer": _threading_layer(),
        "blas": blas.describe(),
        "cpu": cpu_model() or None,
        "git_commit": _git_commit(),
    }


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return None


def _git_commit():
    root = checkout_root()
    if root is None:
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None
