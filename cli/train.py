"""`cifar-engine train` and `cifar-engine presets`."""
import signal
import sys
import time

import click
from click.core import ParameterSource

from cifar_engine.cli.options import data_options, model_options, option_group, split_options
from cifar_engine.errors import UserError

EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130

train_options = option_group(
    click.option("--batch-size", type=int, default=100, show_default=True, help="Mini-batch size."),
    click.option("--momentum", type=float, default=0.0, show_default=True,
                 help="SGD momentum mu (0: plain mini-batch SGD)."),
    click.option("--nesterov", is_flag=True, help="Nesterov momentum."),
    click.option("--schedule", type=click.Choice(["constant", "triangular", "triangular2",
                                                   "exp_range"]),
                 default="constant", show_default=True, help="Learning-rate schedule."),
    click.option("--eta", type=float, default=0.01, show_default=True,
                 help="Learning rate of --schedule constant."),
    click.option("--eta-min", type=float, default=1e-5, show_default=True,
                 help="Lowest eta of a cyclical schedule."),
    click.option("--eta-max", type=float, default=1e-1, show_default=True,
                 help="Highest eta of a cyclical schedule."),
    click.option("--n-s", default="500", show_default=True,
                 help="Half cycle: steps (500) or epochs (2ep)."),
    click.option("--gamma", type=float, default=1.0, show_default=True,
                 help="Per-step amplitude decay of exp_range."),
    click.option("--cycles", type=int, default=0, help="Stop after this many cycles."),
    click.option("--epochs", type=int, default=0, help="Stop after this many epochs."),
    click.option("--steps", type=int, default=0, help="Stop after this many update steps."),
    click.option("--noise", type=float, default=0.0, show_default=True,
                 help="Augmentation: Gaussian noise sigma, in feature std units."),
    click.option("--noise-fraction", type=float, default=1.0, show_default=True,
                 help="Fraction of each batch that gets --noise."),
    click.option("--flip", is_flag=True, help="Augmentation: random horizontal flips."),
    click.option("--translate", type=int, default=0, show_default=True,
                 help="Augmentation: random translations by up to K pixels."),
    click.option("--eval-every", type=int, default=0,
                 help="Evaluate every N steps.  [default: about 50 evaluations]"),
    click.option("--checkpoint-every", type=int, default=1000, show_default=True,
                 help="Write checkpoint.npz every N steps."),
    click.option("--threads", type=int, default=0, help="Numba threads.  [default: 1 for small nets, else all cores]"),
)

# Option names that differ from the TrainConfig fields they set.
_FIELD = {"src": "data"}


@click.command()
@click.option("--preset", type=str, default=None, help="Start from a named configuration "
              "(see `cifar-engine presets`); options given beside it override it.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="Start from a run's config.toml; options given beside it override it.")
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Continue the interrupted run in this folder from its checkpoint.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder.  [default: runs/<timestamp>]")
@click.option("--dry-run", is_flag=True,
              help="Check everything, print the plan and write schedule.png; do not train.")
@model_options
@data_options
@split_options
@train_options
@click.pass_context
def train(ctx, preset, config_file, resume, out, dry_run, cache_dir, **options):
    """Train a network; write a run folder (metrics, model, figures)."""
    from cifar_engine.runs import RunFolder
    from cifar_engine.train_config import TrainConfig

    if resume:
        folder = RunFolder(resume)
        config = TrainConfig.from_toml(folder.config) if folder.config.exists() else None
        if config is None:
            raise UserError(f"--resume {resume}: no config.toml there")
    else:
        config = TrainConfig.from_dict(_settings(ctx, preset, config_file, options))
        folder = RunFolder(out or RunFolder.fresh_name())
    folder.create()
    _run(config, folder, cache_dir, dry_run, resume=bool(resume))


def _settings(ctx, preset, config_file, options):
    """Defaults < preset < config file < options given on the command line."""
    from cifar_engine.presets import PRESETS
    from cifar_engine.train_config import TrainConfig

    settings = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"--preset must be one of {sorted(PRESETS)}, got {preset!r}")
        settings.update(PRESETS[preset].settings)
    if config_file is not None:
        settings.update(TrainConfig.from_toml(config_file).__dict__)
    for name, value in options.items():
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                              ParameterSource.ENVIRONMENT):
            settings[_FIELD.get(name, name)] = value if value is not None else ""
    return settings


