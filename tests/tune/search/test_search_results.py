"""A search in a notebook: its result as a DataFrame and a Figure, and a bar of its trials."""
import pandas
import pytest

from cifar_engine.tune.search.runner import Report, plan_search, run_search
from fakes import write_image_tree


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "images"
    write_image_tree(root, per_class=(100, 20), size=(8, 8))
    return root


class Heard(Report):
    def __init__(self):
        self.calls = []

    def stage(self, stage, *args):
        self.calls.append(("stage", stage))

    def trial(self, record):
        self.calls.append(("trial", record["stage"], record["trial"]))

    def stage_done(self, stage, records):
        self.calls.append(("stage_done", stage))


def test_the_result_as_a_frame_a_figure_and_a_bar(images, tmp_path, capsys):
    plan = plan_search(["lam=1e-5:1e-1:log", "hidden=8,16"], ["3:1cycles", "2:1cycles"],
                       settings={"data": str(images), "batch_size": 10, "n_s": "2ep"})
    heard = Heard()

    result = run_search(plan, tmp_path / "search", report=heard, progress=True)

    err = capsys.readouterr().err
    assert "search" in err and "5/5" in err and "best_val_acc=" in err
    assert [c[0] for c in heard.calls].count("trial") == 5  # the inner report hears all
    assert heard.calls[-1] == ("stage_done", 1)
    frame = result.to_frame()
    written = pandas.read_csv(tmp_path / "search" / "search.csv", keep_default_na=False)
    assert list(frame.columns) == list(written.columns)
    assert list(frame["trial"]) == list(written["trial"]) == [0, 1, 2, 0, 1]
    assert list(frame["lam"]) == list(written["lam"])
    assert list(frame["val_acc"]) == list(written["val_acc"])
    fig = result.plot()
    assert [ax.get_xlabel() for ax in fig.axes] == ["lam", "hidden"]
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 5
