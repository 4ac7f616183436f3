"""Progress bars on stderr, shown only when stderr is a terminal (click draws them)."""
import sys
from contextlib import contextmanager

import click


class _Hidden:
    """Stands in for a bar that is not shown."""

    def update(self, n_steps):
        pass


@contextmanager
def progress_bar(length, label, enabled=None):
    """Yield a bar whose `update(n_steps)` advances it by n_steps out of `length`.

    Parameters
    ----------
    length : int or None, total steps; None (unknown) hides the bar
    label : str, shown left of the bar
    enabled : bool or None, False hides the bar; it is shown only on a terminal
    """
    if enabled is False or length is None or not sys.stderr.isatty():
        yield _Hidden()
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar
