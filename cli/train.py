"""`cifar-engine train` and `cifar-engine presets`."""
import signal
import sys

import click

from cifar_engine.cli.options import (data_options, given_settings, model_options,
                                      preset_options, split_options, train_options)
from cifar_engine.errors import SettingError
from cifar_engine.trainer import Observer

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
@click.option("--dry-run", is_flag=True,
              help="Check everything, print the plan and write schedule.png; do not train.")
@model_options
@data_options
@split_options
@train_options
@click.pass_context
def train(ctx, preset, config_file, resume, out, eta_from, overwrite, dry_run, cache_dir,
          **options):
    """Train a network; write a run folder (metrics, model, figures)."""
    given = given_settings(ctx, options)
    if resume:
        if preset or config_file or out or overwrite or eta_from:
            raise click.UsageError("--resume continues a run as its config.toml says: give "
                                   "no --preset, --config, --out, --eta-from or --overwrite "
                                   "with it")
        _resume(resume, given, cache_dir, dry_run)
    else:
        from cifar_engine.train_config import resolve_config

        config, notes = resolve_config(preset, config_file, given, eta_from)
        _fresh(config, notes, out, overwrite, cache_dir, dry_run)


def _fresh(config, notes, out, overwrite, cache_dir, dry_run):
    from cifar_engine.runs import RunFolder
    from cifar_engine.training import prepare, start

    prepared = prepare(config, cache_dir=cache_dir)
    folder = RunFolder(out or RunFolder.fresh_name())
    if dry_run:  # claimed as the run would claim it, so that another run's folder is refused
        with folder.claim_new(overwrite=overwrite, dry_run=True):
            _print_plan(prepared, folder, notes)
        return
    with folder.claim_new(overwrite=overwrite):
        folder.write_text(folder.config, prepared.config.to_toml(notes))
        _train(start(prepared), folder, prepared, notes)


def _resume(path, given, cache_dir, dry_run):
    from cifar_engine.runs import RunFolder
    from cifar_engine.train_config import TrainConfig, resume_config
    from cifar_engine.trainer import EVAL_CHUNK
    from cifar_engine.training import prepare, start

    folder = RunFolder(path)
    with folder.claim_resume():
        config, notes = resume_config(TrainConfig.from_toml(folder.config), given)
        prepared = prepare(config, cache_dir=cache_dir)
        net, step, history = folder.load_checkpoint(max(config.batch_size, EVAL_CHUNK),
                                                    config.momentum, config.nesterov)
        if step > prepared.plan.total_steps:
            stop = next((n for n in ("cycles", "epochs", "steps") if n in given), "steps")
            raise SettingError(stop, f"ends the run at step {prepared.plan.total_steps}, "
                                     f"before its checkpoint (step {step})")
        if dry_run:
            _print_plan(prepared, folder, notes)
            return
        if notes:
            folder.write_text(folder.config, prepared.config.to_toml(notes))
        _train(start(prepared, net, step, history), folder, prepared, notes)


def _train(trainer, folder, prepared, notes):
    from cifar_engine.trainer import Diverged, Interrupted
    from cifar_engine.training import FolderObserver, finish, result_of

    from cifar_engine.kernels.blas import describe

    slowed = describe()["slowed"]
    for note in [*notes, *([slowed] if slowed else [])]:
        click.echo(f"note: {note}", err=True)
    display = _Display(trainer)
    observers = [FolderObserver(folder), display]
    trainer.compile(observers)
    display.compiled()
    previous = {s: signal.signal(s, _stop_handler(trainer)) for s in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    try:
        trainer.run(observers)
    except Diverged as err:
        kept = ("the last checkpoint is kept" if folder.checkpoint.exists()
                else "no checkpoint was written")
        click.echo(f"cifar-engine: error: {err}; {kept}", err=True)
        raise click.exceptions.Exit(EXIT_DIVERGED)
    except Interrupted as err:
        click.echo(f"cifar-engine: stopped by {err.reason} at step {err.step}; resume with: "
                   f"cifar-engine train --resume {folder.path}", err=True)
        raise click.exceptions.Exit(128 + signal.Signals[err.reason].value)
    finally:
        display.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    summary = finish(result_of(trainer), folder, prepared, notes)
    plain = summary.get("without_tta")
    tta = "" if plain is None else (f" with test-time {summary['tta']}s (without: test "
                                    f"{plain['test_acc']:.2%}, val {plain['val_acc']:.2%})")
    click.echo(f"test accuracy {summary['test_acc']:.2%} (val {summary['val_acc']:.2%}, "
               f"train {summary['train_acc']:.2%}){tta} after {trainer.step} steps in "
               f"{trainer.seconds:.1f} s of training")
    click.echo(f"run folder: {folder.path}")


def _print_plan(prepared, folder, notes):
    from cifar_engine.plots import schedule_figure

    config, plan, split = prepared.config, prepared.plan, prepared.split
    for note in notes:
        click.echo(f"note: {note}")
    click.echo(f"data: {prepared.dataset.source}; split {config.split}: {len(split.train)} "
               f"train, {len(split.val)} val, {len(split.test)} test")
    click.echo(f"steps: {plan.total_steps} ({plan.epochs:.2f} epochs of {plan.steps_per_epoch} "
               f"steps), n_s {plan.n_s}, {plan.evaluations} evaluations (every "
               f"{plan.eval_every} steps)")
    steps, etas = plan.sampled()
    click.echo(f"eta: {config.schedule}, from {etas.min():.3g} to {etas.max():.3g}")
    if folder.replacing:  # a dry run replaces nothing, and draws nothing into another run
        click.echo(f"schedule: not drawn ({folder.path} holds the run that --overwrite "
                   f"would replace)")
    else:
        click.echo(f"schedule: {schedule_figure(steps, etas, folder.schedule)}")


def _stop_handler(trainer):
    def handler(signum, frame):
        trainer.stop_reason = signal.Signals(signum).name
    return handler


class _Display(Observer):
    """Says when the kernels compile; then a progress bar on a terminal, or a plain line per
    evaluation. Rates and time left count training only."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.start_step = trainer.step
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.announced = False
        self.last_acc = float("nan")

    def compiling(self, trainer):
        self.announced = True
        click.echo("compiling the kernels (once per install; 15-30 s)...", err=True)

    def compiled(self):
        if self.announced:
            click.echo(f"kernels compiled in {self.trainer.compile_seconds:.1f} s", err=True)
        if self.tty:
            self.bar = click.progressbar(length=self.trainer.plan.total_steps, file=sys.stderr,
                                         label="training", item_show_func=self._status)
            self.bar.__enter__()
            self.bar.update(self.trainer.step)

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


@click.command()
def presets():
    """List named configurations and the results they reproduce."""
    from cifar_engine.presets import PRESETS

    width = max(map(len, PRESETS))
    for name, p in PRESETS.items():
        click.echo(f"{name.ljust(width)}  {p.published:<22}  {p.summary}")
