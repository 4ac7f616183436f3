"""`cifar-engine train` and `cifar-engine presets`."""
import signal
import sys

import click

from cifar_engine.cli.options import (data_options, given_settings, log_options,
                                      model_options, preset_options, split_options,
                                      train_options)
from cifar_engine.training.loop import Observer

EXIT_DIVERGED = 3


@click.command()
@preset_options
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Continue the interrupted run in this folder from its checkpoint. Only "
                   "its stop rule, --eval-every, --checkpoint-every and --threads can change.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder.  [default: runs/<timestamp>]")
@click.option("--eta-from", type=click.Path(file_okay=False), default=None,
              help="Take --eta-min and --eta-max from the LR range test in this folder "
                   "(`cifar-engine lr-range-test --out FOLDER`).")
@click.option("--overwrite", is_flag=True,
              help="Replace the run in --out: its files are deleted before this run starts.")
@click.option("--resume-if-exists", is_flag=True,
              help="With --out: resume the run of these settings there when it was "
                   "interrupted, do nothing when it finished, start it when there is none "
                   "(a job that may be requeued runs this).")
@click.option("--dry-run", is_flag=True,
              help="Check everything, print the plan and write schedule.png; do not train.")
@model_options
@data_options
@split_options
@train_options
@log_options
@click.pass_context
def train(ctx, preset, config_file, resume, out, eta_from, overwrite, resume_if_exists, dry_run,
          cache_dir, log, tracking_uri, **options):
    """Train a network; write a run folder (metrics, model, figures)."""
    from cifar_engine.training import run
    from cifar_engine.training.loggers import Logs

    given = given_settings(ctx, options)
    # made now, so that a missing extra is said before anything is checked or written
    logs = Logs(log, tracking_uri)  # unknown names are refused even in a dry run
    loggers = [] if dry_run else logs.observers()
    if resume:
        if preset or config_file or out or overwrite or eta_from or resume_if_exists:
            raise click.UsageError("--resume continues a run as its config.toml says: give "
                                   "no --preset, --config, --out, --eta-from, --overwrite or "
                                   "--resume-if-exists with it")
        if dry_run:
            return _print_plan(run.preview_resume(resume, given, cache_dir))
        return _train(lambda observers, stop: run.resume(resume, given, cache_dir, observers,
                                                         stop), loggers=loggers)
    from cifar_engine.training.config import resolve_config

    if resume_if_exists and (not out or overwrite or dry_run):
        raise click.UsageError("--resume-if-exists needs --out, and takes no --overwrite or "
                               "--dry-run")
    config, notes = resolve_config(preset, config_file, given, eta_from)
    if resume_if_exists:
        return _train(lambda observers, stop: run.train_or_resume(config, out, cache_dir,
                                                                  observers, notes, stop),
                      out, loggers)
    if dry_run:
        return _print_plan(run.preview(config, out, overwrite, cache_dir, notes=notes))
    return _train(lambda observers, stop: run.train(config, out, cache_dir, observers,
                                                    overwrite, notes, stop), loggers=loggers)


def _train(start, finished_in=None, loggers=()):
    """Run `start(observers, stop)`, an engine call that trains and returns (RunResult,
    summary), with a display, the loggers (Observers) and Ctrl-C and SIGTERM as its stop;
    print what it gives.
    (None, summary) is `train_or_resume`'s finished run in the folder `finished_in`."""
    from cifar_engine.training.loop import Diverged, Interrupted, Stop

    display = _Display(Stop())
    try:
        result, summary = start([display, *loggers], display.stop)
    except Diverged as err:
        kept = ("the last checkpoint is kept" if display.folder.checkpoint.exists()
                else "no checkpoint was written")
        click.echo(f"cifar-engine: error: {err}; {kept}", err=True)
        raise click.exceptions.Exit(EXIT_DIVERGED)
    except Interrupted as err:
        click.echo(f"cifar-engine: stopped by {err.reason} at step {err.step}; resume with: "
                   f"cifar-engine train --resume {display.folder.path}", err=True)
        raise click.exceptions.Exit(128 + signal.Signals[err.reason].value)
    finally:
        display.close()
    if result is None:  # train_or_resume found the run finished
        click.echo(f"nothing to train: the run in {finished_in} has finished; see its "
                   f"summary.json")
        click.echo(f"run folder: {finished_in}")
        return
    plain = summary.get("without_tta")
    tta = "" if plain is None else (f" with test-time {summary['tta']}s (without: test "
                                    f"{plain['test_acc']:.2%}, val {plain['val_acc']:.2%})")
    click.echo(f"test accuracy {summary['test_acc']:.2%} (val {summary['val_acc']:.2%}, "
               f"train {summary['train_acc']:.2%}){tta} after {result.steps} steps in "
               f"{result.seconds:.1f} s of training")
    click.echo(f"run folder: {display.folder.path}")


