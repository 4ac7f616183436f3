"""A coarse-to-fine random search over training settings: its plan, and the driver that runs
the plan's stages on an executor (`workers`) and keeps the search folder.

Stage 0 draws its trials from the plan's space; stage s > 0 from that space narrowed around
the best trials (by validation accuracy) of each stage before it, a function of the journal
alone. Trial t of stage s trains with the settings `sample(space_s, seed, s, t, n_s)` (the
stage's n_s trials form a Latin hypercube) and the seed `trial_seed(seed, s, t)`, so one
search gives the same table in one process, in W, on a Dask cluster, or stopped and resumed. Test accuracy is reported, never used to choose.

The search folder:

    search.json   the plan (written once; a resumed search must match it)
    search.jsonl  the journal: start, point and finish events (`journal.py`)
    search.csv    one row per finished trial, rewritten after each
    search.png    validation accuracy against each parameter, redrawn after each stage
    best/         the best trial trained again with the retrain budget: a run folder
                  (config.toml, metrics.csv, model.npz, summary.json, figures)
"""
import contextlib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

from ...errors import DataError, SettingError, UserError, require
from ...schedules import SCHEDULES
from ...settings import MAX_SEED, SETTINGS, check_settings
from ...training.config import RECORDED, TrainConfig, resolve_config
from ...training.folder import RunFolder
from ...training.loop import Diverged
from ...training.run import run_blas, train
from ...util.atomic import atomic_write
from .figure import search_figure
from .journal import Journal
from .optuna_mirror import open_mirror
from .pruning import MedianPruner
from .space import (Space, check_stage, format_value, narrow, parse_budget, parse_space,
                    parse_stage, sample, trial_seed)
from .workers import SETTLE_TIMEOUT, InProcess, TrialTask, braced, dispatch, past_deadline

SEARCH_FILE = "search.json"
FIGURE = "search.png"
BEST = "best"
STOP_RULE = ("cycles", "epochs", "steps")
# Settings a search does not draw: the data and its split (the validation set must stay
# one), seeds and stop rules (the search sets them), and bookkeeping.
NOT_SEARCHED = ("data", "labels", "split", "n_val", "seed", *STOP_RULE, "eval_every",
                "checkpoint_every", "threads")
_PARAM_TYPES = {"widths": tuple, "choice": str}
SEARCHABLE = {name: _PARAM_TYPES.get(s.kind, s.kind) for name, s in SETTINGS.items()
              if name not in NOT_SEARCHED}
# Stages when none are given, by whether the schedule is cyclical: many short trials, then
# half as many trained longer around the best of them.
DEFAULT_STAGES = {True: ("16:2cycles", "8:3cycles"), False: ("16:4epochs", "8:8epochs")}
# What one checkpoint (an evaluation, a pruning point) of a trial spans, by budget unit.
CHECKPOINT_UNIT = {"cycles": "cycles", "epochs": "epochs", "steps": "epochs"}


