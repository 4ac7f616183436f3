"""Run logging (`training.loggers`), read back with TensorBoard's own reader and MLflow's
client."""
import sys

import numpy as np
import pytest

import cifar_engine
from cifar_engine import TrainConfig, UserError
from cifar_engine.training.loggers import (FINAL, LOGGED, TAGS, Logs, MlflowObserver,
                                           TensorBoardObserver, hyperparameters)
from fakes import write_image_tree
from logged import hparams_of, read_events


def _data(tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(100, 20), size=(8, 8)).path
    return cifar_engine.load_dataset(root, cache_dir=tmp_path / "cache")


CONFIG = TrainConfig(hidden=(12, 6), batch_size=10, schedule="triangular", n_s="2ep",
                     cycles=1, eta_min=1e-4, eta_max=0.05, eval_every=7)


def test_tensorboard_holds_each_evaluation_the_batch_losses_templates_and_hparams(tmp_path):
    result = cifar_engine.fit(CONFIG, _data(tmp_path),
                              observers=[TensorBoardObserver(tmp_path / "tb")])
    events = read_events(tmp_path / "tb")

    columns = result.columns()
    assert len(columns["step"]) == 4  # steps 7, 14, 21 and the last, 24
    for column, tag in TAGS.items():
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == list(columns["step"])
        assert np.array_equal(np.float32([e.value for e in logged]),
                              np.float32(columns[column]))
    batch = events.Scalars("batch/loss")  # a segment's mean at its last step
    ends = [e.step for e in batch]
    assert ends[-1] == result.steps and ends == sorted(set(ends))
    assert set(columns["step"]) <= set(ends)  # every evaluation ends a segment
    means = [np.mean(result.losses[a:b], dtype=np.float64) for a, b in zip([0, *ends], ends)]
    assert np.array_equal(np.float32([e.value for e in batch]), np.float32(means))
    for name in FINAL:
        (final,) = events.Scalars(f"final/{name}")
        assert final.step == result.steps and final.value == np.float32(getattr(result, name))
    templates = events.Images("templates")
    assert [e.step for e in templates] == list(columns["step"])
    assert templates[-1].encoded_image_string.startswith(b"\x89PNG")

    names, metrics, values = hparams_of(events)
    assert names == set(CONFIG.to_dict()) and metrics == {*(f"final/{n}" for n in FINAL),
                                                          "acc/val"}
    assert values["hidden"] == "12,6" and values["batch_size"] == 10
    assert values["schedule"] == "triangular" and values["flip"] is False


def test_hyperparameters_are_scalars_hidden_spelled_as_the_command_line_does():
    params = hyperparameters(TrainConfig(hidden=()))
    assert params["hidden"] == "none"
    assert all(isinstance(v, (str, int, float, bool)) for v in params.values())


def test_a_run_without_a_folder_or_logdir_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError, match="give a logdir"):
        cifar_engine.fit(CONFIG, _data(tmp_path), observers=[TensorBoardObserver()])


@pytest.mark.parametrize("name, modules, extra", [
    ("tensorboard", ("tensorboardX",), "tensorboard"),
    ("mlflow", ("mlflow", "mlflow.tracking"), "mlflow")])
def test_a_missing_extra_is_one_line_naming_it(monkeypatch, name, modules, extra):
    for module in modules:  # None in sys.modules: the import fails, as when not installed
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(UserError) as caught:
        Logs((name,)).observers()
    message = str(caught.value)
    assert "\n" not in message and f"pip install 'cifar-engine[{extra}]'" in message


def test_an_unknown_logger_is_a_setting_error():
    with pytest.raises(UserError, match="--log|log must be one of"):
        Logs(("wandb",))


def test_mlflow_holds_params_metric_history_and_artifacts(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # a given store keeps MLflow's artifact root: ./mlruns
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    result = cifar_engine.fit(CONFIG, _data(tmp_path), observers=[
        MlflowObserver(uri, experiment="tests", run_name="tiny")])

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tests")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tiny" and run.info.status == "FINISHED"
    assert run.data.params == {k: str(v) for k, v in hyperparameters(result.config).items()}
    columns = result.columns()
    for name in LOGGED:
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == list(columns["step"])
        assert [m.value for m in history] == list(columns[name])
    for name in FINAL:
        assert run.data.metrics[f"final_{name}"] == getattr(result, name)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"model.npz", "curves.png", "templates.png"}
