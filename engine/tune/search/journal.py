"""The journal of a search: one JSON line per event in `search.jsonl`, many writers at once.

Events (every record has "event", "stage", "trial" and "time", seconds since the epoch):

    start   a trial begins: settings, seed, host, pid
    point   its validation accuracy at checkpoint `index` (after each cycle or epoch): val_acc
    finish  it ends: settings, seed, status (ok | diverged | failed | pruned | timeout),
            train_acc, val_acc, test_acc (None when not measured), seconds, reason,
            points (the validation accuracies of its checkpoints)

Appends take the lock file `search.jsonl.lock` (see `lock.py`), so processes on one machine,
or on several sharing the folder over a file system whose locks work, append one at a time;
each line goes out in one write, flushed and fsync'd. A writer killed mid-line leaves a
fragment without its newline: the next append starts a new line after it, and `read` skips
lines that are not JSON. A JSON object that is not a record as above (a key missing or of
another type, an accuracy outside [0, 1]) is damage no writer leaves: `read` refuses it.
"""
import contextlib
import csv
import io
import json
import math
import os
import socket
import time
from pathlib import Path

import numpy as np

from ...errors import DataError, UserError, require
from ...util.atomic import atomic_write
from ...util.lock import locked
from ...util.system import O_BINARY, read_at
from .space import format_value, from_json

JOURNAL = "search.jsonl"
TABLE = "search.csv"
# "timeout": stopped at the search's per-trial time limit (counted as a failure, never the best)
STATUSES = ("ok", "diverged", "failed", "pruned", "timeout")
ACCURACIES = ("train_acc", "val_acc", "test_acc")
EVENTS = ("start", "point", "finish")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _finite_or_none(value):
    return None if value is None or not math.isfinite(value) else float(value)


class Journal:
    """The events of the search whose folder is `folder` (created on the first append)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / JOURNAL
        self.csv_path = self.folder / TABLE

    # -- writing ----------------------------------------------------------------------------

    def start(self, stage, trial, settings, seed):
        """Record that trial (stage, trial) starts with these settings and training seed."""
        return self.append({"event": "start", "stage": stage, "trial": trial,
                            "settings": settings, "seed": seed, "host": socket.gethostname(),
                            "pid": os.getpid()})

    def point(self, stage, trial, index, val_acc):
        """Record the validation accuracy of a running trial at checkpoint `index` (0, 1, ...)."""
        return self.append({"event": "point", "stage": stage, "trial": trial, "index": index,
                            "val_acc": _finite_or_none(val_acc)})

    def finish(self, stage, trial, settings, seed, status, *, train_acc=None, val_acc=None,
               test_acc=None, seconds=None, reason="", points=()):
        """Record how trial (stage, trial) ended; non-finite accuracies are written as None."""
        require(status in STATUSES, "status", f"must be one of {list(STATUSES)}, got {status!r}")
        accuracies = dict(zip(ACCURACIES, map(_finite_or_none, (train_acc, val_acc, test_acc))))
        return self.append({"event": "finish", "stage": stage, "trial": trial,
                            "settings": settings, "seed": seed, "status": status,
                            **accuracies, "seconds": seconds, "reason": reason,
                            "points": [_finite_or_none(v) for v in points]})

    def append(self, record):
        """Append record (a dict, given a "time") as one line; returns the record written."""
        record = {**record, "time": time.time()}
        line = json.dumps(record, default=_jsonable, allow_nan=False).encode() + b"\n"
        with self._locked(), _naming(self.path, "cannot write"):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | O_BINARY, 0o666)
            try:
                size = os.fstat(fd).st_size
                if size and read_at(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # end the fragment a killed writer left
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    @contextlib.contextmanager
    def _locked(self):
        """Hold the journal's lock (the folder made first), or UserError naming what failed."""
        with _naming(self.folder, "cannot write there"):
            self.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as held:
            with _naming(self._lock_path, "cannot lock"):
                held.enter_context(locked(self._lock_path))
            yield

    @property
    def _lock_path(self):
        return self.path.with_name(self.path.name + ".lock")

    # -- reading ----------------------------------------------------------------------------

    def read(self):
        """Every record, in the order written; settings' lists are tuples again (hidden
        widths). Lines that are not whole JSON objects (a writer killed mid-line) are skipped;
        an object that is not a record is a DataError naming the journal and its line.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise DataError(f"{self.path}: cannot read ({err.strerror or err})") from None
        records = []
        for number, line in enumerate(data.split(b"\n"), 1):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # a fragment, or the "" after the last newline
                continue
            if isinstance(record, dict):
                problem = record_problem(record)
                if problem:
                    raise DataError(f"{self.path}: line {number}: {problem}")
                if "settings" in FIELDS[record["event"]]:
                    record["settings"] = {k: from_json(v) for k, v in record["settings"].items()}
                records.append(record)
        return records

    def finished(self, records=None):
        """{(stage, trial): its last finish record}, in (stage, trial) order."""
        records = self.read() if records is None else records
        return _by_trial(r for r in records if r.get("event") == "finish")

    def running(self, records=None):
        """{(stage, trial): its last start record} of trials started but not finished: still
        running, or their process died (`host` and `pid` say where)."""
        records = self.read() if records is None else records
        done = self.finished(records)
        started = _by_trial(r for r in records if r.get("event") == "start")
        return {key: r for key, r in started.items() if key not in done}

    def results(self, stage, records=None):
        """[(settings, val_acc)] of the finished trials of `stage` in trial order, as
        `narrow` takes them: val_acc is None unless the trial's status is ok."""
        return [(r["settings"], r["val_acc"] if r["status"] == "ok" else None)
                for (s, _), r in self.finished(records).items() if s == stage]

    # -- the table --------------------------------------------------------------------------

    def write_csv(self, params=None):
        """Write `search.csv` atomically: one row per finished trial in (stage, trial) order,
        columns stage, trial, each of params (names; by default every setting in the
        journal, sorted), train_acc, val_acc, test_acc, seconds, seed, status, reason.

        Made from the journal alone (under its lock), so that a resumed search writes the
        same rows as an uninterrupted one (but for seconds). Returns the Path.
        """
        with self._locked():
            header, rows = trial_table(self.finished().values(), params)
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(header)
            for cells in rows:
                writer.writerow(["" if c is None else format_value(c) for c in cells])
            with atomic_write(self.csv_path, "w") as file:
                file.write(text.getvalue())
        return self.csv_path