@dataclass(frozen=True)
class SearchPlan:
    """What a search does.

    base: the settings every trial shares ({name: value}, as TrainConfig.to_dict gives
    them, without the searched settings, the stop rule and the seed); space: the Space of
    stage 0; stages: ((n_trials, Budget), ...); seed: the search's seed; top_k: trials a
    stage narrows around; pruner: a MedianPruner, or None for no pruning; retrain: the
    Budget the best trial is trained again with, or None; notes: what was decided for the
    user, one line each. timeout: seconds after which a run of the search starts no more
    trials (those running finish), or None; trial_timeout: seconds of training after which a
    trial is stopped (status "timeout"), or None. optuna_journal: the Optuna journal file
    (an absolute path) that mirrors the finished trials (`optuna_mirror`), or None. A resumed
    search may change these three and may add stages after its own (`resumable_as`);
    nothing else.
    """

    base: dict
    space: Space
    stages: tuple
    seed: int = 0
    top_k: int = 2
    pruner: MedianPruner = None
    retrain: object = None
    notes: tuple = ()
    timeout: float = None
    trial_timeout: float = None
    optuna_journal: str = None

    def __post_init__(self):
        object.__setattr__(self, "stages", tuple(check_stage(tuple(s)) for s in self.stages))
        object.__setattr__(self, "notes", tuple(self.notes))
        require(isinstance(self.base, dict), "base", f"must be a dict, got {self.base!r}")
        object.__setattr__(self, "base", check_settings(self.base))
        require(len(self.space) > 0, "param", "is missing: give at least one setting to "
                                               "search, NAME=SPEC (e.g. lam=1e-5:1e-1:log)")
        require(len(self.stages) > 0, "stage", "is missing: give at least one stage, "
                                               "N_TRIALS:BUDGET")
        require(isinstance(self.top_k, int) and self.top_k >= 1, "top_k",
                f"must be a whole number >= 1, got {self.top_k!r}")
        require(isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED, "seed",
                f"must be in [0, {MAX_SEED}], got {self.seed!r}")
        for name in ("timeout", "trial_timeout"):
            value = getattr(self, name)
            require(value is None or isinstance(value, (int, float)) and not isinstance(
                value, bool) and 0 < value < math.inf, name,
                    f"must be a number of seconds > 0, got {value!r}")
        for param in self.space:
            _check_values(param)
        clash = sorted(set(self.base) & {*self.space.names, *STOP_RULE, "seed"})
        require(not clash, clash[0] if clash else "", "is set by the search, not by its base")

    def trial(self, space, stage, trial):
        """(settings, config) of trial `trial` of `stage` drawn from `space`: the drawn
        settings {name: value}, and every setting of the trial's TrainConfig (a dict)."""
        settings = sample(space, self.seed, stage, trial, n_trials=self.stages[stage][0])
        return settings, {**self.base, **settings, **self.stages[stage][1].settings(),
                          "seed": trial_seed(self.seed, stage, trial)}

    def retrain_config(self, best):
        """The TrainConfig settings of the best trial (a finish record) with the retrain
        budget: its settings and seed."""
        return {**self.base, **best["settings"], **self.retrain.settings(),
                "seed": best["seed"]}

    def to_json(self):
        """The plan as JSON-ready data (what search.json holds)."""
        return {"base": self.base, "params": [str(p) for p in self.space],
                "stages": [f"{n}:{budget}" for n, budget in self.stages], "seed": self.seed,
                "top_k": self.top_k, "prune": asdict(self.pruner) if self.pruner else None,
                "retrain": str(self.retrain) if self.retrain else None,
                "notes": list(self.notes), "timeout": self.timeout,
                "trial_timeout": self.trial_timeout, "optuna_journal": self.optuna_journal}

    @classmethod
    def from_json(cls, d):
        """The plan that `to_json` wrote as d; UserError (or KeyError, TypeError) unless d
        is one."""
        if not isinstance(d, dict):
            raise TypeError(f"a JSON object, not {type(d).__name__}")
        d = {"notes": [], "timeout": None, "trial_timeout": None, "optuna_journal": None, **d}
        for key, kind in _PLAN_FIELDS.items():
            if not isinstance(d[key], kind) or kind is int and isinstance(d[key], bool):
                raise TypeError(f"{key} is not {_KIND_NAMES[kind]}")
        for key in ("params", "stages", "notes"):
            if not all(isinstance(text, str) for text in d[key]):
                raise TypeError(f"{key} are not strings")
        return cls(base=d["base"], space=parse_space(d["params"], SEARCHABLE),
                   stages=tuple(parse_stage(s) for s in d["stages"]), seed=d["seed"],
                   top_k=d["top_k"], pruner=MedianPruner(**d["prune"]) if d["prune"] else None,
                   retrain=parse_budget(d["retrain"]) if d["retrain"] else None,
                   notes=tuple(d["notes"]), timeout=d["timeout"],
                   trial_timeout=d["trial_timeout"], optuna_journal=d["optuna_journal"])

    def resumable_as(self, other, folder):
        """SettingError unless `other` continues the search of this plan in `folder`: the
        same plan but for its timeouts, its notes, and stages added after this plan's (whose
        trials are drawn as before, so the earlier stages' table stays as it was)."""
        mine, theirs = self.to_json(), other.to_json()
        differ = [key for key in mine if key not in _MAY_CHANGE and mine[key] != theirs[key]]
        if differ:
            raise SettingError("resume", braced(f"{folder}: the search there has another "
                                                f"{differ[0]}"))
        if theirs["stages"][:len(mine["stages"])] != mine["stages"]:
            raise SettingError("stage", braced(
                f"cannot change when resuming: the search in {folder} has the stages "
                f"{' '.join(mine['stages'])}; more can only follow them"))


