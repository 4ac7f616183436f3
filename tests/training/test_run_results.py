"""A run in a notebook: its result as a Figure and a DataFrame, a tqdm bar while it trains,
and the figures of a run folder drawn while its run is unfinished."""
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import cifar_engine
from cifar_engine import TrainConfig, UserError
from cifar_engine.training.loop import Callbacks, Interrupted, Stop
from cifar_engine.training.run import draw_figures
from fakes import write_image_tree

CONFIG = TrainConfig(hidden=(12,), batch_size=10, schedule="triangular", n_s="2ep", cycles=1,
                     eta_min=1e-4, eta_max=0.05, eval_every=6)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("results") / "images"
    return write_image_tree(root, per_class=(100, 20), size=(8, 8)).path


@pytest.fixture(scope="module")
def data(images):
    return cifar_engine.load_dataset(images, cache_dir=images.parent / "cache")


@pytest.fixture(scope="module")
def result(data):
    return cifar_engine.fit(CONFIG, data)


def test_to_frame_is_the_history_by_column(result):
    frame = result.to_frame()

    assert list(frame.columns) == list(cifar_engine.MetricRow._fields)
    assert frame["step"].dtype == np.int64 and list(frame["step"]) == [6, 12, 18, 24]
    for name, values in result.columns().items():
        assert np.array_equal(frame[name].to_numpy(dtype=np.float64), values)


def test_plot_returns_the_curves_and_saves_them_only_when_asked(result, tmp_path):
    fig = result.plot()
    path = tmp_path / "curves.png"
    again = result.plot(path)

    assert isinstance(fig, Figure) and [ax.get_title() for ax in fig.axes] == \
        ["cost", "loss", "accuracy"]
    line = fig.axes[2].lines[1]  # validation accuracy
    assert np.array_equal(line.get_xdata(), result.columns()["step"])
    assert np.array_equal(line.get_ydata(), result.columns()["val_acc"])
    assert isinstance(again, Figure) and Image.open(path).size[0] > 500
    assert list(tmp_path.iterdir()) == [path]


def test_progress_shows_a_bar_that_reaches_every_step(data, capsys):
    cifar_engine.fit(CONFIG, data, progress=True)

    err = capsys.readouterr().err
    assert "training" in err and "24/24" in err and "val_acc=" in err


def test_a_missing_extra_is_one_line_naming_it(result, data, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)

    with pytest.raises(UserError, match=r"needs pandas: pip install 'cifar-engine\[notebook\]'"):
        result.to_frame()
    with pytest.raises(UserError, match=r"needs tqdm: pip install 'cifar-engine\[notebook\]'"):
        cifar_engine.fit(TrainConfig(hidden=(4,), steps=10**9), data, progress=True)


# -- figures of an unfinished run --------------------------------------------------------------

def _interrupted(images, out, after_evaluations):
    """A run folder stopped (as by Ctrl-C) after its `after_evaluations`-th evaluation."""
    stop = Stop()
    seen = []

    def evaluated(trainer, row):
        seen.append(row)
        if len(seen) == after_evaluations:
            stop.request("SIGINT")
    config = TrainConfig(**{**CONFIG.to_dict(), "data": str(images), "checkpoint_every": 1000})
    with pytest.raises(Interrupted):
        cifar_engine.train(config, out=out, cache_dir=out.parent / "cache", stop=stop,
                           observers=[Callbacks(on_evaluation=evaluated)])
    return out


def test_an_interrupted_run_draws_its_curves_and_its_checkpoints_templates(images, tmp_path):
    run = _interrupted(images, tmp_path / "run", after_evaluations=2)
    (run / "best.npz").unlink()  # a run before its first best model: the checkpoint's

    drawn = draw_figures(run)

    assert not (run / "model.npz").exists()
    assert [path.name for path, _ in drawn] == ["curves.png", "templates.png"]
    assert "2 evaluations, to step 12" in drawn[0][1] and "checkpoint.npz" in drawn[1][1]
    assert all(Image.open(path).size[0] > 100 for path, _ in drawn)


def test_a_run_with_only_metrics_draws_its_curves_alone(images, tmp_path):
    run = _interrupted(images, tmp_path / "run", after_evaluations=1)
    for name in ("best.npz", "checkpoint.npz"):
        (run / name).unlink()

    assert [path.name for path, _ in draw_figures(run)] == ["curves.png"]
    assert not (run / "templates.png").exists()


def test_a_folder_with_nothing_to_draw_is_one_error(tmp_path):
    (tmp_path / "run").mkdir()

    with pytest.raises(UserError, match="nothing to draw yet"):
        draw_figures(tmp_path / "run")
    with pytest.raises(UserError, match="no such folder"):
        draw_figures(tmp_path / "missing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert not list((tmp_path / "run").iterdir())
