"""`cifar-engine lr-range-test`: eta rises while a fresh network trains; suggests bounds."""
import shlex
import time

import click

from cifar_engine.cli.options import (data_options, flag, given_settings, model_options,
                                      option_group, preset_options, range_test_options,
                                      setting_option, split_options)
from cifar_engine.settings import RANGE_TEST, TRAIN

# The training settings a range test reads: no schedule, no cycles, no checkpoints.
RANGE_TRAIN_SETTINGS = ("batch_size", "momentum", "nesterov", "epochs", "steps", "noise",
                        "noise_fraction", "flip", "translate", "eval_every", "threads")
# Settings of the test that a training run between its bounds does not take.
_NOT_FOR_TRAINING = ("epochs", "steps", "eval_every")


@click.command("lr-range-test")
@preset_options
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for lr_range.csv, .json and .png.  [default: runs/lr-range-<timestamp>]")
@click.option("--overwrite", is_flag=True,
              help="Replace the range test in --out: its files are deleted before this one "
                   "starts.")
@range_test_options
@model_options
@data_options
@split_options
@option_group(*(setting_option(name, help=TRAIN[name].help + (
    "  [default: 8 epochs]" if name in ("epochs", "steps") else ""))
    for name in RANGE_TRAIN_SETTINGS))
@click.pass_context
def lr_range_test(ctx, preset, config_file, out, overwrite, cache_dir, **options):
    """Train while eta rises from --lr-min to --lr-max; suggest --eta-min and --eta-max.

    Stops when the smoothed loss passes --stop-factor times its least value (or is not
    finite). Every rule's suggestion is printed, the one of --rule is used, and a ready
    `cifar-engine train` line is printed; `train --eta-from OUT` reads it.
    """
    from cifar_engine.training.config import resolve_config
    from cifar_engine.training.folder import RunFolder
    from cifar_engine.tune.range_test import (KIND, RangeTest, range_config, run_range_test,
                                              write_range_test)

    given = given_settings(ctx, options)
    test = RangeTest(**{name: options[name] for name in RANGE_TEST})
    config, _ = resolve_config(preset, config_file,
                               {k: v for k, v in given.items() if k not in RANGE_TEST})
    range_config(config)  # its settings checked before the folder is made
    folder = RunFolder(out or RunFolder.fresh_name().with_name(
        "lr-range-" + time.strftime("%Y%m%d-%H%M%S")), KIND)
    with folder.claim_new(overwrite=overwrite):
        result = run_range_test(config, test, cache_dir=cache_dir)
        write_range_test(result, folder)
    _report(result, folder.path, given)


def _report(result, out, given):
    for repeat, curve in enumerate(result.curves):
        click.echo(f"repeat {repeat}: {curve.stop} usable steps of {len(curve.lr)} run, eta up "
                   f"to {curve.lr[curve.stop - 1]:.3g}")
    click.echo(f"{'rule':<14} {'eta_min':>10} {'eta_max':>10}")
    for name, pair in result.suggestions.items():
        used = "  <- used" if name == result.test.rule else ""
        if isinstance(pair, tuple):
            click.echo(f"{name:<14} {pair[0]:>10.3g} {pair[1]:>10.3g}{used}")
        else:
            click.echo(f"{name:<14} {'-':>10} {'-':>10}  ({pair}){used}")
    if result.chosen is None:
        click.echo(f"rule {result.test.rule} suggests nothing; see {out}/lr_range.png")
    else:
        click.echo("train between these bounds with:")
        click.echo("  " + result.train_command(_train_base(given)))
    click.echo(f"range test: {out}")


def _train_base(given):
    """`cifar-engine train` with the model and data options the test was given."""
    words = ["cifar-engine", "train"]
    for name, value in given.items():
        if name in _NOT_FOR_TRAINING or name in RANGE_TEST:
            continue
        if value is True:
            words.append(flag(name))
        elif value is not False:
            words += [flag(name), ",".join(map(str, value)) if isinstance(value, tuple)
                      else str(value)]
    return " ".join(shlex.quote(w) for w in words)
