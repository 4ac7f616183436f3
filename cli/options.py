"""Option groups shared by the commands that load data (data, train, grad-check, ...).

Each group is one decorator that adds its options to a click command.
"""
from pathlib import Path

import click
from click.core import ParameterSource

from cifar_engine.model.spec import NetworkSpec
from cifar_engine.settings import EXCLUSIVE, MODEL, RANGE_TEST, SETTINGS, TRAIN

# Flags spelled otherwise than "--" + the setting's name with dashes.
_FLAGS = {"batch_norm": "--bn"}
# Settings whose option is a pair of flags (--x/--no-x) rather than one that turns it on.
_PAIRED = {"batch_norm", "flip"}  # presets turn these on
# Options whose parameter name differs from the setting they set.
_PARAM = {"data": "src"}
SETTING_OF_PARAM = {param: name for name, param in _PARAM.items()}


def flag(name):
    """The command-line spelling of a setting: eta_min -> --eta-min, batch_norm -> --bn."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def given_settings(ctx, options):
    """The settings given on the command line (or by environment), by setting name."""
    return {SETTING_OF_PARAM.get(name, name): value for name, value in options.items()
            if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                                  ParameterSource.ENVIRONMENT)}


def option_group(*decorators):
    """One decorator that applies `decorators` so that options show in the order given."""
    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command
    return apply


class Widths(click.ParamType):
    """Comma-separated hidden-layer widths ("50,50"), or "none" for no hidden layer."""

    name = "WIDTHS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        text = str(value).strip().lower()
        if text == "none":
            return ()
        try:
            widths = tuple(int(part) for part in text.split(","))
        except ValueError:
            widths = None
        if not widths or any(w <= 0 for w in widths):
            self.fail(f"expected comma-separated positive integers or 'none', got {value!r}",
                      param, ctx)
        return widths


_CLICK_TYPES = {int: int, float: float, str: str, "widths": Widths()}


def setting_option(name, table=SETTINGS, **overrides):
    """The click option of setting `name` of `table`: its flag, type, default and help.

    Values are checked by the engine (TrainConfig, NetworkSpec), which names the setting;
    the command line's error handler spells it as the flag.
    """
    s = table[name]
    stop_rule = any(name in group for group in EXCLUSIVE)
    kwargs = dict(default=s.default, help=s.help,
                  show_default=not stop_rule and "[default" not in s.help and s.kind is not bool)
    if s.kind == "choice":
        kwargs["type"] = click.Choice(s.choices)
    elif s.kind is not bool:
        kwargs["type"] = _CLICK_TYPES[s.kind]
    if s.kind == "widths":
        kwargs["default"] = ",".join(map(str, s.default)) or "none"
    decls = [flag(name)]
    if s.kind is bool:
        if name in _PAIRED:
            decls = [f"{flag(name)}/--no-{flag(name)[2:]}"]
            kwargs["show_default"] = True
        else:
            kwargs["is_flag"] = True
    if s.kind in (int, float) and s.low is not None and "[" not in s.help:
        kwargs["help"] = f"{s.help}  [{s.limits()}]"
    kwargs.update(overrides)
    return click.option(*decls, _PARAM.get(name, name), **kwargs)


data_options = option_group(
    setting_option("data", default=None, metavar="SRC"),
    setting_option("labels"),
    click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
                 help="Where decoded arrays are cached.  [default: $CIFAR_ENGINE_CACHE, else "
                      "data/cache in a checkout, else ~/.cache/cifar-engine]"),
)

# How the training data is cut, and how its images become inputs.
split_options = option_group(setting_option("split"), setting_option("n_val"),
                             setting_option("zca", metavar="EPS"),
                             setting_option("pca", metavar="K"))

model_options = option_group(*(setting_option(name) for name in (*MODEL, "seed")))

train_options = option_group(*(setting_option(name) for name in TRAIN if name != "seed"))

range_test_options = option_group(*(setting_option(name, RANGE_TEST) for name in RANGE_TEST))

preset_options = option_group(
    click.option("--preset", type=str, default=None, help="Start from a named configuration "
                 "(see `cifar-engine presets`); options given beside it override it, and a "
                 "stop rule (--cycles, --epochs, --steps) given here replaces the preset's."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="Start from a run's config.toml; options given beside it override it."),
)

MODEL_OPTION_NAMES = tuple(MODEL)


def spec_from_options(options, input_size, n_classes, **overrides):
    """A NetworkSpec from the parsed model options (a dict; `seed` is not part of it)."""
    fields = {name: options[name] for name in MODEL_OPTION_NAMES}
    fields.update(overrides)
    return NetworkSpec(input_size=input_size, n_classes=n_classes, **fields)


# Where a run or search is logged besides its folder: names of engine/training/loggers.py's
# LOGGERS, checked by its Logs (importing the registry here would load Numba with the CLI).
log_options = option_group(
    click.option("--log", "log", multiple=True, metavar="NAME",
                 help="Also log to this tool (repeat for both): tensorboard (event files in "
                      "the run folder's tensorboard/, a search's one run per trial) or mlflow "
                      "(a store in the run or search folder unless --tracking-uri or "
                      "$MLFLOW_TRACKING_URI). Needs its extra."),
    click.option("--tracking-uri", default=None, metavar="URI",
                 help="MLflow's tracking store for --log mlflow (a server's http URI, or "
                      "sqlite:///PATH).  [default: $MLFLOW_TRACKING_URI, else the run "
                      "folder's mlflow.db]"),
)
