"""Learning-rate schedules against their formulas."""
import math

import numpy as np
import pytest

from cifar_engine.errors import SettingError
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


def _one_cycle_reference(t, total, eta_min, eta_max, warmup, anneal):
    """One step's eta of Smith's one-cycle, written out step by step."""
    warm = max(1, round(warmup * total))
    if t < warm:
        return eta_min + (eta_max - eta_min) * t / warm
    f = (t - warm) / (total - warm)
    if anneal == "cos":
        return eta_max * (1 + math.cos(math.pi * f)) / 2
    return eta_max * (1 - f)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("total, warmup", [(100, 0.2), (7, 0.5), (1000, 0.05)])
def test_one_cycle_warms_up_then_anneals_to_zero(anneal, total, warmup):
    t = np.arange(total)
    eta = eta_schedule(t, "one-cycle", eta_min=1e-3, eta_max=0.1, total=total, warmup=warmup,
                       anneal=anneal)
    expected = [_one_cycle_reference(k, total, 1e-3, 0.1, warmup, anneal) for k in t]
    np.testing.assert_allclose(eta, expected, rtol=1e-12)
    warm = max(1, round(warmup * total))
    assert eta[0] == pytest.approx(1e-3) and eta[warm] == pytest.approx(0.1)
    assert np.all(np.diff(eta[warm:]) <= 0) and eta[-1] < 0.1 / max(total - warm, 1) * 1.01


def test_one_cycle_needs_the_runs_length_and_names_unknown_schedules():
    with pytest.raises(SettingError, match="one-cycle needs the run's length"):
        eta_schedule(np.arange(3), "one-cycle")
    with pytest.raises(SettingError, match="schedule must be one of"):
        eta_schedule(np.arange(3), "sawtooth")


def test_every_schedule_is_in_the_settings_table_and_reads_known_settings():
    from cifar_engine.schedules import SCHEDULES
    from cifar_engine.settings import SETTINGS

    assert SETTINGS["schedule"].choices == tuple(SCHEDULES)
    for schedule in SCHEDULES.values():
        assert set(schedule.reads) <= set(SETTINGS)


@pytest.mark.parametrize("schedule, given, missing", [
    ("constant", {}, "eta"),
    ("triangular", {"eta_min": 1e-5, "eta_max": 0.1}, "n_s"),
    ("exp_range", {"eta_min": 1e-5, "eta_max": 0.1, "n_s": 10}, "gamma"),
    ("one-cycle", {"eta_min": 1e-5, "eta_max": 0.1, "total": 10, "warmup": 0.2}, "anneal"),
])
def test_a_schedule_takes_no_default_of_its_own(schedule, given, missing):
    """The settings table alone states the defaults; a setting a schedule reads is given."""
    with pytest.raises(SettingError, match=f"^{missing} is needed by the {schedule} schedule"):
        eta_schedule(np.arange(3), schedule, **given)
