"""Libraries of the optional extras, imported when first needed: a one-line UserError naming
the extra to install when one is missing."""
from importlib import import_module

from ..errors import UserError


def optional(module, extra, purpose):
    """The module `module` (e.g. "tqdm.auto"), or a UserError saying that `purpose` needs it
    and which extra installs it."""
    try:
        return import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise UserError(f"{purpose} needs {top}: pip install 'cifar-engine[{extra}]'") from None


def data_frame(rows, columns, purpose="to_frame()"):
    """A pandas DataFrame of `rows` (sequences of values, or a 2-d array) under `columns`."""
    pandas = optional("pandas", "notebook", purpose)
    return pandas.DataFrame(rows if hasattr(rows, "shape") else list(rows),
                            columns=list(columns))
