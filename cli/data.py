"""`cifar-engine data ...`: inspect, show and download data sets."""
from pathlib import Path

import click
import numpy as np

from cifar_engine.cli.options import data_options
from cifar_engine.data import (CIFAR10_PYTHON_MD5, CIFAR10_PYTHON_URL, N_BATCHES, data_home,
                               download, load_dataset)
from cifar_engine.plots import MAX_PER_CLASS


@click.group()
def data():
    """Inspect, show and download datasets."""


def _count_table(dataset):
    """Lines of a table: images per class in train, in each training batch, and in test."""
    n = dataset.n_classes
    columns = {"train": np.bincount(dataset.train_labels, minlength=n)}
    for batch in range(N_BATCHES):
        in_batch = dataset.train_labels[dataset.train_batches == batch]
        columns[f"batch{batch + 1}"] = np.bincount(in_batch, minlength=n)
    columns["test"] = np.bincount(dataset.test_labels, minlength=n)
    width = max(len("total"), *(len(name) for name in dataset.class_names))
    lines = [f"{'class':<{width}}" + "".join(f"{name:>8}" for name in columns)]
    for label, name in enumerate(dataset.class_names):
        lines.append(f"{name:<{width}}" + "".join(f"{c[label]:>8}" for c in columns.values()))
    lines.append(f"{'total':<{width}}" + "".join(f"{c.sum():>8}" for c in columns.values()))
    return lines


def describe(dataset):
    """The text of `data info`: source, image shape, classes, then the table of counts."""
    c, h, w = dataset.image_shape
    return "\n".join([
        f"source:      {dataset.source}",
        f"image shape: {c} x {h} x {w} (C x H x W), {c * h * w} features",
        f"classes:     {dataset.n_classes}: {', '.join(dataset.class_names)}",
        f"images:      {len(dataset.train_labels)} train (batch1..{N_BATCHES}), "
        f"{len(dataset.test_labels)} test",
        "",
        *_count_table(dataset),
    ])


@data.command()
@data_options
def info(src, labels, cache_dir):
    """Print a data set's source, shape, classes and counts.

    Counts are per class in the training set, in each of its five batches, and in the test set.
    """
    click.echo(describe(load_dataset(src, labels=labels, cache_dir=cache_dir)))


@data.command()
@data_options
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="PNG file to write.")
@click.option("--per-class", type=click.IntRange(1, MAX_PER_CLASS), default=10, show_default=True,
              help="Images per class (one row per class).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random draw.")
def show(src, labels, cache_dir, out, per_class, seed):
    """Save a grid of random training images, a row per class.

    Prints the path of the written PNG.
    """
    from cifar_engine.plots import sample_grid

    dataset = load_dataset(src, labels=labels, cache_dir=cache_dir)
    sample_grid(dataset, out, per_class=per_class, seed=seed)
    click.echo(out)


@data.command(name="download")
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Folder to download into.  [default: the project data folder]")
@click.option("--url", default=CIFAR10_PYTHON_URL, hidden=True, help="Archive URL.")
@click.option("--md5", default=CIFAR10_PYTHON_MD5, hidden=True, help="Its expected md5.")
def download_command(dest, url, md5):
    """Download the CIFAR-10 python release, checked by md5.

    Prints the path of the archive; one already there with the right md5 is kept.
    """
    click.echo(download(dest or data_home(), url=url, md5=md5))