# What search.json holds: {key: its JSON type}.
_PLAN_FIELDS = {"base": dict, "params": list, "stages": list, "seed": int, "top_k": int,
                "prune": (dict, type(None)), "retrain": (str, type(None)), "notes": list,
                "timeout": (int, float, type(None)), "trial_timeout": (int, float, type(None)),
                "optuna_journal": (str, type(None))}
_KIND_NAMES = {dict: "an object", list: "a list", int: "a whole number",
               (dict, type(None)): "an object or null", (str, type(None)): "a string or null",
               (int, float, type(None)): "a number or null"}
# What a resumed search may change of its plan (stages, it may extend: see resumable_as).
_MAY_CHANGE = ("notes", "timeout", "trial_timeout", "optuna_journal", "stages")


def _check_values(param):
    """SettingError("param") unless each end of a range and each choice is a value the
    setting can take."""
    for value in (param.low, param.high) if param.is_range else param.choices:
        try:
            SETTINGS[param.name].check(value)
        except SettingError as err:
            raise SettingError("param", f"{braced(str(param))}: {{{err.setting}}} "
                                        f"{err.template}") from None


def plan_search(params, stages=None, *, preset=None, config_file=None, settings=None, seed=0,
                top_k=2, pruner=None, retrain=None, optuna_journal=None, timeout=None,
                trial_timeout=None):
    """The SearchPlan of a search as the command line states it; every mistake is a
    SettingError here, before anything runs.

    params: texts `NAME=SPEC` (see `space.parse_param`) or a Space; stages: texts
    `N:BUDGET` or (n, Budget) pairs (default DEFAULT_STAGES); preset, config_file,
    settings: the base, as `resolve_config` takes them (defaults < preset < config file <
    settings); retrain: a Budget or its text; optuna_journal: a path (kept absolute) or None;
    timeout, trial_timeout: seconds (SearchPlan's), or None.
    As in `resolve_config`, a budget in cycles or a searched cyclical setting chooses a
    triangular schedule when no source chose one.
    """
    space = params if isinstance(params, Space) else parse_space(params, SEARCHABLE)
    for param in space:
        _check_values(param)
    settings = dict(settings or {})
    _refuse_set_by_search(settings, space)
    stages = None if stages is None else tuple(
        parse_stage(s) if isinstance(s, str) else tuple(s) for s in stages)
    retrain = parse_budget(retrain, "retrain_best") if isinstance(retrain, str) else retrain
    # A value per searched setting, so that resolve_config sees which are given: they are
    # drawn per trial, and left out of the base.
    probe = {p.name: p.value_at(0.5) for p in space}
    config, notes = _resolve_base(preset, config_file, settings, probe, stages, retrain)
    if stages is None:
        stages = tuple(parse_stage(s) for s in DEFAULT_STAGES[SCHEDULES[config.schedule].cyclical])
        notes.append("stages " + " ".join(f"{n}:{b}" for n, b in stages) + " (the default)")
    base = {name: value for name, value in config.to_dict().items()
            if name not in {*space.names, *STOP_RULE, "seed"}}
    base["blas"] = run_blas(config.blas)  # the driver decides for every worker
    plan = SearchPlan(base, space, stages, seed, top_k, pruner, retrain, tuple(notes),
                      timeout, trial_timeout,
                      optuna_journal=optuna_journal and os.path.abspath(optuna_journal))
    for text, setting, budget in _budgets(stages, retrain):
        _check_budget(plan, probe, budget, setting, text)
    return plan


