"""`cifar-engine search`: a coarse-to-fine random search over training settings."""
import os
import time
from dataclasses import replace

import click
from click.core import ParameterSource

from cifar_engine.cli.options import (data_options, given_settings, log_options,
                                      option_group, preset_options, setting_option,
                                      split_options, train_options)
from cifar_engine.settings import MODEL

search_options = option_group(
    click.option("--param", "params", multiple=True, metavar="NAME=SPEC",
                 help="A setting to search (repeat for more): NAME=LOW:HIGH (uniform), "
                      "NAME=LOW:HIGH:log (log-uniform), or NAME=A,B,C (a choice; hidden "
                      "widths as 50x50,100,none). Any model or training setting but the "
                      "data, split, seed, stop rule and bookkeeping."),
    click.option("--stage", "stages", multiple=True, metavar="N:BUDGET",
                 help="A stage of N trials, each trained for BUDGET (e.g. 2cycles, 4epochs, "
                      "500steps); repeat for more. Each stage after the first searches "
                      "around the --top-k best of the one before.  [default: 16:2cycles "
                      "8:3cycles, or 16:4epochs 8:8epochs with a constant schedule]"),
    click.option("--top-k", type=int, default=2, show_default=True,
                 help="Trials (by validation accuracy) the next stage narrows around."),
    click.option("--prune", is_flag=True,
                 help="Stop a trial whose validation accuracy after a cycle (an epoch, when "
                      "the budget is in epochs or steps) is below the median of the earlier "
                      "trials' at that point (the first 5 trials of a stage are never stopped)."),
    click.option("--retrain-best", metavar="BUDGET", default=None,
                 help="Train the best trial again for BUDGET (e.g. 3cycles) into OUT/best "
                      "and report its train, validation and test accuracy."),
    setting_option("seed", help="The search's seed: trial t of stage s draws its settings "
                                "and training seed from (seed, s, t)."),
    click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Trials at once, each in a process of its own with its share of the "
                      "cores (1: one after another in this process)."),
    click.option("--dask", metavar="ADDRESS|FILE", default=None,
                 help="Run the trials on the Dask cluster of this scheduler (one trial per "
                      "worker thread): its address (tcp://HOST:PORT) or its scheduler file "
                      "(JSON, as `dask scheduler --scheduler-file` writes it); the workers "
                      "read --data and write the search folder's journal, so both must be at "
                      "the same paths there."),
    click.option("--out", type=click.Path(file_okay=False), default=None,
                 help="Search folder.  [default: runs/search-<timestamp>]"),
    click.option("--resume", type=click.Path(file_okay=False), default=None,
                 help="Continue the search in this folder: its finished trials are kept, "
                      "the others run. --stage may add stages after its own; --timeout "
                      "and --trial-timeout may change."),
    click.option("--resume-if-exists", is_flag=True,
                 help="With --out: continue the search of these options there (as --resume) "
                      "when there is one, else start it (a job that may be requeued runs "
                      "this)."),
    click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                 metavar="SECONDS",
                 help="Start no trial after SECONDS (those running finish); --resume runs "
                      "the rest."),
    click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                 metavar="SECONDS",
                 help="Stop a trial after SECONDS of training (status timeout, never the "
                      "best)."),
    click.option("--optuna-journal", type=click.Path(dir_okay=False), default=None,
                 metavar="PATH",
                 help="Also write each finished trial into this Optuna journal file (as a "
                      "study named after the search folder), to watch the search with "
                      "`optuna-dashboard PATH`. Kept by --resume, which may also give one. "
                      "Needs the optuna extra."),
)

# Options whose parameter is named otherwise than the setting its errors name.
_SETTING_OF_OPTION = {"params": "param", "stages": "stage"}


