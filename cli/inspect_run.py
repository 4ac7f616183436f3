"""Commands on a run folder: `evaluate` and `predict` (a finished run), `plot` (any)."""
import click
import numpy as np

from cifar_engine.cli.options import data_options
from cifar_engine.settings import TTAS

run_folder = click.argument("run", type=click.Path(file_okay=False))


def _load(run, max_batch=1, which="final"):
    from cifar_engine.errors import UserError
    from cifar_engine.model.npz import load_network
    from cifar_engine.training.folder import RunFolder

    folder = RunFolder(run)
    path = folder.model_file(which)
    if not path.exists():
        raise UserError(f"{path}: no such file (is {run} a finished run?)")
    net, _ = load_network(path, max_batch=max_batch)
    return folder, net


model_choice = click.option(
    "--model", "which", type=click.Choice(["final", "best"]), default="final",
    show_default=True, help="The run's final model (model.npz) or the one of its best "
                            "validation accuracy (best.npz).")
tta_choice = click.option(
    "--tta", type=click.Choice(TTAS), default="none", show_default=True,
    help="Test-time augmentation: flip averages the probabilities of each image and its "
         "mirror image.")


def _shape_text(shape):
    return "x".join(map(str, shape))


def _check_data(dataset, net, where):
    """UserError naming `where` unless the dataset's images and classes are the model's."""
    from cifar_engine.errors import UserError

    model_shape = net.image_shape or (net.spec.input_size,)
    if int(np.prod(dataset.image_shape)) != net.spec.input_size or \
            (net.image_shape and tuple(dataset.image_shape) != net.image_shape):
        raise UserError(f"{where}: images are {_shape_text(dataset.image_shape)} (C x H x W), "
                        f"the model takes {_shape_text(model_shape)}")
    if tuple(dataset.class_names) != tuple(net.class_names):
        raise UserError(f"{where}: classes {', '.join(dataset.class_names)} are not the "
                        f"model's {', '.join(net.class_names)}")


@click.command()
@run_folder
@model_choice
@tta_choice
@data_options
def evaluate(run, which, tta, src, labels, cache_dir):
    """Accuracies and test confusion matrix of a run's model."""
    from cifar_engine.data import load_dataset, make_split
    from cifar_engine.model.network import EVAL_CHUNK
    from cifar_engine.training.config import TrainConfig
    from cifar_engine.training.loop import PARTS, part_sources

    folder, net = _load(run, which=which)
    config = TrainConfig.from_toml(folder.config)
    dataset = load_dataset(src or config.data or None, labels=labels, cache_dir=cache_dir)
    _check_data(dataset, net, f"--data {src}" if src else dataset.source)
    split = make_split(dataset, config.split, config.n_val)
    net.set_max_batch(min(EVAL_CHUNK, max(len(split.train), len(split.val), len(split.test))))
    # without test-time augmentation, each image array is preprocessed once for every part
    sources = part_sources(net, split) if tta == "none" else None
    for name in PARTS:
        part = getattr(split, name)
        result = (net.evaluate_source(sources[name], part.index) if sources else
                  net.evaluate_tta(part.images, part.labels, part.index, tta))
        click.echo(f"{name:<5} accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  "
                   f"({len(part)} images)")
    test = split.test
    predicted = (np.argmax(net.scores(sources["test"], test.index), axis=1) if sources else
                 net.predict(test.images, test.index, tta))
    K = len(net.class_names)
    confusion = np.bincount(test.labels[test.index] * K + predicted, minlength=K * K)
    click.echo("\nconfusion matrix (rows: true class, columns: predicted)")
    width = max(6, max(map(len, net.class_names)))
    click.echo(" " * width + "".join(f"{k:>7}" for k in range(K)))
    for k, row in enumerate(confusion.reshape(K, K)):
        click.echo(f"{net.class_names[k]:>{width}}" + "".join(f"{v:>7}" for v in row))


@click.command()
@run_folder
@model_choice
@tta_choice
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
def predict(run, which, tta, images):
    """Class and probability of each image file (PNG or JPEG)."""
    from cifar_engine.data.image_folder import read_image_file
    from cifar_engine.errors import DataError, UserError
    from cifar_engine.model.network import EVAL_CHUNK

    folder, net = _load(run, max_batch=min(EVAL_CHUNK, len(images)), which=which)
    path = folder.model_file(which)
    if net.image_shape is None:
        raise UserError(f"{path}: the model has no image shape (C, H, W), so it cannot read "
                        "image files")
    try:
        net.check_reach()
    except DataError as err:
        raise UserError(f"{path}: {err}") from None
    rows = np.stack([read_image_file(image, net.image_shape) for image in images])
    probabilities = net.predict_proba(rows, tta=tta)
    for image, p in zip(images, probabilities):
        k = int(np.argmax(p))
        click.echo(f"{image}: {net.class_names[k]} ({p[k]:.1%})")


@click.command()
@run_folder
def plot(run):
    """Draw a run's curves.png and templates.png, also while it trains.

    The curves come from metrics.csv; the templates from model.npz, else best.npz, else the
    latest checkpoint. Prints each figure drawn and what it shows.
    """
    from cifar_engine.training.run import draw_figures

    for path, what in draw_figures(run):
        click.echo(f"{path}: {what}")
