"""Random search over training settings, coarse to fine.

`space`: the parameters (`lam=1e-5:1e-1:log`, `hidden=50,100`), seeded draws of a trial's
settings and seed, the narrowing of a stage's space around its best trials, and stages
(`16:2cycles`). `journal`: the search's events as JSON lines, safe with many writers, and
its `search.csv`. `pruning`: median pruning whose decisions do not depend on timing.
`runner`: the plan and the driver (`plan_search`, `run_search`); `workers`: the trial and
the executors that run trials here, in local processes or on a Dask cluster (imported when
first asked for: they load Numba). `optuna_mirror`: the finished trials copied into an
Optuna journal file, for optuna-dashboard.
"""
from importlib import import_module

from .journal import Journal
from .pruning import MedianPruner, reference_points
from .space import (Budget, Param, Space, narrow, parse_budget, parse_param, parse_space,
                    parse_stage, sample, top_trials, trial_seed)

__all__ = ["Budget", "Journal", "MedianPruner", "Param", "Space", "narrow", "parse_budget",
           "parse_param", "parse_space", "parse_stage", "reference_points", "sample",
           "top_trials", "trial_seed", "SearchPlan", "SearchResult", "Report", "plan_search",
           "run_search", "load_plan", "InProcess", "LocalProcesses", "DaskCluster",
           "TrialTask", "TrialOutcome", "run_trial"]

_LAZY = {**dict.fromkeys(("SearchPlan", "SearchResult", "Report", "plan_search", "run_search",
                          "load_plan"), "runner"),
         **dict.fromkeys(("InProcess", "LocalProcesses", "DaskCluster", "TrialTask",
                          "TrialOutcome", "run_trial"), "workers")}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
