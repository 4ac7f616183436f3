"""Figures written to files: atomic saving, and the sample grid of `cifar-engine data show`.

matplotlib is imported inside the functions (Agg canvas, no pyplot), so that importing this
module costs nothing on the command line's fast paths.
"""
from pathlib import Path

import numpy as np

from .atomic import atomic_write

CELL_INCHES = 0.7


def save_figure(fig, path):
    """Write `fig` to `path` atomically (see `atomic_write`), in the format of its suffix.

    Missing folders are created. Returns the Path; UserError if it cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    FigureCanvasAgg(fig)  # draws with Agg whatever the default backend is
    with atomic_write(path) as file:
        fig.savefig(file, format=path.suffix.lstrip(".") or "png")
    return path


def grid_indices(labels, n_classes, per_class, seed=0):
    """Random rows of each class: a list of n_classes int64 arrays of at most `per_class`.

    Parameters
    ----------
    labels : int (N,)
    n_classes, per_class : int
    seed : int, seeds the draw (without replacement, within each class)
    """
    rng = np.random.default_rng(seed)
    rows = []
    for label in range(n_classes):
        members = np.flatnonzero(np.asarray(labels) == label)
        rows.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return rows


def _as_picture(row, image_shape):
    """One channel-major uint8 row as an (H, W, C) picture, or (H, W) when grey."""
    picture = np.asarray(row).reshape(image_shape).transpose(1, 2, 0)
    return picture[:, :, 0] if image_shape[0] == 1 else picture


def sample_grid(dataset, path, per_class=10, seed=0):
    """Save a grid of random training images, one row per class labelled with its name.

    Parameters
    ----------
    dataset : Dataset
    path : where to write the figure (PNG by suffix)
    per_class : int, images per row
    seed : int, seeds which images are drawn

    Returns
    -------
    Path of the written figure.
    """
    from matplotlib.figure import Figure

    rows = grid_indices(dataset.train_labels, dataset.n_classes, per_class, seed)
    fig = Figure(figsize=(CELL_INCHES * per_class + 1.5, CELL_INCHES * len(rows)))
    axes = fig.subplots(len(rows), per_class, squeeze=False)
    for label, (cells, members) in enumerate(zip(axes, rows)):
        cells[0].set_ylabel(dataset.class_names[label], rotation=0, ha="right", va="center")
        for cell in cells:
            cell.set_xticks([])
            cell.set_yticks([])
            cell.set_frame_on(False)
        for cell, row in zip(cells, members):
            cell.imshow(_as_picture(dataset.train_images[row], dataset.image_shape),
                        cmap="gray", vmin=0, vmax=255)
    fig.subplots_adjust(left=1.4 / fig.get_figwidth(), right=0.99, top=0.99, bottom=0.01,
                        wspace=0.05, hspace=0.05)
    return save_figure(fig, path)


def curves_figure(metrics, path):
    """Cost, loss and accuracy against update step, training and validation on each panel.

    metrics : dict of float arrays by column of `train.METRIC_COLUMNS`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.8))
    for ax, quantity in zip(fig.subplots(1, 3), ("cost", "loss", "acc")):
        for part, style in (("train", "-"), ("val", "--")):
            ax.plot(metrics["step"], metrics[f"{part}_{quantity}"], style,
                    label="training" if part == "train" else "validation")
        ax.set_xlabel("update step")
        ax.set_title({"cost": "cost", "loss": "loss", "acc": "accuracy"}[quantity])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def templates_figure(W, image_shape, class_names, path, limit=64):
    """The first layer's weights as images, each rescaled to its own range.

    W : float (m, D), one row per unit; image_shape (C, H, W) with C*H*W == D. With
    class_names (a single-layer net) each row is titled by its class; otherwise the first
    `limit` hidden units are shown in a grid.
    """
    from matplotlib.figure import Figure

    rows = np.asarray(W, dtype=np.float64)[:limit]
    cols = len(rows) if class_names is not None else int(np.ceil(np.sqrt(len(rows))))
    n_rows = int(np.ceil(len(rows) / cols))
    fig = Figure(figsize=(1.2 * cols, 1.3 * n_rows))
    axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for k, (ax, w) in enumerate(zip(axes, rows)):
        span = w.max() - w.min()
        picture = _as_picture((w - w.min()) / (span if span > 0 else 1.0), image_shape)
        ax.imshow(picture, cmap="gray", interpolation="nearest")
        ax.set_title(class_names[k] if class_names is not None else str(k + 1), fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def schedule_figure(etas, path):
    """eta against update step."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    ax.plot(np.arange(len(etas)), etas)
    ax.set_xlabel("update step")
    ax.set_ylabel("eta")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
