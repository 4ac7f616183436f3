"""The LR range test as it runs: a fresh network while eta rises, stopped when the loss
blows up, its suggestions written to a folder that `train --eta-from` reads."""
import json

import numpy as np
import pytest

from cifar_engine.cli.main import main
from cifar_engine.data import load_dataset
from cifar_engine.errors import SettingError, UserError
from cifar_engine.lr_range_test import RangeTest, eta_from, run_range_test, write_range_test
from cifar_engine.train_config import TrainConfig
from fakes import write_image_tree


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "images"
    write_image_tree(root, per_class=(100, 20), size=(8, 8))
    return root, load_dataset(root, cache_dir=root.parent / "cache")


CONFIG = TrainConfig(hidden=(16,), batch_size=10, lam=0.001, epochs=20, eval_every=6)


def test_a_test_records_every_step_of_the_ramp(tiny):
    result = run_range_test(CONFIG, RangeTest(lr_min=1e-4, lr_max=0.5), tiny[1])
    curve = result.curves[0]
    assert len(curve.lr) == curve.stop == 120  # 20 epochs of 6 steps, none blew up
    assert np.allclose(curve.lr, np.linspace(1e-4, 0.5, 120))
    assert np.all(np.isfinite(curve.loss)) and np.all((curve.acc >= 0) & (curve.acc <= 1))
    assert list(curve.val_steps) == list(range(5, 120, 6))
    assert set(result.suggestions) == {"accuracy", "val-accuracy", "steepest", "minimum"}


def test_a_test_stops_where_the_loss_blows_up(tiny):
    result = run_range_test(CONFIG, RangeTest(lr_min=1e-3, lr_max=1e4, mode="exp"), tiny[1])
    curve = result.curves[0]
    assert len(curve.lr) < 120 and curve.stop <= len(curve.lr)
    assert np.allclose(curve.lr, np.geomspace(1e-3, 1e4, 120)[:len(curve.lr)])


def test_the_same_seed_gives_the_same_test_and_repeats_use_other_seeds(tiny):
    test = RangeTest(lr_min=1e-4, lr_max=0.5, repeats=2)
    a, b = run_range_test(CONFIG, test, tiny[1]), run_range_test(CONFIG, test, tiny[1])
    assert np.array_equal(a.curves[0].loss, b.curves[0].loss)
    assert not np.array_equal(a.curves[0].loss, a.curves[1].loss)
    assert a.band.n_repeats == 2 and a.suggestions == b.suggestions


def test_the_folder_holds_the_test_and_train_takes_its_bounds(tiny, tmp_path, capsys):
    result = run_range_test(CONFIG, RangeTest(lr_min=1e-4, lr_max=0.5), tiny[1])
    write_range_test(result, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"lr_range.csv", "lr_range.json",
                                                   "lr_range.png"}
    summary = json.loads((tmp_path / "lr_range.json").read_text())
    assert summary["rule"] == "accuracy" and summary["test"]["mode"] == "linear"
    rows = (tmp_path / "lr_range.csv").read_text().splitlines()
    assert rows[0].startswith("repeat,step,lr,loss") and len(rows) == 121
    if result.chosen is None:
        with pytest.raises(SettingError, match="suggested no bounds"):
            eta_from(tmp_path)
        return
    assert eta_from(tmp_path) == pytest.approx(result.chosen)
    code = main(["train", "--data", str(tiny[0]), "--hidden", "16", "--batch-size", "10",
                 "--eta-from", str(tmp_path), "--n-s", "6", "--cycles", "1", "--dry-run",
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0 and f"from {result.chosen[0]:.3g} to" in out and "range test in" in out


@pytest.mark.parametrize("settings, setting", [
    (dict(lr_min=0.0), "lr_min"), (dict(lr_min=1.0, lr_max=0.5), "lr_min"),
    (dict(mode="cubic"), "mode"), (dict(stop_factor=1.0), "stop_factor"),
    (dict(repeats=0), "repeats"), (dict(rule="magic"), "rule"),
])
def test_bad_test_settings_name_their_setting(settings, setting):
    with pytest.raises(SettingError) as caught:
        RangeTest(**settings)
    assert caught.value.setting == setting


def test_cycles_mean_nothing_in_a_range_test(tiny):
    with pytest.raises(SettingError, match="cycles has no meaning"):
        run_range_test(TrainConfig(schedule="triangular", cycles=2, batch_size=10), RangeTest(),
                       tiny[1])


def test_eta_from_a_folder_without_a_test_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no lr_range.json there"):
        eta_from(tmp_path)


def test_the_command_prints_every_rule_and_a_train_line(tiny, tmp_path, capsys):
    code = main(["lr-range-test", "--data", str(tiny[0]), "--hidden", "16", "--batch-size",
                 "10", "--epochs", "20", "--lr-min", "1e-4", "--lr-max", "0.5",
                 "--out", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert code == 0
    for rule in ("accuracy", "val-accuracy", "steepest", "minimum"):
        assert rule in out
    assert "<- used" in out and (tmp_path / "t" / "lr_range.png").exists()
    assert "cifar-engine train" in out or "suggests nothing" in out
