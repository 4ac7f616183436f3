"""A copy of a search's finished trials in an Optuna journal file, so that
`optuna-dashboard PATH` shows the search as it runs (`search --optuna-journal PATH`).

The search itself stays the native one (`runner`); this is a sink that hears each finish
record the driver journals, written with Optuna's own storage API (its `JournalStorage`
over a `JournalFileBackend`), never by hand. Each search is one study of the file, named
after the search folder, direction maximize (validation accuracy). A trial becomes:

    params             the searched settings, with the distributions of the search's space
                       (stage 0's, which every narrowed stage stays inside; hidden widths
                       as their text, "50x50", a categorical)
    state, value       ok: COMPLETE with val_acc; pruned: PRUNED with its last val_acc (as
                       Optuna's own `tell` gives a pruned trial); diverged, failed: FAIL
    intermediate       the validation accuracy at each checkpoint (pruning point), by index
    user attrs         stage, trial, seed, budget, status, reason, train_acc, test_acc,
                       seconds: what the search sets or measures rather than searches

The study's user attrs hold the search folder and its plan (search.json but its notes): a
study of that name made by another plan is refused, so two searches never mix in one
study; other searches' studies in the file are left alone. Trials are keyed by (stage,
trial), so a resumed search adds only what the study lacks, including trials that finished
while the mirror was not written (a driver killed between the two writes).
"""
import contextlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from ...errors import SettingError, UserError, first_line, literal
from ...util.optional import optional
from .space import format_value

SETTING = "optuna_journal"
# The Optuna state of each status; a trial stopped at the time limit counts as failed, as
# in the search.
STATES = {"ok": "COMPLETE", "pruned": "PRUNED", "diverged": "FAIL", "failed": "FAIL",
          "timeout": "FAIL"}
ATTRS = ("stage", "trial", "seed", "status", "reason", "train_acc", "test_acc", "seconds")
# What makes a search that search, of its plan (search.json): what draws and judges its
# trials. Its stages too, but a resumed search may add stages after them.
IDENTITY = ("base", "params", "seed", "top_k", "prune", "stages")
# What Optuna's replay raises on lines that are JSON but not its log (a KeyError for a
# missing "op_code", an AssertionError for an unknown one, ...).
_NOT_A_LOG = (ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError)


class NoMirror:
    """The sink of a search without --optuna-journal: hears, does nothing."""

    def sync(self, records):
        """Add the finish records the study does not hold yet."""

    def add(self, record):
        """Add one finish record."""


def open_mirror(plan, folder):
    """The sink of the search of `plan` in `folder`: NoMirror without plan.optuna_journal,
    else an OptunaMirror checked now (Optuna installed, the file's folder there, the file
    an Optuna journal or absent, its study of this name this plan's) but written to only
    from `sync` on. A SettingError naming the file otherwise."""
    if plan.optuna_journal is None:
        return NoMirror()
    return OptunaMirror(plan.optuna_journal, study_name(folder), plan, folder)


def study_name(folder):
    """The study of the search in `folder`: the folder's name."""
    return Path(os.path.abspath(folder)).name


def _fail(path, why):
    raise SettingError(SETTING, literal(f"{path}: {why}"))


