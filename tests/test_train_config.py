"""Run settings: n_s in steps or epochs, limits named by their option, TOML round trip."""
import pytest

from cifar_engine.errors import UserError
from cifar_engine.train_config import TrainConfig


@pytest.mark.parametrize("n_s, steps_per_epoch, expected", [("500", 90, 500), ("2ep", 90, 180),
                                                            ("2.5ep", 100, 250)])
def test_n_s_in_steps_or_epochs(n_s, steps_per_epoch, expected):
    assert TrainConfig(schedule="triangular", n_s=n_s).half_cycle(steps_per_epoch) == expected


@pytest.mark.parametrize("settings, option", [
    ({"eta_min": 0.1, "eta_max": 0.01}, "--eta-min"),
    ({"lam": -1.0}, "--lam"),
    ({"dropout": 1.0}, "--dropout"),
    ({"hidden": (50, 0)}, "--hidden"),
    ({"n_s": "soon"}, "--n-s"),
    ({"cycles": 2, "epochs": 3}, "at most one of"),
    ({"momentum": 1.0}, "--momentum"),
])
def test_invalid_settings_name_their_option(settings, option):
    with pytest.raises(UserError, match=option):
        TrainConfig(**settings)


def test_a_config_survives_its_toml_file(tmp_path):
    config = TrainConfig(hidden=(50, 30), batch_norm=True, lam=0.005, schedule="triangular2",
                         n_s="2ep", cycles=3, flip=True, translate=2, data="somewhere")
    (tmp_path / "config.toml").write_text(config.to_toml())
    assert TrainConfig.from_toml(tmp_path / "config.toml") == config
