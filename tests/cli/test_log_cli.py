"""`--log tensorboard` and `--log mlflow` on `cifar-engine train` and `search`, read back with
TensorBoard's reader and MLflow's client. `images` is conftest's tiny image folder."""
import csv
import sys

import numpy as np
import pytest

from cifar_engine.cli.main import main
from cifar_engine.training.loggers import FINAL, LOGGED, TAGS
from fakes import FAST_TRAIN as FAST
from logged import hparams_of, read_events

SEARCH = ["--batch-size", "10", "--n-s", "2ep", "--param", "lam=1e-5:1e-1:log",
          "--stage", "3:1cycles"]


def _metrics(run):
    with open(run / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return {name: np.array([float(r[name]) for r in rows]) for name in rows[0]}


@pytest.fixture(autouse=True)
def no_tracking_env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_train_logs_to_tensorboard_in_the_run_folder(capsys, images, tmp_path):
    run = tmp_path / "run"
    code = main(["train", "--data", str(images), "--out", str(run), *FAST, "--cycles", "1",
                 "--log", "tensorboard"])
    assert code == 0, capsys.readouterr().err
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    events, metrics = read_events(run / "tensorboard"), _metrics(run)
    for column, tag in TAGS.items():
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == list(metrics["step"])
        assert np.allclose([e.value for e in logged], metrics[column], rtol=1e-6)
    names, _, values = hparams_of(events)
    assert "lam" in names and values["hidden"] == "16"


def test_train_logs_to_mlflow_in_the_run_folder(capsys, images, tmp_path):
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    code = main(["train", "--data", str(images), "--out", str(run), *FAST, "--cycles", "1",
                 "--log", "mlflow"])
    assert code == 0, capsys.readouterr().err
    client = MlflowClient(f"sqlite:///{run / 'mlflow.db'}")
    (logged,) = client.search_runs([client.get_experiment_by_name("cifar-engine")
                                    .experiment_id])
    assert logged.info.run_name == "run" and logged.data.params["hidden"] == "16"
    metrics = _metrics(run)
    for name in LOGGED:
        history = client.get_metric_history(logged.info.run_id, name)
        assert [m.step for m in history] == list(metrics["step"])
        assert np.allclose([m.value for m in history], metrics[name], rtol=1e-6)
    for name in FINAL:
        assert f"final_{name}" in logged.data.metrics
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"model.npz", "summary.json", "curves.png", "templates.png"} == artifacts
    assert (run / "mlartifacts").is_dir()


def test_a_search_logs_one_tensorboard_run_per_trial(capsys, images, tmp_path):
    folder = tmp_path / "s"
    code = main(["search", "--data", str(images), "--out", str(folder), *SEARCH,
                 "--log", "tensorboard"])
    assert code == 0, capsys.readouterr().err
    names = ["stage0-trial0", "stage0-trial1", "stage0-trial2"]
    assert sorted(p.name for p in (folder / "tensorboard").iterdir()) == names
    trials = [read_events(folder / "tensorboard" / name) for name in names]
    with open(folder / "search.csv", newline="") as file:
        lams = [float(r["lam"]) for r in sorted(csv.DictReader(file),
                                                key=lambda r: int(r["trial"]))]
    # each trial's own settings in its HParams session, its final accuracies beside them
    assert [hparams_of(events)[2]["lam"] for events in trials] == pytest.approx(lams)
    assert all(events.Scalars("final/val_acc") for events in trials)


@pytest.mark.slow  # a search, its retraining and a new MLflow store (a minute on 2 cores)
def test_a_search_logs_one_mlflow_run_per_trial_and_the_retraining(capsys, images, tmp_path):
    from mlflow.tracking import MlflowClient

    folder = tmp_path / "s"
    code = main(["search", "--data", str(images), "--out", str(folder), *SEARCH,
                 "--retrain-best", "1cycles", "--log", "mlflow"])
    assert code == 0, capsys.readouterr().err
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("s").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["best", "stage0-trial0",
                                                     "stage0-trial1", "stage0-trial2"]
    assert all(r.info.status == "FINISHED" and "final_val_acc" in r.data.metrics
               for r in runs)
    assert len({r.data.params["lam"] for r in runs}) == 3  # the best's is its trial's


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_an_unknown_logger_is_one_line_naming_log(capsys, images, tmp_path, dry_run):
    code = main(["train", "--data", str(images), "--out", str(tmp_path / "run"),
                 "--log", "wandb", *dry_run])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == ("cifar-engine: error: --log must be one of "
                                         "tensorboard, mlflow, got 'wandb'")
    assert not (tmp_path / "run").exists()


def test_a_missing_extra_is_one_line_before_anything_is_written(capsys, monkeypatch, images,
                                                                 tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    code = main(["train", "--data", str(images), "--out", str(tmp_path / "run"), *FAST,
                 "--log", "tensorboard"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == ("cifar-engine: error: logging to TensorBoard needs "
                                         "tensorboardX: pip install 'cifar-engine[tensorboard]'")
    assert not (tmp_path / "run").exists()
