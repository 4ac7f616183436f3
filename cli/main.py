"""Entry point of the `cifar-engine` command: the top-level group and its error policy."""
import errno
import os
import signal
import sys

import click

from cifar_engine import __version__
from cifar_engine.errors import SettingError, UserError
from cifar_engine.runtime.blas_libraries import BlasChoiceError

EXIT_USER_ERROR = 2
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE, as a POSIX shell reports it (Windows has no SIGPIPE)


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
    from cifar_engine.cli.export import export
    from cifar_engine.cli.gradcheck import grad_check
    from cifar_engine.cli.inspect_run import evaluate, plot, predict
    from cifar_engine.cli.lr_range import lr_range_test
    from cifar_engine.cli.runs import runs
    from cifar_engine.cli.search import search
    from cifar_engine.cli.train import presets, train

    cli.add_command(data)
    cli.add_command(train)
    cli.add_command(presets)
    cli.add_command(evaluate)
    cli.add_command(predict)
    cli.add_command(plot)
    cli.add_command(export)
    cli.add_command(runs)
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


class StdoutError(Exception):
    """Standard output could not be written (closed, full device, broken pipe)."""

    def __init__(self, err):
        self.errno = err.errno
        super().__init__(err.strerror or str(err))


class _Stdout:
    """Standard output whose write errors are told from every other OSError (StdoutError);
    a closed one (`>&-`) fails at the first write, as a full device does."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        return self._call("write", text)

    def flush(self):
        return self._call("flush") if self.stream is not None else None

    def _call(self, name, *args):
        if self.stream is None:
            raise StdoutError(OSError(errno.EBADF, os.strerror(errno.EBADF)))
        try:
            return getattr(self.stream, name)(*args)
        except OSError as err:
            raise StdoutError(err) from None

    def isatty(self):
        return self.stream is not None and self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _occupy(fd):
    """Put /dev/null on a closed standard descriptor, so that no file the run opens takes its
    number (and gets what is written to it)."""
    try:
        os.fstat(fd)
    except OSError:
        spare = os.open(os.devnull, os.O_RDWR)
        if spare != fd:
            os.dup2(spare, fd)
            os.close(spare)


def _silence(stream):
    """Send what standard output still buffers to /dev/null, so that the interpreter's last
    flush does not fail again."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _run(argv):
    """cli.main with standard output watched: (exit code or None, the StdoutError or None)."""
    sys.stdout = out = _Stdout(sys.stdout)
    try:
        code = cli.main(args=argv, prog_name="cifar-engine", standalone_mode=False)
        out.flush()
        return code, None
    except StdoutError as err:
        _silence(out.stream)
        return None, err
    finally:
        sys.stdout = out.stream


def main(argv=None):
    """Console-script entry point: usage mistakes end in one line on stderr, exit 2;
    SIGINT and SIGTERM in one line, exit 128 + the signal's number; standard output that
    cannot be written (closed, a full device) in one line, exit 2 (a broken pipe, as in
    `| head`, quietly, exit 128 + SIGPIPE)."""
    if _START_ERROR:
        click.echo(f"cifar-engine: error: {_START_ERROR}", err=True)
        return EXIT_USER_ERROR
    for fd in (1, 2):
        _occupy(fd)
    _Stop.signal = signal.SIGINT
    previous = signal.signal(signal.SIGTERM, _Stop.handler)
    try:
        code, failed = _run(argv)
        if failed is not None:
            if failed.errno == errno.EPIPE:
                return EXIT_BROKEN_PIPE
            click.echo(f"cifar-engine: error: cannot write to standard output ({failed})",
                       err=True)
            return EXIT_USER_ERROR
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
