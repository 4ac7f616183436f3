"""A run folder on disk: config, metrics, summary, model, checkpoint and figures.

Every file is written atomically (temporary file, then rename), so a kill at any moment
leaves the previous version or the new one, never a broken one.
"""
import csv
import io
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import atomic_write
from .data.paths import checkout_root
from .errors import UserError
from .model_file import load_network, save_network
from .trainer import METRIC_COLUMNS


class RunFolder:
    """The files of one run under `path`."""

    def __init__(self, path):
        self.path = Path(path)

    config = property(lambda self: self.path / "config.toml")
    metrics = property(lambda self: self.path / "metrics.csv")
    summary = property(lambda self: self.path / "summary.json")
    model = property(lambda self: self.path / "model.npz")
    checkpoint = property(lambda self: self.path / "checkpoint.npz")
    curves = property(lambda self: self.path / "curves.png")
    templates = property(lambda self: self.path / "templates.png")
    schedule = property(lambda self: self.path / "schedule.png")

    @staticmethod
    def fresh_name(root="runs"):
        return Path(root) / time.strftime("%Y%m%d-%H%M%S")

    def create(self):
        """Make the folder, or fail with one line naming it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise UserError(f"--out {self.path}: cannot write there "
                            f"({err.strerror or err})") from None

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
        """The metrics table as a dict of float arrays by column."""
        try:
            with open(self.metrics, newline="") as file:
                rows = list(csv.DictReader(file))
        except FileNotFoundError:
            raise UserError(f"{self.metrics}: no such file") from None
        return {c: np.array([float(r[c]) for r in rows]) for c in METRIC_COLUMNS}

    def write_summary(self, summary):
        self.write_text(self.summary, json.dumps(summary, indent=2) + "\n")

    def save_checkpoint(self, trainer):
        net = trainer.net
        extra = {"step": trainer.step,
                 "history": np.array(trainer.history, dtype=np.float64).reshape(-1, len(METRIC_COLUMNS))}
        extra.update({f"velocity/{k}": v for k, v in net.velocity.items()})
        save_network(self.checkpoint, net, extra)

    def load_checkpoint(self, max_batch, momentum, nesterov):
        """(net, step, history) from the checkpoint; a missing one is a one-line error."""
        if not self.checkpoint.exists():
            raise UserError(f"--resume {self.path}: no checkpoint.npz there")
        net, extra = load_network(self.checkpoint, max_batch=max_batch, momentum=momentum,
                                  nesterov=nesterov)
        for name, v in net.velocity.items():
            v[...] = extra[f"velocity/{name}"]
        history = [(int(r[0]), *map(float, r[1:])) for r in extra["history"]]
        return net, int(extra["step"]), history


def environment():
    """What the run ran on: versions, threads, CPU model, git commit when known."""
    import numba

    return {
        "engine": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
        "threads": numba.get_num_threads(),
        "threading_layer": _threading_layer(),
        "cpu": _cpu_model(),
        "git_commit": _git_commit(),
    }


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


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
