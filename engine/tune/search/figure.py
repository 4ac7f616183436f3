"""The figure of a search: validation accuracy against each searched parameter."""
import numpy as np

from ...plots import maybe_save
from .space import format_value


def search_figure(rows, params, path=None):
    """Validation accuracy against each searched parameter, one panel per parameter, one
    colour per stage; pruned trials hollow, trials without a validation accuracy left out.

    rows: finished-trial records as `Journal.finished().values()` gives them (stage,
    settings, val_acc, status); params: the `space.Space` (or Params) of the widest
    stage: "log" ranges get a log axis, choices one tick per value. Returns the Figure,
    saved to `path` first unless it is None.
    """
    from matplotlib.figure import Figure

    params = list(params)
    rows = [r for r in rows if r.get("val_acc") is not None and np.isfinite(r["val_acc"])]
    stages = sorted({r["stage"] for r in rows})
    cols = min(len(params), 3) or 1
    n_rows = max(1, int(np.ceil(len(params) / cols)))
    fig = Figure(figsize=(4.2 * cols, 3.4 * n_rows))
    axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
    for ax in axes[len(params):]:
        ax.set_axis_off()
    for ax, param in zip(axes, params):
        mine = [r for r in rows if param.name in r["settings"]]
        labels = []
        if param.scale == "choice":
            labels = [*param.choices, *sorted({r["settings"][param.name] for r in mine}
                                              - set(param.choices), key=str)]
            ax.set_xticks(range(len(labels)), [format_value(v) for v in labels])
            ax.set_xlim(-0.5, len(labels) - 0.5)
        for k, stage in enumerate(stages):
            here = [r for r in mine if r["stage"] == stage]
            # choices: the stages side by side around each tick
            x = [labels.index(r["settings"][param.name]) + 0.1 * (k - (len(stages) - 1) / 2)
                 if labels else r["settings"][param.name] for r in here]
            pruned = np.array([r.get("status") == "pruned" for r in here], dtype=bool)
            ax.scatter(x, [r["val_acc"] for r in here], s=18, label=f"stage {stage}",
                       facecolors=np.where(pruned, "none", f"C{k}"), edgecolors=f"C{k}")
        if param.scale == "log":
            ax.set_xscale("log")
        ax.set_xlabel(param.name)
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    if stages:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return maybe_save(fig, path)
