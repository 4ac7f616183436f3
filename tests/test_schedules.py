"""Learning-rate schedules against their formulas."""
import numpy as np
import pytest

from cifar_engine.schedules import eta_schedule


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
