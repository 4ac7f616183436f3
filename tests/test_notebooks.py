"""docs/notebooks/tour.ipynb runs from top to bottom in a real IPython kernel (nbclient),
on Fashion-MNIST, writing only into the folder it runs in."""
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from real_data import FASHION_MNIST, require

TOUR = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "tour.ipynb"
TIMEOUT = 240  # seconds for any one cell; the whole notebook takes well under a minute


def _outputs(cell, kind):
    return [o for o in cell.get("outputs", ()) if kind in o.get("data", {})]


def test_the_tour_is_stored_without_outputs():
    nb = nbformat.read(TOUR, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_tour_runs_in_a_kernel_and_shows_its_figures_and_tables(tmp_path):
    require(FASHION_MNIST, "sudo apt-get install dataset-fashion-mnist (make test-data)")
    nb = nbformat.read(TOUR, as_version=4)

    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    plots = [c for c in code if c.source.rstrip().endswith(".plot()")]
    frames = [c for c in code if c.source.rstrip().endswith(("to_frame()", ".tail()"))]
    assert len(plots) == 3 and all(_outputs(c, "image/png") for c in plots)
    assert len(frames) == 3 and all(_outputs(c, "text/html") for c in frames)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "search"]
    assert (tmp_path / "search" / "search.csv").exists()
