"""Progress bars: click's on a terminal's stderr (the command line), and tqdm's for the
Python API's `progress=True` (a widget in a notebook, text elsewhere)."""
import sys
from contextlib import contextmanager

import click

from .optional import optional


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


def tqdm_class():
    """tqdm.auto's bar class, checked for as soon as progress=True is asked for (a UserError
    naming the `notebook` extra when tqdm is missing)."""
    return optional("tqdm.auto", "notebook", "progress=True").tqdm


def notebook_bar(total, desc, unit, initial=0):
    """A tqdm.auto bar of `total` units starting at `initial`; the caller closes it."""
    return tqdm_class()(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True)
