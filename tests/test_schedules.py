"""Learning-rate schedules against their formulas."""
import numpy as np
import pytest

from cifar_engine.errors import UserError
from cifar_engine.schedules import eta_schedule
from cifar_engine.train_config import TrainConfig


def test_triangular_rises_for_n_s_steps_and_falls_for_n_s():
    t = np.arange(0, 41)
    eta = eta_schedule(t, "triangular", eta_min=1e-5, eta_max=1e-1, n_s=10)
    assert eta[0] == pytest.approx(1e-5) and eta[10] == pytest.approx(1e-1)
    assert eta[20] == pytest.approx(1e-5) and eta[30] == pytest.approx(1e-1)
    assert eta[5] == pytest.approx(1e-5 + 0.5 * (1e-1 - 1e-5))
    assert np.all(np.diff(eta[:11]) > 0) and np.all(np.diff(eta[10:21]) < 0)


def test_triangular2_halves_the_amplitude_every_cycle():
    eta = eta_schedule(np.array([10, 30, 50]), "triangular2", eta_min=0.0 + 1e-9,
                       eta_max=1.0, n_s=10)
    np.testing.assert_allclose(eta - 1e-9, [1.0, 0.5, 0.25], rtol=1e-6)


def test_exp_range_decays_the_amplitude_by_gamma_per_step():
    eta = eta_schedule(np.array([10, 30]), "exp_range", eta_min=1e-9, eta_max=1.0, n_s=10,
                       gamma=0.99)
    np.testing.assert_allclose(eta - 1e-9, [0.99 ** 10, 0.99 ** 30], rtol=1e-6)


def test_constant_is_eta_everywhere():
    assert np.all(eta_schedule(np.arange(5), "constant", eta=0.3) == 0.3)


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
