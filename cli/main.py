"""Entry point of the `cifar-engine` command: the top-level group and its error policy."""
import signal
import sys

import click

from cifar_engine import __version__
from cifar_engine.errors import SettingError, UserError
from cifar_engine.kernels.blas_libraries import BlasChoiceError

EXIT_USER_ERROR = 2


def user_message(err):
    """The one line that a UserError shows, settings spelled as flags."""
    from cifar_engine.cli.options import flag

    text = err.render(flag) if isinstance(err, SettingError) else str(err)
    return text.strip().splitlines()[0] if text.strip() else repr(err)


class EngineGroup(click.Group):
    """A click group that turns the engine's UserError into one line on stderr, exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"cifar-engine: error: {user_message(err)}", err=True)
            ctx.exit(EXIT_USER_ERROR)


@click.group(cls=EngineGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cifar-engine")
def cli():
    """Train and study multilayer perceptrons on CIFAR-10 and friends, fast, on a CPU."""


def _register():
    from cifar_engine.cli.data import data
    from cifar_engine.cli.gradcheck import grad_check
    from cifar_engine.cli.inspect_run import evaluate, plot, predict
    from cifar_engine.cli.lr_range import lr_range_test
    from cifar_engine.cli.search import search
    from cifar_engine.cli.train import presets, train

    cli.add_command(data)
    cli.add_command(train)
    cli.add_command(presets)
    cli.add_command(evaluate)
    cli.add_command(predict)
    cli.add_command(plot)
    cli.add_command(grad_check)
    cli.add_command(lr_range_test)
    cli.add_command(search)


try:
    _register()
    _START_ERROR = None
except BlasChoiceError as err:  # the environment chose a BLAS as the kernels loaded
    _START_ERROR = str(err)
except UserError as err:  # an environment variable Numba reads as it loads
    _START_ERROR = user_message(err)


class _Stop:
    """SIGTERM is answered as Ctrl-C is: a KeyboardInterrupt, so that every `finally` (temp
    files, locks) runs; the signal's name is kept for the message and the exit code."""

    signal = None

    @classmethod
    def handler(cls, signum, frame):
        cls.signal = signal.Signals(signum)
        raise KeyboardInterrupt


def main(argv=None):
    """Console-script entry point: usage mistakes end in one line on stderr, exit 2;
    SIGINT and SIGTERM in one line, exit 128 + the signal's number."""
    if _START_ERROR:
        click.echo(f"cifar-engine: error: {_START_ERROR}", err=True)
        return EXIT_USER_ERROR
    _Stop.signal = signal.SIGINT
    previous = signal.signal(signal.SIGTERM, _Stop.handler)
    try:
        code = cli.main(args=argv, prog_name="cifar-engine", standalone_mode=False)
    except click.UsageError as err:
        where = err.ctx.command_path if err.ctx else "cifar-engine"
        click.echo(f"{where}: error: {err.format_message()} (see --help)", err=True)
        return EXIT_USER_ERROR
    except click.ClickException as err:
        click.echo(f"cifar-engine: error: {err.format_message()}", err=True)
        return err.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo(f"cifar-engine: stopped by {_Stop.signal.name}", err=True)
        return 128 + _Stop.signal.value
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