def _same_as_planned():
    """{option: same(plan, value)} of the search options a resumed search must leave as
    they were: whether a value given for it matches the plan (--stage, which may add
    stages, the engine checks: `SearchPlan.resumable_as`)."""
    from cifar_engine.tune.search.runner import SEARCHABLE
    from cifar_engine.tune.search.space import parse_budget, parse_space

    return {
        "params": lambda plan, texts: parse_space(texts, SEARCHABLE) == plan.space,
        "seed": lambda plan, seed: seed == plan.seed,
        "top_k": lambda plan, k: k == plan.top_k,
        "prune": lambda plan, prune: prune == (plan.pruner is not None),
        "retrain_best": lambda plan, text: parse_budget(text, "retrain_best") == plan.retrain,
    }


@click.command()
@preset_options
@search_options
@option_group(*(setting_option(name) for name in MODEL))
@data_options
@split_options
@train_options
@log_options
@click.pass_context
def search(ctx, preset, config_file, params, stages, top_k, prune, retrain_best, seed,
           workers, dask, out, resume, resume_if_exists, timeout, trial_timeout,
           optuna_journal, cache_dir, log, tracking_uri, **options):
    """Search training settings at random, coarse to fine, over stages of trials.

    Trial t of stage s trains with settings drawn from the stage's space and a seed, both
    from (--seed, s, t); stage s > 0 searches around the --top-k best trials of stage
    s - 1, by validation accuracy (test accuracy is reported, never used to choose). So
    one search gives the same table in one process, with --workers, on --dask, or stopped
    and resumed.

    The search folder holds search.json (the plan), search.jsonl (the journal),
    search.csv (a row per finished trial), search.png and, with --retrain-best, best/ (a
    run folder). Options not searched are shared by every trial, as `train` takes them.
    """
    from cifar_engine.training.loggers import Logs
    from cifar_engine.tune.search.pruning import MedianPruner
    from cifar_engine.tune.search.runner import holds_search, load_plan, plan_search, run_search

    given = given_settings(ctx, options)
    if dask and _given(ctx, "workers"):
        raise click.UsageError("give --workers or --dask, not both")
    if resume_if_exists and (resume or not out):
        raise click.UsageError("--resume-if-exists needs --out, and takes no --resume")
    if resume:
        if preset or config_file or out:
            raise click.UsageError("--resume continues a search as its search.json says: "
                                   "give no --preset, --config or --out with it")
        plan, folder = load_plan(resume), resume
        _check_unchanged(ctx, plan, given)
        plan = replace(plan, **_resume_changes(ctx, stages, timeout, trial_timeout,
                                               optuna_journal))
    else:
        plan = plan_search(params, stages or None, preset=preset, config_file=config_file,
                           settings=given, seed=seed, top_k=top_k,
                           pruner=MedianPruner() if prune else None, retrain=retrain_best,
                           optuna_journal=optuna_journal, timeout=timeout,
                           trial_timeout=trial_timeout)
        folder = out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}"
        resume = resume_if_exists and holds_search(out) and folder
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    with _executor(workers, dask) as executor:
        try:
            result = run_search(plan, folder, executor, resume=bool(resume),
                                report=_Printer(plan), cache_dir=cache_dir,
                                logs=Logs(log, tracking_uri))
        except KeyboardInterrupt:
            click.echo(f"cifar-engine: continue with: cifar-engine search --resume {folder}",
                       err=True)
            raise
    _print_end(result)
    if result.unstarted:
        click.echo(f"cifar-engine: the search started no trial after its timeout of "
                   f"{plan.timeout:g} s ({result.unstarted} not run); continue with: "
                   f"cifar-engine search --resume {folder}", err=True)


def _resume_changes(ctx, stages, timeout, trial_timeout, optuna_journal):
    """What a resumed search takes from the command line: stages (the plan's, then more),
    its timeouts and its Optuna journal, each when given."""
    from cifar_engine.tune.search.space import parse_stage

    changes = {"stages": tuple(map(parse_stage, stages)), "timeout": timeout,
               "trial_timeout": trial_timeout,
               "optuna_journal": optuna_journal and os.path.abspath(optuna_journal)}
    return {name: value for name, value in changes.items() if _given(ctx, name)}


def _given(ctx, name):
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                              ParameterSource.ENVIRONMENT)