def _check_memory(plan, executor, cache_dir):
    """SettingError("param") naming a searched value (an end of a range, a choice) whose
    network cannot fit in the memory where the trials run, before anything is written:
    every trial drawing it would fail (see `workers.memory_problem`)."""
    candidates = [(p.name, [p.low, p.high] if p.is_range else list(p.choices))
                  for p in plan.space]
    settings = {**plan.base, **plan.stages[0][1].settings(), "seed": 0}
    problem = executor.memory_problem(settings, candidates, cache_dir)
    if problem is not None:
        name, value, setting, template = problem
        raise SettingError("param", f"{braced(f'{name}={format_value(value)}')}: "
                                    f"{{{setting}}} {template}")


def _budgets(stages, retrain):
    """[(text, setting, Budget)] of the stages and the retraining, each as it was given."""
    given = [(f"{n}:{budget}", "stage", budget) for n, budget in stages or ()]
    return given + ([(str(retrain), "retrain_best", retrain)] if retrain else [])


def _resolve_base(preset, config_file, settings, probe, stages, retrain):
    """resolve_config of the base with the searched settings at `probe`, and a cycle for a
    stop rule when a budget is in cycles (so that a schedule is chosen as for `train`)."""
    in_cycles = next(((text, setting) for text, setting, budget in _budgets(stages, retrain)
                      if budget.kind == "cycles"), None)
    try:
        return resolve_config(preset, config_file,
                              {**settings, **probe, **({"cycles": 1} if in_cycles else {})})
    except SettingError as err:
        if err.setting == "cycles" and in_cycles:
            text, setting = in_cycles
        elif _involves(err, probe):
            text, setting = ", ".join(f"{name} {format_value(value)}" for name, value
                                      in probe.items()) + " (mid-range)", "param"
        else:
            raise
        raise SettingError(setting, f"{braced(text)}: {{{err.setting}}} {err.template}") \
            from None


def _refuse_set_by_search(settings, space):
    for name in settings:
        if name in STOP_RULE:
            raise SettingError(name, "is set per stage in a search: give budgets with "
                                     "{stage} N_TRIALS:BUDGET (e.g. 16:2cycles)")
        if name == "seed":
            raise SettingError(name, "of each trial is drawn from the search's seed")
        if name in space.names:
            raise SettingError(name, "is searched ({param}): give it one way")


def _involves(err, names):
    """Whether the SettingError err is about one of the settings `names`."""
    return bool({err.setting, *re.findall(r"{(\w+)}", err.template)} & set(names))


def _check_budget(plan, probe, budget, setting, text):
    """SettingError(setting) when the base cannot train for `budget`; what depends on the
    searched settings is left to each trial (which fails if it cannot)."""
    try:
        TrainConfig.from_dict({**plan.base, **probe, **budget.settings()})
    except SettingError as err:
        if not _involves(err, plan.space.names):
            raise SettingError(setting, f"{braced(text)}: {{{err.setting}}} "
                                        f"{err.template}") from None


# -- the driver -------------------------------------------------------------------------------

class Report:
    """Hears how a search goes (the command line prints it); the defaults do nothing.
    Records are the journal's finish records."""

    def stage(self, stage, space, budget, n_trials, n_to_run):
        """Stage `stage` starts: n_to_run of its n_trials trials (the others finished in an
        earlier run of the search), drawn from `space`, each trained for `budget`."""

    def trial(self, record):
        """A trial finished."""

    def stage_done(self, stage, records):
        """Every trial of `stage` finished: their records, in trial order."""

    def retraining(self, best, budget, folder):
        """The best trial is trained again for `budget` into the run folder `folder`."""

    def retrained(self, best, summary):
        """It was: its summary (summary.json's; {"status": "diverged", "reason"} if not)."""


