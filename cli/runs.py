"""`cifar-engine runs`: the runs under a folder, a row each, as a table or CSV."""
import csv
import io

import click

# How the table shows a number column (CSV keeps every digit).
_SHOWN = {"epochs": "{:.2f}", "seconds": "{:.1f}"}
_ACCURACY = "{:.4f}"


@click.command()
@click.argument("folder", type=click.Path(file_okay=False), default="runs")
@click.option("--sort", "sort", default="run", show_default=True, metavar="COLUMN",
              help="Column to sort by: accuracies descending, others ascending, missing "
                   "values last.")
@click.option("--format", "form", type=click.Choice(["table", "csv"]), default="table",
              show_default=True, help="An aligned table, or CSV for other tools.")
def runs(folder, sort, form):
    """The runs under FOLDER side by side: status, the settings that differ, accuracies
    (with and without --tta), steps, epochs, times.

    Runs are found in FOLDER and up to 3 levels below it (a search's best/ included). An
    unfinished run shows its last evaluation in metrics.csv.
    """
    from cifar_engine.training.runs_table import MAX_DEPTH, runs_table
    from cifar_engine.util.table import aligned

    rows = runs_table(folder, sort)
    if not rows:
        click.echo(f"cifar-engine: no run folder (one holding config.toml) in {folder} or "
                   f"{MAX_DEPTH} levels below it", err=True)
        return
    if form == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(rows[0])
        for row in rows:
            writer.writerow([_cell(name, value, exact=True) for name, value in row.items()])
        click.echo(text.getvalue(), nl=False)
        return
    cells = [list(rows[0])] + [[_cell(k, v) for k, v in row.items()] for row in rows]
    numbers = {k for k, name in enumerate(rows[0]) if _is_number(row[name] for row in rows)}
    for line in aligned(cells, right=numbers):
        click.echo(line)


def _cell(name, value, exact=False):
    """A value as CSV (`exact`) or the table shows it."""
    from cifar_engine.training.runs_table import ACCURACIES
    from cifar_engine.tune.search.space import format_value

    if value is None:
        return "" if exact else "-"
    if exact or not isinstance(value, float):
        return format_value(value)
    return (_ACCURACY if name in ACCURACIES else _SHOWN.get(name, "{:g}")).format(value)


def _is_number(values):
    """Whether a column holds numbers only (or nothing): those are right-aligned."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool)
               for v in values if v is not None)
