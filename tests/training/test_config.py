"""Run settings: n_s in steps or epochs, limits named by their setting, TOML round trip,
and how presets, config files and explicit settings combine."""
import os

import pytest

from cifar_engine.errors import SettingError, UserError
from cifar_engine.training.config import TrainConfig, resolve_config, resume_config


@pytest.mark.parametrize("n_s, steps_per_epoch, expected", [("500", 90, 500), ("2ep", 90, 180),
                                                            ("2.5ep", 100, 250)])
def test_n_s_in_steps_or_epochs(n_s, steps_per_epoch, expected):
    assert TrainConfig(schedule="triangular", n_s=n_s).half_cycle(steps_per_epoch) == expected


@pytest.mark.parametrize("settings, setting", [
    ({"eta_min": 0.1, "eta_max": 0.01}, "eta_min"),
    ({"lam": -1.0}, "lam"),
    ({"dropout": 1.0}, "dropout"),
    ({"hidden": (50, 0)}, "hidden"),
    ({"n_s": "soon"}, "n_s"),
    ({"cycles": 2, "epochs": 3}, "epochs"),
    ({"momentum": 1.0}, "momentum"),
    ({"seed": -1}, "seed"),
    ({"seed": 1180591620717411303424}, "seed"),
    ({"hidden": "abc"}, "hidden"),
    ({"hidden": [50.7]}, "hidden"),
    ({"seed": "abc"}, "seed"),
    ({"batch_size": 1.5}, "batch_size"),
    ({"steps": 20.7}, "steps"),
    ({"eval_every": 2.5}, "eval_every"),
    ({"split": "all", "n_val": 1000.5}, "n_val"),
    ({"n_val": 5000}, "n_val"),  # with split batch1, which has no n_val
    ({"lam": float("nan")}, "lam"),
    ({"steps": 10**11}, "steps"),
    ({"schedule": "constant", "cycles": 3}, "cycles"),
])
def test_invalid_settings_name_their_setting(settings, setting):
    with pytest.raises(SettingError) as caught:
        TrainConfig(**settings)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting + " ")


@pytest.mark.parametrize("text", ['hidden = "abc"', 'seed = "abc"', "batch_size = 1.5",
                                  "steps = 20.7", "eval_every = 2.5", "n_val = 1000.5",
                                  "hidden = [50.7]", "seed = -1", "flip = 3", "dropout = true"])
def test_bad_config_files_name_the_file_and_the_setting(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text('split = "all"\n' + text + "\n")
    with pytest.raises(UserError, match=str(path)) as caught:
        TrainConfig.from_toml(path)
    assert text.split()[0] in str(caught.value) and len(str(caught.value).splitlines()) == 1


@pytest.mark.timeout(20)
@pytest.mark.parametrize("make, what", [(os.mkdir, "a folder"), (os.mkfifo, "a FIFO")])
def test_a_config_file_that_is_not_a_regular_file_is_refused_in_one_line(tmp_path, make,
                                                                          what):
    make(tmp_path / "config.toml")
    with pytest.raises(UserError, match=f"config.toml: {what}, not a regular file$"):
        TrainConfig.from_toml(tmp_path / "config.toml")


def test_a_stop_rule_beside_a_preset_replaces_the_presets(tmp_path):
    config, _ = resolve_config("two-layer-tuned", settings={"steps": 300})
    assert (config.steps, config.cycles, config.lam) == (300, 0, 0.006)
    file = tmp_path / "config.toml"
    file.write_text(config.to_toml())
    config, _ = resolve_config(config_file=file, settings={"epochs": 2})
    assert (config.steps, config.epochs) == (0, 2)


def test_cyclical_settings_without_a_schedule_choose_triangular():
    config, notes = resolve_config(settings={"eta_min": 1e-5, "eta_max": 0.1, "n_s": "900",
                                             "cycles": 3})
    assert config.schedule == "triangular" and "triangular" in notes[0]
    assert config.to_toml(notes).startswith("# schedule = 'triangular'")
    with pytest.raises(SettingError, match="cycles needs a cyclical schedule"):
        resolve_config(settings={"schedule": "constant", "cycles": 3})


def test_explicit_settings_override_the_preset_and_the_config_file(tmp_path):
    file = tmp_path / "config.toml"
    file.write_text(TrainConfig(lam=0.5, hidden=(7,)).to_toml())
    config, _ = resolve_config("two-layer-tuned", file, {"lam": 0.25})
    assert (config.lam, config.hidden) == (0.25, (7,))
    with pytest.raises(SettingError, match="preset must be one of"):
        resolve_config("nope")


def test_a_resumed_run_takes_a_new_stop_rule_and_refuses_other_changes():
    config = TrainConfig(schedule="triangular", cycles=3, lam=0.01)
    resumed, notes = resume_config(config, {"steps": 5, "lam": 0.01})
    assert (resumed.steps, resumed.cycles, resumed.lam) == (5, 0, 0.01)
    assert notes == ["resumed with steps = 5 (was 0)"]
    with pytest.raises(SettingError, match="lam cannot change when resuming"):
        resume_config(config, {"lam": 3.0})


def test_a_config_survives_its_toml_file(tmp_path):
    config = TrainConfig(hidden=(50, 30), batch_norm=True, lam=0.005, schedule="triangular2",
                         n_s="2ep", cycles=3, flip=True, translate=2, data="somewhere")
    (tmp_path / "config.toml").write_text(config.to_toml())
    assert TrainConfig.from_toml(tmp_path / "config.toml") == config


def test_one_cycle_runs_ten_epochs_by_default_and_takes_no_cycles():
    config = TrainConfig(schedule="one-cycle", eta_min=1e-3, eta_max=0.1, warmup=0.3,
                         anneal="linear")
    assert config.total_steps(90) == 900
    with pytest.raises(SettingError, match="cycles needs a cyclical schedule, got one-cycle"):
        TrainConfig(schedule="one-cycle", cycles=2)
    with pytest.raises(SettingError, match="warmup applies to schedule one-cycle only"):
        TrainConfig(schedule="triangular", warmup=0.3)
