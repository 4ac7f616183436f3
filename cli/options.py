"""Option groups shared by the commands that load data (data, train, grad-check, ...).

Each group is one decorator that adds its options to a click command.
"""
from pathlib import Path

import click

from cifar_engine.data import LABEL_OPTIONS, SPLITS
from cifar_engine.initializers import INITS
from cifar_engine.spec import DTYPES, LOSSES, NetworkSpec


def option_group(*decorators):
    """One decorator that applies `decorators` so that options show in the order given."""
    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command
    return apply


data_options = option_group(
    click.option("--data", "src", metavar="SRC", default=None,
                 help="Data set: a CIFAR-10/100 python release (.tar.gz or folder), an image "
                      "folder with train/ and test/ (or a tar of one), or a Fashion-MNIST IDX "
                      "folder.  [default: $CIFAR_ENGINE_DATA, else the project data folder]"),
    click.option("--labels", type=click.Choice(LABEL_OPTIONS), default="fine", show_default=True,
                 help="CIFAR-100 labels: 100 fine classes or 20 coarse superclasses."),
    click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
                 help="Where decoded arrays are cached.  [default: $CIFAR_ENGINE_CACHE, else "
                      "data/cache in a checkout, else ~/.cache/cifar-engine]"),
)

split_options = option_group(
    click.option("--split", type=click.Choice(sorted(SPLITS)), default="batch1", show_default=True,
                 help="batch1: train on batch 1, validate on batch 2; all: train on all "
                      "training images but the last --n-val."),
    click.option("--n-val", type=int, default=1000, show_default=True,
                 help="Validation images for --split all."),
)


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


model_options = option_group(
    click.option("--hidden", type=Widths(), default="50", show_default=True,
                 help="Hidden-layer widths, e.g. 50,50; 'none' for the single-layer classifier."),
    click.option("--bn/--no-bn", "batch_norm", default=False, show_default=True,
                 help="Batch normalisation after each hidden layer's affine map."),
    click.option("--dropout", type=float, default=0.0, show_default=True,
                 help="Inverted-dropout rate p on hidden layers, in [0, 1)."),
    click.option("--init", type=click.Choice(sorted(INITS)), default="he", show_default=True,
                 help="Weight initialisation: he sqrt(2/d), xavier sqrt(1/d), gaussian --sigma."),
    click.option("--sigma", type=float, default=1e-4, show_default=True,
                 help="Standard deviation of --init gaussian."),
    click.option("--loss", type=click.Choice(LOSSES), default="xent", show_default=True,
                 help="Softmax cross-entropy or multi-class SVM hinge."),
    click.option("--lam", type=float, default=0.0, show_default=True,
                 help="L2 coefficient: cost = loss + lam * sum of squared weights."),
    click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True,
                 help="Floating-point type of parameters and activations."),
    click.option("--seed", type=int, default=0, show_default=True,
                 help="Seed of initial weights, shuffles, dropout masks and augmentation."),
)

MODEL_OPTION_NAMES = ("hidden", "batch_norm", "dropout", "init", "sigma", "loss", "lam", "dtype")


def spec_from_options(options, input_size, n_classes, **overrides):
    """A NetworkSpec from the parsed model options (a dict; `seed` is not part of it)."""
    fields = {name: options[name] for name in MODEL_OPTION_NAMES}
    fields.update(overrides)
    return NetworkSpec(input_size=input_size, n_classes=n_classes, **fields)
