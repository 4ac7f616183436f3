"""The runs under a folder side by side (`cifar-engine runs`): a row per run folder with its
state, the settings that differ between the runs, its accuracies, length and times.

A run folder is one holding config.toml (`folder.RunFolder`). They are looked for in the
folder given and up to MAX_DEPTH levels below it, so runs grouped in subfolders and the
retrained best trial of a search (SEARCH/best) are found; a run folder's own subfolders are
not searched, nor hidden folders or symbolic links to folders. A run's state:

    finished     summary.json is there
    training     its lock is held (by the process training it)
    interrupted  neither: stopped (Ctrl-C, SIGTERM, a kill, a divergence) or still starting

Each row is read from the run's files alone: a finished run's summary.json, an unfinished
one's last evaluation in metrics.csv (training-subset and validation accuracy, no test).
"""
import json
import os
import time
from pathlib import Path

from ..errors import SettingError, UserError
from ..util.atomic import read_regular
from ..util.lock import FileLock, LockHeld
from .config import TrainConfig
from .folder import LOCK_NAME, RUN_FILES, RunFolder

MAX_DEPTH = 3  # levels below the folder given: runs/GROUP/SEARCH/best
STATES = ("finished", "training", "interrupted")
# Plain accuracies, and with test-time augmentation for a run trained with one (tta).
ACCURACIES = ("train_acc", "val_acc", "test_acc", "val_acc_tta", "test_acc_tta")
RESULTS = ("steps", "epochs", *ACCURACIES, "seconds", "updated")
NOT_COMPARED = ("data_sha256",)  # data names the data set; its digest only repeats it


def runs_table(root, sort="run", max_depth=MAX_DEPTH):
    """A dict per run folder under `root` (see the module's docstring), sorted by the column
    `sort` (accuracies descending, others ascending; missing values last).

    Keys, in order: run (its path relative to root, "." for root itself), status (STATES),
    each setting whose value differs between the runs (names of `TrainConfig`), then
    RESULTS: steps, epochs (float), the accuracies (float or None), seconds of training
    (finished runs) and updated (the local time its files last changed, "YYYY-MM-DD HH:MM").
    A missing root, or a run whose config.toml, summary.json or metrics.csv cannot be read,
    is a UserError naming it.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    runs = [_read_run(RunFolder(path), root) for path in find_runs(root, max_depth)]
    compared = _differing([config for config, _ in runs])
    rows = [{"run": row["run"], "status": row["status"],
             **{name: config[name] for name in compared},
             **{name: row[name] for name in RESULTS}} for config, row in runs]
    return sort_rows(rows, sort)


def find_runs(root, max_depth=MAX_DEPTH):
    """The run folders (holding config.toml) at `root` and up to max_depth levels below,
    in path order."""
    root = Path(root)
    if (root / "config.toml").is_file():
        return [root]
    if max_depth == 0:
        return []
    found = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            found += find_runs(Path(entry.path), max_depth - 1)
    return found


def run_state(folder):
    """The state of the RunFolder `folder`, one of STATES.

    Whether its lock is held is learnt by trying to take it: a lock left by a killed run (a
    .lock file that no process holds) is then removed, as the run's resume would.
    """
    if folder.summary.exists():
        return "finished"
    lock = folder.path / LOCK_NAME
    if not os.path.lexists(lock):
        return "interrupted"
    try:
        FileLock(lock).acquire().release()
    except LockHeld:
        return "training"
    except OSError as err:
        raise UserError(f"{lock}: cannot tell whether a run holds it "
                        f"({err.strerror or err})") from None
    return "interrupted"


def sort_rows(rows, column):
    """rows sorted by `column`: accuracies descending, others ascending, None last; a
    SettingError("sort") naming the columns when rows have no such column."""
    columns = list(rows[0]) if rows else ["run", "status", *RESULTS]
    if column not in columns:
        raise SettingError("sort", f"must be one of {', '.join(columns)}, got {column!r}")
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    ordered = sorted(present, key=lambda r: _sortable(r[column]),
                     reverse=column in ACCURACIES)
    return ordered + missing


def _sortable(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _read_run(folder, root):
    """(config as a dict, row) of one run folder: row holds run, status and RESULTS."""
    config = TrainConfig.from_toml(folder.config).to_dict()
    status = run_state(folder)
    row = {"run": folder.path.relative_to(root).as_posix(), "status": status,
           **dict.fromkeys(RESULTS), "updated": _updated(folder)}
    if status == "finished":
        row.update(_summary_results(folder.summary))
    elif folder.metrics.exists():
        metrics = folder.read_metrics()
        if len(metrics["step"]):
            row.update(steps=int(metrics["step"][-1]), epochs=float(metrics["epoch"][-1]),
                       train_acc=float(metrics["train_acc"][-1]),
                       val_acc=float(metrics["val_acc"][-1]))
    return config, row


def _summary_results(path):
    """steps, epochs, accuracies and seconds of a finished run's summary.json."""
    try:
        summary = json.loads(read_regular(path))
    except (ValueError, RecursionError) as err:
        raise UserError(f"{path}: not a run summary (not JSON: {err})") from None
    if not isinstance(summary, dict):
        raise UserError(f"{path}: not a run summary (not a JSON object)")
    plain = summary.get("without_tta")
    results = {"steps": summary.get("steps"), "epochs": summary.get("epochs"),
               "train_acc": summary.get("train_acc"), "seconds": summary.get("seconds")}
    if isinstance(plain, dict):  # trained with tta: the top-level figures are augmented
        results.update(val_acc=plain.get("val_acc"), test_acc=plain.get("test_acc"),
                       val_acc_tta=summary.get("val_acc"), test_acc_tta=summary.get("test_acc"))
    else:
        results.update(val_acc=summary.get("val_acc"), test_acc=summary.get("test_acc"))
    for key, value in results.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserError(f"{path}: not a run summary ({key} is not a number)")
    return results


def _updated(folder):
    """The local time any of the run's files last changed, "YYYY-MM-DD HH:MM"."""
    times = [os.stat(folder.path / name).st_mtime for name in RUN_FILES
             if (folder.path / name).exists()]
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(max(times)))


def _differing(configs):
    """The names of the settings whose values differ between `configs`, in settings order."""
    if not configs:
        return []
    return [name for name in configs[0] if name not in NOT_COMPARED
            and any(c[name] != configs[0][name] for c in configs[1:])]