def trial_table(records, params=None):
    """(header, rows) of finish records, as `search.csv` has them: a list of values per
    record (None where there is none). params: the settings' names, in order (default:
    every setting in the records, sorted)."""
    records = list(records)
    names = list(params) if params is not None else \
        sorted({name for r in records for name in r["settings"]})
    header = ["stage", "trial", *names, *ACCURACIES, "seconds", "seed", "status", "reason"]
    rows = [[r["stage"], r["trial"], *(r["settings"].get(n) for n in names),
             *(r[a] for a in ACCURACIES), r["seconds"], r["seed"], r["status"], r["reason"]]
            for r in records]
    return header, rows


def _whole(value, low=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _accuracy(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and 0 <= value <= 1)  # NaN and inf fail the comparison


# What each event's record holds, beyond event, stage and trial: {key: (check, what)}.
_SETTINGS = (lambda v: isinstance(v, dict), "an object")
_SEED = (_whole, "a whole number >= 0")
_ACCURACY = (_accuracy, "None or an accuracy in [0, 1]")
FIELDS = {
    "start": {"settings": _SETTINGS, "seed": _SEED},
    "point": {"index": _SEED, "val_acc": _ACCURACY},
    "finish": {"settings": _SETTINGS, "seed": _SEED,
               "status": (lambda v: v in STATUSES, f"one of {list(STATUSES)}"),
               **dict.fromkeys(ACCURACIES, _ACCURACY),
               "seconds": (lambda v: v is None or (isinstance(v, (int, float))
                                                   and not isinstance(v, bool)
                                                   and 0 <= v < math.inf),
                           "None or seconds >= 0"),
               "reason": (lambda v: isinstance(v, str), "a string"),
               "points": (lambda v: isinstance(v, list) and all(map(_accuracy, v)),
                          "a list of accuracies in [0, 1] (or None)")},
}


def record_problem(record):
    """What makes the JSON object `record` no journal record (one line), or None."""
    event = record.get("event")
    if event not in EVENTS:
        return f"not a journal record (event {event!r}, not one of {list(EVENTS)})"
    checks = {"stage": _SEED, "trial": _SEED, **FIELDS[event]}
    for key, (ok, what) in checks.items():
        if key not in record:
            return f"a {event} record without its {key!r}"
        if not ok(record[key]):
            return f"a {event} record whose {key} is not {what}: {_shown(record[key])}"
    return None


def _shown(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


@contextlib.contextmanager
def _naming(path, what):
    """OSError in the block as a UserError naming `path`: "PATH: what (reason)"."""
    try:
        yield
    except OSError as err:
        raise UserError(f"{path}: {what} ({err.strerror or err})") from None


def _by_trial(records):
    latest = {}
    for r in records:
        latest[(r["stage"], r["trial"])] = r
    return dict(sorted(latest.items()))


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]

