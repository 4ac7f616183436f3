"""Figures: a run's curves and templates, its schedule, a range test, the sample grid of
`cifar-engine data show`, and atomic saving.

Every figure function returns a matplotlib Figure (shown by a notebook as a cell's value)
and, when given a `path`, also saves it there atomically (`save_figure`). Figures are made
without pyplot, so no global registry keeps them: dropping one frees it. matplotlib is
imported inside the functions, so that importing this module costs nothing on the command
line's fast paths.
"""
from pathlib import Path

import numpy as np

from .errors import require
from .util.atomic import atomic_write

CELL_INCHES = 0.7
MAX_PER_CLASS = 50  # images in a row of the sample grid: 35 inches wide, some seconds to draw


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


def maybe_save(fig, path):
    """Save `fig` to `path` (atomically) unless path is None; return fig."""
    if path is not None:
        save_figure(fig, path)
    return fig


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


def sample_grid(dataset, path=None, per_class=10, seed=0):
    """A grid of random training images, one row per class labelled with its name.

    Parameters
    ----------
    dataset : Dataset
    path : where to save the figure (format by suffix), or None
    per_class : int, images per row, at most MAX_PER_CLASS
    seed : int, seeds which images are drawn

    Returns
    -------
    The Figure.
    """
    from matplotlib.figure import Figure

    require(1 <= per_class <= MAX_PER_CLASS, "per_class",
            f"must be in [1, {MAX_PER_CLASS}] (images in a row of the grid), got {per_class}")
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
    return maybe_save(fig, path)


def curves_figure(metrics, path=None):
    """Cost, loss and accuracy against update step, training and validation on each panel.

    metrics : dict of float arrays by column of `training.loop.METRIC_COLUMNS`.
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
    return maybe_save(fig, path)


def templates_figure(W, image_shape, class_names, path=None, limit=64):
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
    return maybe_save(fig, path)


def network_templates_figure(net, path=None):
    """`templates_figure` of a Network's first layer, in the space its preprocessing's
    gather writes (a projection's inputs mapped back to pixels); a single-layer net's
    rows are titled by class, and a net saved without its image shape shows each template
    as one row of pixels."""
    W = net.preprocessing.templates(net.parameters["W1"])
    shape = net.image_shape or (1, 1, W.shape[1])
    single_layer = net.spec.n_layers == 1
    return templates_figure(W, shape, net.class_names if single_layer else None, path)


def schedule_figure(steps, etas, path=None):
    """eta against update step (steps int[k], etas float[k]: a sample of the run's steps)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    ax.plot(steps, etas)
    ax.set_xlabel("update step")
    ax.set_ylabel("eta")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return maybe_save(fig, path)


def lr_range_figure(curve_or_band, suggestions, mode, path=None):
    """Accuracy and loss against learning rate of a range test, suggested bounds marked.

    curve_or_band: a `lr_range.Curve`, or a `lr_range.Band` (the median of repeats, drawn
    with the spread of the repeats); suggestions: {rule name: (eta_min, eta_max)}; mode: the
    ramp, "exp" draws lr on a log axis. Raw batch values are drawn faint, smoothed ones
    solid, validation points as dots, all up to where the loss blew up.
    """
    from matplotlib.figure import Figure

    band = curve_or_band if hasattr(curve_or_band, "curve") else None
    curve = band.curve if band is not None else curve_or_band
    n = curve.stop
    lr = curve.lr[:n]
    fig = Figure(figsize=(12, 4))
    panels = fig.subplots(1, 2)
    for ax, raw, smoothed, spread, val, title in (
            (panels[0], curve.acc, curve.acc_smoothed, ("acc_low", "acc_high"), curve.val_acc,
             "accuracy"),
            (panels[1], curve.loss, curve.smoothed, ("loss_low", "loss_high"), curve.val_loss,
             "loss")):
        ax.plot(lr, raw[:n], color="C0", alpha=0.25, lw=0.8, label="batch")
        ax.plot(lr, smoothed[:n], color="C0", label="batch, smoothed")
        if band is not None and band.n_repeats > 1:
            low, high = (getattr(band, name)[:n] for name in spread)
            ax.fill_between(lr, low, high, color="C0", alpha=0.2,
                            label=f"min-max of {band.n_repeats} repeats")
        seen = curve.val_steps < n
        if seen.any():
            ax.plot(curve.lr[curve.val_steps[seen]], val[seen], "o", color="C1", ms=4,
                    label="validation")
        for k, (rule, (eta_min, eta_max)) in enumerate(suggestions.items()):
            colour = f"C{k + 2}"
            ax.axvline(eta_min, color=colour, ls="--", lw=1)
            ax.axvline(eta_max, color=colour, ls="-", lw=1,
                       label=f"{rule}: {eta_min:.2g} to {eta_max:.2g}")
        if mode == "exp":
            ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    finite = curve.smoothed[:n][np.isfinite(curve.smoothed[:n])]
    if finite.size:  # raw losses near the blow-up would squash the curve
        top, bottom = finite.max(), finite.min()
        panels[1].set_ylim(bottom - 0.1 * (top - bottom), top + 0.2 * (top - bottom) + 1e-12)
    panels[0].legend(fontsize=8)
    fig.tight_layout()
    return maybe_save(fig, path)