def _run(config, folder, cache_dir, dry_run, resume):
    from cifar_engine.trainer import Diverged, Interrupted
    from cifar_engine.training import finish, prepare, run, start

    prepared = prepare(config, cache_dir)
    if dry_run:
        _print_plan(prepared, folder)
        return
    trainer = start(prepared, folder, resume)
    report = _Reporter(trainer)
    previous = {s: signal.signal(s, _stop_handler(trainer)) for s in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    try:
        run(trainer, folder, on_segment=report.segment, on_evaluation=report.evaluation)
    except Diverged as err:
        click.echo(f"cifar-engine: error: {err}; the last checkpoint is kept", err=True)
        raise click.exceptions.Exit(EXIT_DIVERGED)
    except Interrupted as err:
        click.echo(f"cifar-engine: stopped by {err.reason} at step {err.step}; resume with: "
                   f"cifar-engine train --resume {folder.path}", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    finally:
        report.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    summary = finish(trainer, folder, prepared)
    click.echo(f"test accuracy {summary['test_acc']:.2%} (val {summary['val_acc']:.2%}, "
               f"train {summary['train_acc']:.2%}) after {trainer.step} steps in "
               f"{trainer.seconds:.1f} s of training")
    click.echo(f"run folder: {folder.path}")


def _print_plan(prepared, folder):
    from cifar_engine.plots import schedule_figure

    config, plan, split = prepared.config, prepared.plan, prepared.split
    click.echo(f"data: {prepared.dataset.source}; split {config.split}: {len(split.train)} "
               f"train, {len(split.val)} val, {len(split.test)} test")
    click.echo(f"steps: {plan.total_steps} ({plan.epochs:.2f} epochs of {plan.steps_per_epoch} "
               f"steps), n_s {plan.n_s}, {plan.evaluations} evaluations (every "
               f"{plan.eval_every} steps)")
    click.echo(f"eta: {config.schedule}, from {plan.etas.min():.3g} to {plan.etas.max():.3g}")
    click.echo(f"schedule: {schedule_figure(plan.etas, folder.schedule)}")


def _stop_handler(trainer):
    def handler(signum, frame):
        trainer.stop_reason = signal.Signals(signum).name
    return handler


class _Reporter:
    """A progress bar on a terminal; a plain line per evaluation otherwise."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.start = time.perf_counter()
        self.start_step = trainer.step
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.last_acc = float("nan")
        if self.tty:
            self.bar = click.progressbar(length=trainer.plan.total_steps, file=sys.stderr,
                                         label="training", item_show_func=self._status)
            self.bar.__enter__()
            self.bar.update(trainer.step)

    def _rate(self):
        elapsed = time.perf_counter() - self.start
        return (self.trainer.step - self.start_step) / elapsed if elapsed > 0 else 0.0

    def _status(self, _item=None):
        t = self.trainer
        return (f"eta {t.plan.etas[max(t.step - 1, 0)]:.2e} loss {t.last_loss:.3f} "
                f"val acc {self.last_acc:.3f} {self._rate():.0f} steps/s")

    def segment(self, trainer, n_steps):
        if self.bar is not None:
            self.bar.update(n_steps)

    def evaluation(self, trainer, row):
        self.last_acc = row[8]
        if not self.tty:
            t = self.trainer
            left = (t.plan.total_steps - t.step) / max(self._rate(), 1e-9)
            click.echo(f"step {row[0]}/{t.plan.total_steps} epoch {row[1]:.2f} eta {row[2]:.2e} "
                       f"train loss {row[4]:.4f} acc {row[5]:.4f} | val loss {row[7]:.4f} "
                       f"acc {row[8]:.4f} | {self._rate():.0f} steps/s, {left:.0f} s left",
                       err=True)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command()
def presets():
    """List named configurations and the results they reproduce."""
    from cifar_engine.presets import PRESETS

    width = max(map(len, PRESETS))
    for name, p in PRESETS.items():
        click.echo(f"{name.ljust(width)}  {p.published:<22}  {p.summary}")