@dataclass
class SearchResult:
    """folder: the search folder (Path); best: the finish record of the best trial (None
    when no trial ended ok); retrained: the summary of its retraining, or None; space: the
    plan's Space (for the figure)."""

    folder: Path
    best: dict = None
    retrained: dict = None
    records: list = field(default_factory=list, repr=False)  # every finish record
    space: Space = field(default=None, repr=False)
    unstarted: int = 0  # trials of the plan not started: its timeout came (resume runs them)

    def to_frame(self):
        """search.csv as a pandas DataFrame: a row per finished trial (`trial_table`)."""
        from ...util.optional import data_frame
        from .journal import trial_table

        header, rows = trial_table(self.records, None if self.space is None else self.space.names)
        return data_frame(rows, header)

    def plot(self, path=None):
        """search.png (`search_figure`): a Figure, saved to `path` first unless None."""
        return search_figure(self.records, self.space, path)


def run_search(plan, folder, executor=None, *, resume=False, report=None, cache_dir=None,
               settle_timeout=SETTLE_TIMEOUT, progress=False, logs=None):
    """Run (or, with resume, continue) the search of `plan` in `folder`; returns its
    SearchResult.

    executor: where trials run (default: `InProcess()`; see `workers`); the caller closes
    it. resume: the folder holds this plan's search, whose finished trials are kept and
    whose unfinished ones run again; otherwise it must not hold a search. report: a Report.
    cache_dir: the data cache, for every worker (None: each one's default).
    settle_timeout: seconds a trial waits at a pruning point for the earlier trials of its
    stage. One driver per folder (its claim, `runs.RunFolder`); the data (and
    plan.optuna_journal, `optuna_mirror`) is checked before anything is written. progress: a
    tqdm.auto bar of the finished trials (`progress.ProgressReport`). After plan.timeout
    seconds no trial starts: those running finish, their stage's table is written, and the
    result counts the trials left (`unstarted`; no retraining). logs: a
    `training.loggers.Logs` of the loggers that watch each trial and the retraining, their
    files under the search folder (one TensorBoard run and one MLflow run per trial).
    """
    executor = executor or InProcess()
    report = report or Report()
    if progress:
        from .progress import ProgressReport
        report = ProgressReport(report, plan)
    folder = Path(folder)
    run_blas(plan.base.get("blas", ""))
    executor.check_data(plan.base, cache_dir)
    _check_memory(plan, executor, cache_dir)
    mirror = open_mirror(plan, folder)
    logs = _logs_under(logs, folder)
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    with _claimed(folder, plan, resume):
        journal = Journal(folder)
        if logs:
            logs.prepare()
        mirror.sync(journal.finished(verified_records(plan, journal)).values())
        task_of = partial(_task, plan, folder=str(folder), settle_timeout=settle_timeout,
                          cache_dir=None if cache_dir is None else str(cache_dir),
                          logs=logs)
        for stage in range(len(plan.stages)):
            if past_deadline(deadline) or not _run_stage(
                    plan, journal, stage, executor, report, task_of, mirror, deadline):
                break
        records = list(journal.finished(verified_records(plan, journal)).values())
        best = best_trial(records)
        result = SearchResult(folder, best, None, records, plan.space,
                              unstarted=sum(n for n, _ in plan.stages) - len(records))
        if result.unstarted:
            return result
        if best is None:
            raise SearchFailed(result)
        if plan.retrain is not None:
            report.retraining(best, plan.retrain, folder / BEST)
            result.retrained = _retrain(plan, folder / BEST, best, cache_dir, logs)
            report.retrained(best, result.retrained)
    return result


class SearchFailed(UserError):
    """No trial of the search ended ok: `result` is its SearchResult (best None)."""

    def __init__(self, result):
        self.result = result
        counts = {}
        for r in result.records:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        first = next((r for r in result.records if r["reason"]), None)
        why = "" if first is None else (f"; stage {first['stage']} trial {first['trial']}: "
                                        f"{first['reason'].strip().splitlines()[0]}")
        super().__init__(f"{result.folder}: no trial of the search ended ok ("
                         + ", ".join(f"{n} {status}" for status, n in counts.items())
                         + f"){why}")


def holds_search(folder):
    """Whether `folder` holds a search to continue (its search.json): a job that may be
    requeued resumes it then, and starts it otherwise."""
    return os.path.lexists(Path(folder) / SEARCH_FILE)


