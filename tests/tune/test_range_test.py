"""The LR range test as it runs: a fresh network while eta rises, stopped when the loss
blows up, its suggestions written to a folder that `train --eta-from` reads."""
import json
import os
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from cifar_engine.cli.main import cli, main
from cifar_engine.data import load_dataset
from cifar_engine.errors import SettingError, UserError
from cifar_engine.range_analysis import eta_from
from cifar_engine.training.config import TrainConfig
from cifar_engine.training.folder import RunFolder
from cifar_engine.tune.range_test import RangeTest, run_range_test, write_range_test
from fakes import assert_one_line_error, write_image_tree


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


def _range_test(tiny, out, *args):
    return CliRunner().invoke(cli, ["lr-range-test", "--data", str(tiny[0]), "--hidden", "16",
                                    "--batch-size", "10", "--out", str(out), *map(str, args)])


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--steps", "0"], "--steps must be >= 1, got 0"),
    (["--steps", "1"], "--steps must be >= 2 in a range test"),
    (["--epochs", "1", "--batch-size", "60"], "--epochs gives 1 step, fewer than a range "
                                               "test's 2"),  # 60 training images: one batch
])
def test_a_test_too_short_for_a_ramp_names_the_flag_and_leaves_nothing(tiny, tmp_path, args,
                                                                       message):
    result = _range_test(tiny, tmp_path / "t", *args)

    assert_one_line_error(result, message)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("files, holds", [
    (["lr_range.json"], "holds another LR range test (lr_range.json): choose another "
                        "folder, or replace it with --overwrite"),
    (["config.toml", "model.npz"], "holds a run (config.toml, model.npz): choose another "
                                   "folder"),
    (["search.json"], "holds a search (search.json): choose another folder"),
])
def test_a_folder_holding_a_test_or_another_run_is_refused(tiny, tmp_path, files, holds):
    (tmp_path / "t").mkdir()
    for name in files:
        (tmp_path / "t" / name).write_text("earlier")

    result = _range_test(tiny, tmp_path / "t", "--steps", "6")

    assert_one_line_error(result, f"--out {tmp_path / 't'} {holds}")
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == sorted(files)


def test_overwrite_replaces_an_earlier_test(tiny, tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "lr_range.json").write_text("earlier")

    result = _range_test(tiny, tmp_path / "t", "--steps", "6", "--overwrite")

    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "t" / "lr_range.json").read_text())["steps"] == [6]


def test_a_folder_under_test_is_refused_to_a_second_test(tiny, tmp_path):
    with RunFolder(tmp_path / "t", "lr-range-test").claim_new():
        result = _range_test(tiny, tmp_path / "t", "--steps", "6")

    assert_one_line_error(result, f"--out {tmp_path / 't'}: in use by another run (process "
                                  f"{os.getpid()})")


def test_writing_a_test_claims_the_folder(tiny, tmp_path):
    result = run_range_test(replace(CONFIG, epochs=0, steps=6), RangeTest(), tiny[1])
    (tmp_path / "model.npz").write_text("a run's")

    with pytest.raises(SettingError, match="holds a run"):
        write_range_test(result, tmp_path)
    assert os.listdir(tmp_path) == ["model.npz"]


def test_the_result_as_a_frame_a_figure_and_a_bar(tiny, tmp_path, capsys):
    import pandas

    result = run_range_test(CONFIG, RangeTest(lr_min=1e-4, lr_max=0.5, repeats=2), tiny[1],
                            progress=True)
    err = capsys.readouterr().err
    write_range_test(result, tmp_path)

    assert "range test" in err and "240/240" in err  # 2 repeats of 120 steps
    frame = result.to_frame()
    written = pandas.read_csv(tmp_path / "lr_range.csv")
    pandas.testing.assert_frame_equal(frame, written, check_dtype=False)
    assert list(frame["repeat"].unique()) == [0, 1] and frame["val_acc"].notna().sum() == 40
    fig = result.plot()
    assert [ax.get_title() for ax in fig.axes] == ["accuracy", "loss"]
    assert (tmp_path / "lr_range.png").stat().st_size > 0
