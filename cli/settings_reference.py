"""The settings reference, docs/settings.md, generated from the settings table.

`markdown()` renders every table of `settings` (a section each, a row per setting: its
name and the flags the commands give it, type, default, limits or choices, help); `make
docs` writes it (`python -m cifar_engine.cli.settings_reference docs/settings.md`), and
tests/test_docs.py fails when the file differs from it.
"""
import functools
import re
import sys
from pathlib import Path

import click

from cifar_engine.cli.options import SETTING_OF_PARAM
from cifar_engine.settings import DATA, GRAD_CHECK, MODEL, RANGE_TEST, TRAIN

# (title, table, what reads it)
SECTIONS = (
    ("Data", DATA, "The data set, how it is split and how its images become inputs\n"
     "(`TrainConfig`; `cifar-engine train`, `search` and `lr-range-test`, and `--data` and\n"
     "`--labels` on every command that loads data)."),
    ("Model", MODEL, "The network (`NetworkSpec`, `TrainConfig`; `cifar-engine train`, `search`,\n"
     "`lr-range-test` and `grad-check`)."),
    ("Training", TRAIN, "The run (`TrainConfig`; `cifar-engine train` and `search`, and\n"
     "`lr-range-test` those that apply to it)."),
    ("LR range test", RANGE_TEST, "A range test's own settings (`RangeTest`; "
     "`cifar-engine lr-range-test`)."),
    ("Gradient check", GRAD_CHECK, "A gradient check's own settings (`check_gradients`; "
     "`cifar-engine grad-check`)."),
)

HEADER = """\
# Settings reference

<!-- Generated from engine/settings.py by `make docs`: edit the table there, not this file. -->

Every setting of a run, with its type, default and limits, as the settings table
(`engine/settings.py`) holds them; the configuration, `--help` and the scikit-learn
estimator read the same table. A setting is named as Python callers and `config.toml`
spell it (`eta_min`); the command line spells it as a flag (`--eta-min`). Settings combine
as defaults < `--preset` < `--config` file < flags ([training guide](training.md)).
"""

_DEFAULT_IN_HELP = re.compile(r"\s*\[default: (.*)\]$")


@functools.cache
def _command_flags():
    """{setting: its long flags} over every `cifar-engine` command (--bn, --no-bn, ...)."""
    from cifar_engine.cli.main import cli

    found, todo = {}, [cli]
    while todo:
        command = todo.pop()
        if isinstance(command, click.Group):
            todo.extend(command.commands.values())
        for param in command.params:
            if isinstance(param, click.Option):
                name = SETTING_OF_PARAM.get(param.name, param.name)
                found.setdefault(name, tuple(o for o in (*param.opts, *param.secondary_opts)
                                             if o.startswith("--")))
    return found


def flags(name):
    """The command-line spellings of setting `name`: (), a flag, or a flag and its off."""
    return _command_flags().get(name, ())


def _value(value):
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value) if value != "" else '""'


def _code(text):
    return f"`{text}`"


def _cell(text):
    return text.replace("|", "\\|")


def row(setting):
    """The table row of one Setting: name and flag, type, default, limits or choices, help."""
    s = setting
    help_text, default = s.help, _code(_value(s.default))
    given = _DEFAULT_IN_HELP.search(help_text)
    if given:  # a default that depends on something else, as the help words it
        help_text, default = help_text[:given.start()], given.group(1)
    spelt = ", ".join(map(_code, flags(s.name)))
    name = _code(s.name) + (f" ({spelt})" if spelt else "")
    kind = s.kind if isinstance(s.kind, str) else s.kind.__name__
    if s.kind == "choice":
        limits = ", ".join(map(_code, s.choices))
    elif s.kind == "widths":
        limits = "whole numbers >= 1"
    elif s.low is not None or s.high is not None:
        limits = _code(s.limits())
    else:
        limits = ""
    cells = (name, kind, default, limits, help_text)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def markdown():
    """docs/settings.md: the header, then a section per table with a row per setting."""
    parts = [HEADER]
    for title, table, about in SECTIONS:
        parts.append(f"## {title}\n\n{about}\n\n"
                     "| setting | type | default | limits or choices | help |\n"
                     "|---|---|---|---|---|\n"
                     + "".join(row(s) + "\n" for s in table.values()))
    return "\n".join(parts)


def main(argv=None):
    """Write the reference to the path given (default: print it)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        sys.exit("usage: python -m cifar_engine.cli.settings_reference [docs/settings.md]")
    if args:
        Path(args[0]).write_text(markdown())
    else:
        sys.stdout.write(markdown())


if __name__ == "__main__":
    main()