def _check_unchanged(ctx, plan, given):
    """SettingError for an option given beside --resume that differs from the plan."""
    from cifar_engine.errors import SettingError
    from cifar_engine.settings import SETTINGS

    for name, value in given.items():
        if name not in plan.base:
            raise SettingError(name, "is searched or set per stage by the search resumed")
        kept = SETTINGS[name].check(plan.base[name])
        if SETTINGS[name].check(value) != kept:
            raise SettingError(name, f"cannot change when resuming (the search has {kept!r})")
    for name, same in _same_as_planned().items():
        if _given(ctx, name) and not same(plan, ctx.params[name]):
            raise SettingError(_SETTING_OF_OPTION.get(name, name),
                               "cannot change when resuming (see the search's search.json)")


def _executor(workers, dask):
    from cifar_engine.tune.search.workers import DaskCluster, InProcess, LocalProcesses

    if dask:
        executor = DaskCluster(dask)
        if not executor.client.nthreads():
            click.echo(f"waiting for a dask worker to join {dask}...", err=True)
        return executor
    return LocalProcesses(workers) if workers > 1 else InProcess()


def _brief(space):
    """The space as --param texts, range ends to 4 significant digits."""
    from cifar_engine.tune.search.space import format_value

    return " ".join(f"{p.name}={p.low:.4g}:{p.high:.4g}:{p.scale}" if p.is_range else
                    f"{p.name}={','.join(map(format_value, p.choices))}" for p in space)


def _accuracy(value):
    return "-" if value is None else f"{value:.4f}"


def _table(records, names):
    """The records as text columns, best validation accuracy first."""
    from cifar_engine.tune.search.space import format_value
    from cifar_engine.util.table import aligned

    def key(r):
        return (r["val_acc"] is None, -(r["val_acc"] or 0.0), r["stage"], r["trial"])

    head = ["stage", "trial", *names, "train", "val", "test", "seconds", "status"]
    rows = [[str(r["stage"]), str(r["trial"]),
             *(format_value(r["settings"][n]) if n in r["settings"] else "-" for n in names),
             *(_accuracy(r[a]) for a in ("train_acc", "val_acc", "test_acc")),
             "-" if r["seconds"] is None else f"{r['seconds']:.1f}", r["status"]]
            for r in sorted(records, key=key)]
    return "\n".join(aligned([head, *rows]))


class _Printer:
    """The search's progress: a line per trial on stderr, a table per stage on stdout."""

    def __init__(self, plan):
        self.names = plan.space.names

    def stage(self, stage, space, budget, n_trials, n_to_run):
        done = n_trials - n_to_run
        click.echo(f"stage {stage}: {n_trials} trials of {budget}"
                   + (f" ({done} finished before)" if done else "") + f" over {_brief(space)}")

    def trial(self, record):
        reason = f" ({record['reason']})" if record["reason"] else ""
        click.echo(f"  stage {record['stage']} trial {record['trial']}: {record['status']}, "
                   f"val {_accuracy(record['val_acc'])}{reason}", err=True)

    def stage_done(self, stage, records):
        click.echo(_table(records, self.names))

    def retraining(self, best, budget, folder):
        click.echo(f"training stage {best['stage']} trial {best['trial']} again for {budget} "
                   f"into {folder}")

    def retrained(self, best, summary):
        if summary.get("status") == "diverged":
            click.echo(f"the retraining diverged: {summary['reason']}")
            return
        click.echo(f"retrained: test accuracy {summary['test_acc']:.2%} (val "
                   f"{summary['val_acc']:.2%}, train {summary['train_acc']:.2%})")


def _print_end(result):
    from cifar_engine.tune.search.space import format_value

    best = result.best
    if best is None:
        click.echo("no trial ended ok")
    else:
        settings = " ".join(f"{k}={format_value(v)}" for k, v in best["settings"].items())
        click.echo(f"best: stage {best['stage']} trial {best['trial']}: {settings} seed "
                   f"{best['seed']}: val {_accuracy(best['val_acc'])} (train "
                   f"{_accuracy(best['train_acc'])}, test {_accuracy(best['test_acc'])})")
    click.echo(f"search folder: {result.folder}")
