"""Median pruning (as Optuna's MedianPruner): stop a trial whose validation accuracy at a
checkpoint is below the median of the earlier trials' at the same checkpoint.

Checkpoints ("points") are numbered 0, 1, ... within a trial (after each cycle or epoch);
trials are numbered 0, 1, ... within a stage, and compared only within their stage (all its
trials have one budget, hence the same checkpoints).

What "earlier" means, so that a search prunes the same trials however it is run (one
process, parallel workers, resumed, several machines): the reference of trial t at point i
is every trial s < t of the same stage that recorded a value at point i, whatever happened
to it later (pruned after i, diverged after i, finished). A trial that ended before point i
has no value there and is left out. Trial t decides at point i only once every trial s < t is
*settled* at point i: it recorded point i, or it finished. By induction on t every
decision is a function of the seeds and settings, never of timing. Waiting costs little,
since trials start in trial order and share one budget, so trial s usually passes point i
before trial t does; and it never deadlocks, since no trial waits on a later one. (Optuna
compares with completed trials only, whatever their number: that depends on which finished
first, and waiting for whole trials would serialise the stage.) A trial whose process died
stays unsettled until it is run again: the runner must re-run it, or stop waiting.

At each point a runner does:

    journal.point(stage, trial, i, val_acc)
    previous, settled = reference_points(journal.read(), stage, trial, i)
    while not settled:  # sleep, then read again
        ...
    if pruner.should_prune(stage, i, val_acc, previous):
        journal.finish(..., status="pruned", points=points_so_far)
"""
import math
from dataclasses import dataclass

import numpy as np

from ...errors import require


@dataclass(frozen=True)
class MedianPruner:
    """Prune at point i when the value is below the median of the reference values at i.

    No trial is pruned at points before n_warmup_points, nor while fewer than
    n_startup_trials reference trials have a finite value at that point. A value that is
    None or NaN (diverged) is pruned once past the warm-up, as Optuna does.
    """

    n_startup_trials: int = 5
    n_warmup_points: int = 0

    def __post_init__(self):
        require(self.n_startup_trials >= 1, "n_startup_trials",
                f"must be >= 1, got {self.n_startup_trials}")
        require(self.n_warmup_points >= 0, "n_warmup_points",
                f"must be >= 0, got {self.n_warmup_points}")

    def should_prune(self, stage, point_index, value, previous):
        """Whether to stop a trial of `stage` whose validation accuracy at point `point_index`
        is `value`.

        previous: {(stage, trial): sequence of values at points 0, 1, ... (None or NaN where
        missing)} of the reference trials, as `reference_points` gives; keys of other stages
        are ignored.
        """
        if point_index < self.n_warmup_points:
            return False
        values = [v for (s, _), points in previous.items() if s == stage
                  for v in [_at(points, point_index)] if v is not None]
        if len(values) < self.n_startup_trials:
            return False
        if value is None or not math.isfinite(value):
            return True
        return value < float(np.median(values))


def _at(points, index):
    value = points[index] if index < len(points) else None
    return None if value is None or not math.isfinite(value) else float(value)


def reference_points(records, stage, trial, point_index):
    """(previous, settled) for trial `trial` of `stage` at point `point_index`.

    records: the journal's records (`Journal.read()`), "point" events ({index, val_acc}) and
    "finish" events ({points}) alike. previous: {(stage, s): list of values, NaN where
    missing} for the trials s < trial of the stage; settled: whether every one of them
    recorded point_index or finished (else wait, read the journal again, and ask again).
    """
    points = {s: {} for s in range(trial)}
    finished = set()
    for r in records:
        s = r.get("trial")
        if r.get("stage") != stage or s not in points:
            continue
        if r.get("event") == "point":
            points[s][r["index"]] = r["val_acc"]
        elif r.get("event") == "finish":
            finished.add(s)
            points[s].update(enumerate(r.get("points") or ()))
    settled = all(s in finished or point_index in points[s] for s in points)
    previous = {(stage, s): _as_list(p) for s, p in points.items()}
    return previous, settled


def _as_list(by_index):
    values = [math.nan] * (max(by_index) + 1 if by_index else 0)
    for index, value in by_index.items():
        values[index] = math.nan if value is None else float(value)
    return values