def _print_plan(preview):
    config, plan, split = preview.prepared.config, preview.prepared.plan, preview.prepared.split
    for note in preview.notes:
        click.echo(f"note: {note}")
    click.echo(f"data: {preview.prepared.dataset.source}; split {config.split}: "
               f"{len(split.train)} train, {len(split.val)} val, {len(split.test)} test")
    click.echo(f"steps: {plan.total_steps} ({plan.epochs:.2f} epochs of {plan.steps_per_epoch} "
               f"steps), n_s {plan.n_s}, {plan.evaluations} evaluations (every "
               f"{plan.eval_every} steps)")
    steps, etas = plan.sampled()
    click.echo(f"eta: {config.schedule}, from {etas.min():.3g} to {etas.max():.3g}")
    if preview.schedule is None:
        click.echo(f"schedule: not drawn ({preview.folder.path} holds the run that --overwrite "
                   f"would replace)")
    else:
        click.echo(f"schedule: {preview.schedule}")


class _Display(Observer):
    """Says how the settings were resolved and when the kernels compile; then, while the
    steps run, takes Ctrl-C and SIGTERM as the run's `stop` and shows a progress bar on a
    terminal, or a plain line per evaluation. Rates and time left count training only."""

    def __init__(self, stop):
        self.stop = stop
        self.trainer = self.folder = self.bar = None
        self.tty = sys.stderr.isatty()
        self.announced = False
        self.last_acc = float("nan")
        self.handlers = {}

    def started(self, trainer, folder, notes):
        from cifar_engine.runtime.blas import describe

        self.trainer, self.folder, self.start_step = trainer, folder, trainer.step
        slowed = describe()["slowed"]
        for note in [*notes, *([slowed] if slowed else [])]:
            click.echo(f"note: {note}", err=True)

    def compiling(self, trainer):
        self.announced = True
        click.echo("compiling the kernels (once per install; 15-30 s)...", err=True)

    def compiled(self, trainer):
        if self.announced:
            click.echo(f"kernels compiled in {trainer.compile_seconds:.1f} s", err=True)
        self.handlers = {s: signal.signal(s, self._request_stop)
                         for s in (signal.SIGINT, signal.SIGTERM)}
        if self.tty:
            self.bar = click.progressbar(length=trainer.plan.total_steps, file=sys.stderr,
                                         label="training", item_show_func=self._status)
            self.bar.__enter__()
            self.bar.update(trainer.step)

    def _request_stop(self, signum, frame):
        self.stop.request(signal.Signals(signum).name)

    def _rate(self):
        t = self.trainer
        return (t.step - self.start_step) / t.seconds if t.seconds > 0 else 0.0

    def _status(self, _item=None):
        t = self.trainer
        eta = t.plan.etas(max(t.step - 1, 0), max(t.step, 1))[0]
        return (f"eta {eta:.2e} loss {t.last_loss:.3f} val acc {self.last_acc:.3f} "
                f"{self._rate():.0f} steps/s")

    def segment(self, trainer, n_steps):
        if self.bar is not None:
            self.bar.update(n_steps)

    def evaluation(self, trainer, row):
        self.last_acc = row.val_acc
        if not self.tty:
            t = self.trainer
            left = (t.plan.total_steps - t.step) / max(self._rate(), 1e-9)
            click.echo(f"step {row.step}/{t.plan.total_steps} epoch {row.epoch:.2f} eta "
                       f"{row.eta:.2e} train loss {row.train_loss:.4f} acc {row.train_acc:.4f} | "
                       f"val loss {row.val_loss:.4f} acc {row.val_acc:.4f} | "
                       f"{self._rate():.0f} steps/s, {left:.0f} s left", err=True)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        for s, handler in self.handlers.items():
            signal.signal(s, handler)
        self.handlers = {}


@click.command()
def presets():
    """List named configurations and the results they reproduce."""
    from cifar_engine.presets import PRESETS

    width = max(map(len, PRESETS))
    for name, p in PRESETS.items():
        click.echo(f"{name.ljust(width)}  {p.published:<22}  {p.summary}")