def load_plan(folder):
    """The SearchPlan of the search in `folder` (its search.json); a UserError naming the
    file unless it holds one."""
    path = Path(folder) / SEARCH_FILE
    if not os.path.lexists(path):
        raise SettingError("resume", f"{braced(str(folder))}: no {SEARCH_FILE} there, so no "
                                     f"search to continue")
    try:
        data = json.loads(path.read_bytes())
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from None
    except (ValueError, RecursionError) as err:
        raise UserError(f"{path}: not a search plan (not JSON: {err})") from None
    try:
        return SearchPlan.from_json(data)
    except (UserError, KeyError, TypeError) as err:
        why = f"no {err}" if isinstance(err, KeyError) else str(err)
        # a name read from the file may hold line breaks
        why = why.replace("\n", "\\n").replace("\r", "\\r")
        raise UserError(f"{path}: not a search plan ({why})") from None


@contextlib.contextmanager
def _claimed(folder, plan, resume):
    """Own the search folder for the `with` block: its lock taken, its plan written (a new
    search) or matched (resume)."""
    stored = load_plan(folder) if resume else None
    owner = RunFolder(folder, "search")
    with owner.claim_resume() if resume else owner.claim_new():
        _match(folder, plan, stored) if resume else _write_plan(folder, plan)
        yield


def _write_plan(folder, plan):
    path = folder / SEARCH_FILE
    if path.exists():
        raise SettingError("out", braced(f"{folder} holds a search already: ")
                           + f"continue it with {{resume}} {braced(str(folder))}, or give "
                             f"another {{out}}")
    _save_plan(path, plan)


def _save_plan(path, plan):
    with atomic_write(path, "w") as file:
        json.dump(plan.to_json(), file, indent=2)


def _match(folder, plan, stored):
    """Check that `plan` continues the `stored` one's search; write it into search.json
    when it changes what may change (more stages, other timeouts)."""
    stored.resumable_as(plan, folder)
    plan = replace(plan, notes=stored.notes)
    if plan != stored:
        _save_plan(folder / SEARCH_FILE, plan)


def _task(plan, space, stage, trial, folder, cache_dir, settle_timeout, logs=None):
    settings, config = plan.trial(space, stage, trial)
    unit = CHECKPOINT_UNIT[plan.stages[stage][1].kind]
    return TrialTask(folder, stage, trial, settings, config, unit, plan.pruner, cache_dir,
                     settle_timeout, plan.trial_timeout, logs)


def _logs_under(logs, folder):
    """`logs` with its files under the search folder and an MLflow experiment named after
    it, its extras checked (before the folder is claimed); None for no logger."""
    if not logs or not logs.names:
        return None
    logs = replace(logs, root=str(folder), experiment=folder.resolve().name)
    logs.observers()
    return logs


def stage_space(plan, journal, stage, records=None):
    """The Space of `stage`: the plan's, narrowed in turn around the top_k trials of each
    stage before it. A function of the journal's records alone."""
    records = journal.read() if records is None else records
    space = plan.space
    for earlier in range(stage):
        space = narrow(space, journal.results(earlier, records), plan.top_k)
    return space


def verified_records(plan, journal):
    """The journal's records, each of a trial the plan has; a start or finish with the
    settings and seed the plan draws for its trial. A DataError naming the journal for any
    other (forged, or of another search), so that it is never taken as a result."""
    records = journal.read()
    by_stage = {}
    for r in records:
        if r["stage"] >= len(plan.stages) or r["trial"] >= plan.stages[r["stage"]][0]:
            raise DataError(f"{journal.path}: stage {r['stage']} trial {r['trial']} is not a "
                            f"trial of this search (its stages have "
                            f"{', '.join(str(n) for n, _ in plan.stages)} trials)")
        by_stage.setdefault(r["stage"], []).append(r)
    space = plan.space
    for stage in range(len(plan.stages)):
        for r in by_stage.get(stage, ()):
            if r["event"] != "point" and (r["settings"], r["seed"]) != \
                    _drawn(plan, space, stage, r["trial"]):
                raise DataError(f"{journal.path}: stage {stage} trial {r['trial']}: a "
                                f"{r['event']} record with settings or seed this search does "
                                f"not draw")
        space = narrow(space, journal.results(stage, records), plan.top_k)
    return records


