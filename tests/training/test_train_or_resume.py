"""`train_or_resume`: what a job that may be requeued runs, a run started, resumed, or left."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from cifar_engine import SettingError, TrainConfig
from cifar_engine.training.loop import Callbacks, Interrupted, Stop
from cifar_engine.training.run import train, train_or_resume
from fakes import write_image_tree


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    root = write_image_tree(tmp_path_factory.mktemp("tiny") / "images", per_class=(100, 20),
                            size=(8, 8)).path
    return TrainConfig(data=str(root), hidden=(12,), batch_size=10, schedule="triangular",
                       n_s="2ep", cycles=2, eta_min=1e-4, eta_max=0.05, eval_every=6,
                       checkpoint_every=12)


@pytest.fixture(scope="module")
def whole(config, tmp_path_factory):
    """(RunResult, summary) of the run trained without a stop."""
    return train(config, tmp_path_factory.mktemp("whole") / "run")


def _interrupted(config, out, at_step=18):
    """The run of `config` in `out`, stopped (as SIGTERM stops it) after step `at_step`."""
    stop = Stop()
    watch = Callbacks(on_evaluation=lambda t, row: row.step >= at_step and stop.request("SIGTERM"))
    with pytest.raises(Interrupted):
        train(config, out, observers=[watch], stop=stop)


def test_an_interrupted_run_is_resumed_and_ends_as_the_uninterrupted_one(config, whole,
                                                                         tmp_path):
    _interrupted(config, tmp_path / "run")
    before = (tmp_path / "run" / "metrics.csv").read_text()

    result, summary = train_or_resume(config, tmp_path / "run")

    assert result.history[:3] == whole[0].history[:3] and before.count("\n") == 4
    assert result.history == whole[0].history and result.test_acc == whole[0].test_acc
    assert result.losses.shape == (whole[0].steps - 18,)
    assert np.array_equal(result.losses, whole[0].losses[18:])
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())


def test_a_finished_run_is_left_as_it_is(config, whole, tmp_path):
    train(config, tmp_path / "run")
    files = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}

    result, summary = train_or_resume(config, tmp_path / "run")

    assert result is None and summary["test_acc"] == whole[0].test_acc
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == files


def test_a_missing_folder_and_a_run_stopped_before_its_first_checkpoint_start_afresh(
        config, whole, tmp_path):
    result, _ = train_or_resume(config, tmp_path / "new" / "run")
    assert result.history == whole[0].history

    (tmp_path / "early").mkdir()  # killed before its first checkpoint: config.toml alone
    shutil.copy(tmp_path / "new" / "run" / "config.toml", tmp_path / "early" / "config.toml")
    result, _ = train_or_resume(config, tmp_path / "early")
    assert result.history == whole[0].history
    assert (tmp_path / "early" / "summary.json").exists()


@pytest.mark.parametrize("state", ["interrupted", "finished"])
def test_a_run_of_other_settings_is_one_error_naming_the_first_and_is_left_alone(config,
                                                                                state, tmp_path):
    if state == "interrupted":
        _interrupted(config, tmp_path / "run")
    else:
        train(config, tmp_path / "run")
    files = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}

    with pytest.raises(SettingError) as err:
        train_or_resume(replace(config, lam=0.5), tmp_path / "run")

    assert err.value.setting == "lam"
    assert str(err.value) == (f"lam is 0.5 here, {config.lam} in the run in {tmp_path / 'run'}: "
                              f"give the same settings to carry on that run, or another out")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == files
