"""Entry point of the `cifar-engine` command: the top-level group and its error policy."""
import sys

import click

from cifar_engine import __version__
from cifar_engine.errors import UserError

EXIT_USER_ERROR = 2


class EngineGroup(click.Group):
    """A click group that turns the engine's UserError into one line on stderr, exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"cifar-engine: error: {err}", err=True)
            ctx.exit(EXIT_USER_ERROR)


@click.group(cls=EngineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cifar-engine")
def cli():
    """Train and study multilayer perceptrons on CIFAR-10 and friends, fast, on a CPU."""


def _register():
    from cifar_engine.cli.data import data

    cli.add_command(data)


_register()


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="cifar-engine")


if __name__ == "__main__":
    sys.exit(main())