def _drawn(plan, space, stage, trial):
    settings, config = plan.trial(space, stage, trial)
    return settings, config["seed"]


def _run_stage(plan, journal, stage, executor, report, task_of, mirror, deadline=None):
    """Run the unfinished trials of `stage`, none started after `deadline` (a
    time.monotonic(), or None); write its table and figure. Whether every one started."""
    records = verified_records(plan, journal)
    space = stage_space(plan, journal, stage, records)
    n_trials, budget = plan.stages[stage]
    done = journal.finished(records)
    tasks = [task_of(space, stage, t) for t in range(n_trials) if (stage, t) not in done]
    report.stage(stage, space, budget, n_trials, len(tasks))
    left = dispatch(executor, tasks,
                    lambda task: journal.start(task.stage, task.trial, task.settings, task.seed),
                    partial(_finished, plan, journal, report, mirror), deadline)
    finished = journal.finished(verified_records(plan, journal))
    journal.write_csv(plan.space.names)  # again, should a resumed search find it gone
    search_figure(finished.values(), plan.space, journal.folder / FIGURE)
    report.stage_done(stage, [r for (s, _), r in finished.items() if s == stage])
    return not left


def _finished(plan, journal, report, mirror, task, outcome):
    """Where a trial's end is recorded: the journal, the table, the mirror, the report."""
    record = journal.finish(task.stage, task.trial, task.settings, task.seed,
                            **asdict(outcome))
    journal.write_csv(plan.space.names)
    mirror.add(record)
    report.trial(record)


def best_trial(records):
    """The finish record with the highest validation accuracy among the trials that ended
    ok (ties: the later stage, whose budget is usually longer, then the earlier trial), or
    None."""
    ok = [r for r in records if r["status"] == "ok" and r["val_acc"] is not None
          and math.isfinite(r["val_acc"])]
    return max(ok, key=lambda r: (r["val_acc"], r["stage"], -r["trial"]), default=None)


def _retrain(plan, out, best, cache_dir, logs=None):
    """Train the best trial again with the retrain budget into the run folder `out`; a
    retraining of this trial that finished before (the search was resumed) is not run
    again; one of another trial (a stage added since found a better one) is replaced."""
    folder = RunFolder(out)
    config = TrainConfig.from_dict(plan.retrain_config(best))
    if os.path.lexists(folder.summary) and os.path.lexists(folder.model) and \
            _retrained_as(folder, config):
        return read_retrained(folder.summary)
    try:
        return train(config, out=out, cache_dir=cache_dir, overwrite=True,
                     observers=logs.observers(BEST) if logs else ())[1]
    except Diverged as err:
        return {"status": "diverged", "reason": str(err)}


def _retrained_as(folder, config):
    """Whether the run in `folder` was trained as `config` says, but for what a run records
    as it starts (the data's path and digest, the BLAS); a config.toml that is missing or
    unreadable says no (the retraining runs again)."""
    try:
        done = TrainConfig.from_toml(folder.config)
    except (OSError, UserError):
        return False
    return not done.differences(config, ignore=RECORDED)


def read_retrained(path):
    """The summary.json of the best trial's retraining at `path`; a UserError naming it
    unless it holds the train, validation and test accuracies."""
    try:
        summary = json.loads(Path(path).read_bytes())
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from None
    except (ValueError, RecursionError) as err:
        raise UserError(f"{path}: not a run summary (not JSON: {err})") from None
    if not isinstance(summary, dict):
        raise UserError(f"{path}: not a run summary (not a JSON object)")
    for key in ("train_acc", "val_acc", "test_acc"):
        value = summary.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value <= 1:
            raise UserError(f"{path}: not a run summary ({key} is not an accuracy in [0, 1])")
    return summary