class OptunaMirror:
    """Finish records (`Journal.finish`'s) as trials of the study `name` in the Optuna
    journal file `path`."""

    def __init__(self, path, name, plan, folder):
        self.optuna = optional("optuna", "optuna", "mirroring a search into an Optuna journal")
        self.path, self.name, self.space = str(path), name, plan.space
        self.identity = _identity(plan)
        self.folder = os.path.abspath(folder)
        self.budgets = [str(budget) for _, budget in plan.stages]
        self.storage = _storage(self.optuna, self.path)
        self.study, self.mirrored = None, set()
        with _quiet(self.optuna):
            try:
                existing = self.optuna.load_study(study_name=name, storage=self.storage)
            except KeyError:  # no study of this name yet
                existing = None
        if existing is not None:
            self._check_owner(existing)

    def _check_owner(self, study):
        if not _same_search(study.user_attrs.get("plan"), self.identity):
            _fail(self.path, f"its study {self.name!r} is another search's (of "
                             f"{study.user_attrs.get('search', 'another tool')}): give "
                             f"another file, or name the search folder otherwise")

    def sync(self, records):
        """Open the study (made now if new, so that the dashboard lists it from the start)
        and add the finish records it lacks."""
        self._ready()
        for record in records:
            self.add(record)

    def add(self, record):
        """Add the trial of one finish record, unless the study holds it already."""
        self._ready()
        key = (record["stage"], record["trial"])
        if key in self.mirrored:
            return
        with _writing(self.path):
            self.study.add_trial(self._trial(record))
        self.mirrored.add(key)

    def _ready(self):
        if self.study is None:
            self.study = self._open()
            self.mirrored = {(t.user_attrs.get("stage"), t.user_attrs.get("trial"))
                             for t in self.study.get_trials(deepcopy=False)}

    def _open(self):
        with _quiet(self.optuna), _writing(self.path):
            study = self.optuna.create_study(storage=self.storage, study_name=self.name,
                                             direction="maximize", load_if_exists=True)
            if "plan" not in study.user_attrs:  # made now (a study is empty until then)
                study.set_user_attr("search", self.folder)
                study.set_user_attr("plan", self.identity)
            self._check_owner(study)
            if study.user_attrs["plan"] != self.identity:  # resumed with more stages
                study.set_user_attr("plan", self.identity)
        return study

    def _trial(self, record):
        """The FrozenTrial of a finish record, timed as the search ran it."""
        optuna = self.optuna
        state = STATES[record["status"]]
        value = record["val_acc"] if state != "FAIL" else None
        if value is None:
            state = "FAIL"  # an ok trial without a validation accuracy has no value to show
        attrs = {key: record[key] for key in ATTRS}
        trial = optuna.trial.create_trial(
            state=getattr(optuna.trial.TrialState, state), value=value,
            params={p.name: _param_value(p, record["settings"][p.name]) for p in self.space},
            distributions={p.name: _distribution(optuna, p) for p in self.space},
            intermediate_values={i: v for i, v in enumerate(record["points"]) if v is not None},
            user_attrs={**attrs, "budget": self.budgets[record["stage"]]})
        trial.datetime_complete = datetime.fromtimestamp(record["time"])
        trial.datetime_start = trial.datetime_complete - timedelta(seconds=record["seconds"] or 0)
        return trial


def _identity(plan):
    """The IDENTITY of a plan, as JSON reads it back."""
    data = plan.to_json()
    return json.loads(json.dumps({key: data[key] for key in IDENTITY}))


def _same_search(stored, mine):
    """Whether the identity `stored` (a study's, None if it has none) is the search `mine`,
    or an earlier run of it with fewer stages."""
    if not isinstance(stored, dict) or set(stored) != set(mine) or \
            not isinstance(stored["stages"], list):
        return False
    return all(stored[k] == mine[k] for k in mine if k != "stages") and \
        mine["stages"][:len(stored["stages"])] == stored["stages"]


def _param_value(param, value):
    return format_value(value) if param.type is tuple else value


def _distribution(optuna, param):
    """The Optuna distribution of a Param: its range (log or not) or its choices."""
    dist = optuna.distributions
    if not param.is_range:
        return dist.CategoricalDistribution([_param_value(param, c) for c in param.choices])
    kind = dist.IntDistribution if param.type is int else dist.FloatDistribution
    return kind(param.low, param.high, log=param.scale == "log")


def _storage(optuna, path):
    """Optuna's JournalStorage of the file at `path`, read through once; a SettingError
    naming it when its folder is missing or it is no Optuna journal (nothing written)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        _fail(path, f"no folder {parent} to write it in")
    if os.path.isdir(path):
        _fail(path, "a folder, not a file")
    if os.path.lexists(path):
        _check_whole(path)
    elif not os.access(parent, os.W_OK):
        _fail(path, f"cannot write in {parent}")
    journal = optuna.storages.journal
    try:
        # the open lock (an O_EXCL file) works on every platform, the symlink one not
        return journal.JournalStorage(journal.JournalFileBackend(
            path, lock_obj=journal.JournalFileOpenLock(path)))
    except OSError as err:
        _fail(path, f"cannot open ({err.strerror or err})")
    except _NOT_A_LOG as err:
        _fail(path, f"not an Optuna journal ({type(err).__name__}: {first_line(err)})")


def _check_whole(path):
    """Refuse a file whose last line is cut or not JSON: Optuna's reader passes over its
    last line when it is, and would fail only once a log follows it (ours)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        _fail(path, f"cannot read ({err.strerror or err})")
    if not data:
        return
    if not data.endswith(b"\n"):
        _fail(path, "not an Optuna journal (its last line does not end)")
    try:
        json.loads(data[:-1].rsplit(b"\n", 1)[-1])
    except ValueError:
        _fail(path, "not an Optuna journal (its last line is not JSON)")


@contextlib.contextmanager
def _writing(path):
    """An OSError while writing the journal as a UserError naming it."""
    try:
        yield
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err})") from None


@contextlib.contextmanager
def _quiet(optuna):
    """Optuna's INFO lines ("A new study created ...") held back, its verbosity restored."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
