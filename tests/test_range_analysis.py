"""LR range test analysis: ramps, smoothing, the stop, the rules on curves with known
answers, the median of repeats, and the figure."""
import numpy as np
import pytest
from PIL import Image

from cifar_engine.errors import SettingError, UserError
from cifar_engine.plots import lr_range_figure
from cifar_engine.range_analysis import (DEFAULT_RULE, RULES, Curve, NoSuggestion,
                                         accuracy_rule, lr_ramp, median_curve, minimum_rule,
                                         smooth, smooth_centered, steepest_rule, stop_index,
                                         suggest)
from cifar_engine.settings import RANGE_TEST


def test_ramps_run_from_lr_min_to_lr_max_evenly_or_evenly_in_log():
    linear, exp = lr_ramp(1e-4, 1.0, 101, "linear"), lr_ramp(1e-4, 1.0, 101, "exp")

    assert linear.dtype == exp.dtype == np.float64 and linear.shape == exp.shape == (101,)
    assert linear[0] == exp[0] == 1e-4 and linear[-1] == pytest.approx(1.0)
    assert exp[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(linear), (1.0 - 1e-4) / 100)
    np.testing.assert_allclose(exp[1:] / exp[:-1], 10 ** (4 / 100))


@pytest.mark.parametrize("args, setting", [((0.0, 1.0, 10, "exp"), "lr_min"),
                                           ((1.0, 0.1, 10, "exp"), "lr_min"),
                                           ((1e-3, 1.0, 1, "exp"), "n_steps"),
                                           ((1e-3, 1.0, 10, "cosine"), "mode")])
def test_ramp_errors_name_their_setting(args, setting):
    with pytest.raises(SettingError) as caught:
        lr_ramp(*args)
    assert caught.value.setting == setting


def test_smooth_is_the_bias_corrected_weighted_mean_of_the_past():
    x = np.random.default_rng(0).normal(2.0, 1.0, 300)
    beta = 0.9

    # independent: step t is the mean of x_0..x_t with weights beta^(t-k)
    t, k = np.arange(300)[:, None], np.arange(300)[None, :]
    weights = np.where(k <= t, beta ** np.maximum(t - k, 0), 0.0)
    expected = weights @ x / weights.sum(axis=1)

    np.testing.assert_allclose(smooth(x, beta), expected, rtol=1e-12)
    np.testing.assert_array_equal(smooth(x, 0.0), x)
    assert smooth(x, 0.98).dtype == np.float64


def test_smooth_of_a_constant_is_the_constant_from_the_first_step():
    np.testing.assert_allclose(smooth(np.full(50, 3.0)), 3.0, rtol=1e-12)


def test_centred_smoothing_has_no_lag_on_a_ramp():
    ramp = np.arange(2000, dtype=np.float64)

    lagging, centred = smooth(ramp, 0.9)[500:1500], smooth_centered(ramp, 0.9)[500:1500]
    np.testing.assert_allclose(lagging, ramp[500:1500] - 9, atol=1e-6)  # beta/(1-beta) steps
    np.testing.assert_allclose(centred, ramp[500:1500], atol=1e-6)


def test_stop_index():
    assert stop_index([3.0, 2.0, 1.0, 2.0, 3.9, 4.5, 1.0], stop_factor=4) == 5
    assert stop_index([3.0, 2.0, np.nan, 100.0], stop_factor=4) == 2
    assert stop_index([3.0, 2.0, np.inf], stop_factor=4) == 2
    assert stop_index([3.0, 2.0, 1.0], stop_factor=4) is None


def test_stop_index_against_a_plain_loop():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = np.exp(rng.normal(0, 1, 40))
        expected, least = None, np.inf
        for t, v in enumerate(s):
            least = min(least, v)
            if v > 3 * least:
                expected = t
                break
        assert stop_index(s, 3) == expected


# -- a test with known answers ----------------------------------------------------------------

N = 2001
LR = lr_ramp(1e-5, 1.0, N, "exp")
STOP_FACTOR = RANGE_TEST["stop_factor"].default
DECADE = np.log10(LR)


def known_curve(noise=0.0, beta=0.98, seed=0, n=N):
    """Accuracy flat at 0.1 up to lr 1e-3, rising linearly in log lr to 0.5 at lr 0.1,
    falling after; loss falling to its least at lr 0.1, fastest at lr 1e-2, blowing up
    past lr 0.3."""
    rng = np.random.default_rng(seed)
    acc = np.where(DECADE < -3, 0.1, np.where(DECADE < -1, 0.1 + 0.2 * (DECADE + 3),
                                              0.5 - 0.4 * (DECADE + 1)))
    loss = 2.3 - 1.0 / (1.0 + np.exp(-(DECADE + 2) / 0.25)) + 0.05 * (DECADE + 1) ** 2
    loss = np.where(DECADE < -0.5, loss, loss * 10 ** (8 * (DECADE + 0.5)))
    acc = acc + noise * rng.normal(size=N)
    loss = loss * (1 + noise * rng.normal(size=N))
    return Curve.build(LR[:n], loss[:n], acc[:n], beta=beta, stop_factor=STOP_FACTOR)


def test_a_curve_stops_where_the_loss_blows_up_and_smooths_the_accuracy_before():
    curve = known_curve()

    assert 0.3 < curve.lr[curve.stop] < 0.6
    assert np.isfinite(curve.acc_smoothed[:curve.stop]).all()
    assert np.isnan(curve.acc_smoothed[curve.stop:]).all()


def test_the_accuracy_rule_finds_where_the_accuracy_starts_to_rise_and_slows():
    # 10% of the rise at lr 10^-2.8, 90% at 10^-1.2 (linear in log lr)
    assert accuracy_rule(known_curve(beta=0.0)) == pytest.approx((10 ** -2.8, 10 ** -1.2),
                                                                  rel=1e-6)
    for seed in range(3):
        eta_min, eta_max = accuracy_rule(known_curve(noise=0.05, seed=seed))
        assert 10 ** -2.8 / 1.5 < eta_min < 10 ** -2.8 * 1.5
        assert 10 ** -1.2 / 1.5 < eta_max < 10 ** -1.2 * 1.5


def test_the_validation_accuracy_rule_reads_the_same_bounds_off_a_few_points():
    full = known_curve(beta=0.0)
    steps = np.arange(0, N, 50)
    curve = Curve.build(full.lr, full.loss, full.acc, steps, full.loss[steps], full.acc[steps],
                        stop_factor=STOP_FACTOR)

    eta_min, eta_max = suggest(curve, "val-accuracy")
    assert eta_min == pytest.approx(10 ** -2.8, rel=0.1)
    assert eta_max == pytest.approx(10 ** -1.2, rel=0.1)
    with pytest.raises(NoSuggestion, match="validation points"):
        suggest(full, "val-accuracy")


def test_an_accuracy_that_never_rises_has_no_suggestion():
    curve = Curve.build(LR, np.full(N, 2.3), 0.1 + 0.01 * np.random.default_rng(0).random(N),
                        stop_factor=STOP_FACTOR)

    with pytest.raises(NoSuggestion, match="never rose"):
        accuracy_rule(curve)


def test_the_steepest_rule_finds_the_fastest_fall_of_the_loss():
    eta_min, eta_max = steepest_rule(known_curve(beta=0.0))
    # the fall is fastest at lr 1e-2 (the quadratic term tilts it a little lower)
    expected = LR[np.argmin(np.gradient(known_curve(beta=0.0).loss[:1800], DECADE[:1800]))]
    assert eta_max == pytest.approx(expected, rel=0.05)
    assert 10 ** -2.2 < eta_max < 10 ** -1.9
    assert eta_min == pytest.approx(eta_max / 10)
    # the smoothed loss lags by about 49 steps, an eighth of a decade; noise early on, where
    # the smoothed loss rests on few batches, is not taken for the fall
    for seed in range(3):
        assert 10 ** -2.2 < steepest_rule(known_curve(noise=0.05, seed=seed))[1] < 10 ** -1.6


def test_the_minimum_rule_backs_off_a_decade_from_the_least_loss():
    curve = known_curve(beta=0.0)
    least = LR[np.argmin(curve.loss[:curve.stop])]

    assert minimum_rule(curve) == pytest.approx((least / 100, least / 10))
    assert 0.05 < least < 0.2


def test_suggest_goes_through_the_registry():
    curve = known_curve()

    assert DEFAULT_RULE in RULES
    assert suggest(curve) == RULES[DEFAULT_RULE](curve)
    assert suggest(curve, "minimum") == minimum_rule(curve)
    with pytest.raises(SettingError, match="rule must be one of"):
        suggest(curve, "best")


# -- repeats ----------------------------------------------------------------------------------

def test_the_median_of_repeats_runs_as_far_as_half_of_them():
    curves = [known_curve(noise=0.05, seed=s, n=n) for s, n in ((0, 1900), (1, 1500), (2, 1200))]
    stops = [c.stop for c in curves]
    length = sorted(stops)[1]

    band = median_curve(curves, stop_factor=STOP_FACTOR)

    assert band.n_repeats == 3 and len(band.curve.lr) == length
    np.testing.assert_array_equal(band.curve.lr, LR[:length])
    for t in (0, 700, length - 1):
        reached = [c for c in curves if c.stop > t]
        assert band.curve.loss[t] == np.median([c.loss[t] for c in reached])
        assert band.acc_low[t] == min(c.acc_smoothed[t] for c in reached)
        assert band.loss_high[t] == max(c.smoothed[t] for c in reached)
    assert 10 ** -2.8 / 1.5 < suggest(band.curve)[0] < 10 ** -2.8 * 1.5


def test_the_median_of_one_curve_is_that_curve():
    curve = known_curve(noise=0.05)

    band = median_curve([curve], stop_factor=STOP_FACTOR)
    np.testing.assert_array_equal(band.curve.smoothed, curve.smoothed[:curve.stop])
    np.testing.assert_array_equal(band.loss_low, band.loss_high)


def test_repeats_of_different_ramps_are_an_error():
    other = Curve.build(LR * 2, np.ones(N), np.zeros(N), stop_factor=STOP_FACTOR)

    with pytest.raises(UserError, match="different learning rates"):
        median_curve([known_curve(), other], stop_factor=STOP_FACTOR)


# -- the figure -------------------------------------------------------------------------------

@pytest.mark.parametrize("repeats", [1, 3])
def test_the_figure_is_written(tmp_path, repeats):
    curves = [known_curve(noise=0.05, seed=s) for s in range(repeats)]
    steps = np.arange(0, N, 100)
    curves[0] = Curve.build(curves[0].lr, curves[0].loss, curves[0].acc, steps,
                            curves[0].loss[steps], curves[0].acc[steps], stop_factor=STOP_FACTOR)
    shown = median_curve(curves, stop_factor=STOP_FACTOR) if repeats > 1 else curves[0]
    analysed = shown.curve if repeats > 1 else shown
    suggestions = {name: suggest(analysed, name) for name in ("accuracy", "steepest")}

    path = tmp_path / "lr-range.png"
    fig = lr_range_figure(shown, suggestions, "exp", path)

    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    assert Image.open(path).size[0] > 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr-range.png"]


def test_a_curve_smoothed_and_stopped_a_chunk_at_a_time_is_the_whole_curves():
    from cifar_engine.range_analysis import Smoother, smooth, stop_index

    rng = np.random.default_rng(5)
    loss = np.concatenate([2.5 - np.linspace(0, 1, 300) + 0.1 * rng.standard_normal(300),
                           np.geomspace(1.5, 40, 60)])
    whole = smooth(loss)
    smoother, least, chunks, stop = Smoother(), np.inf, [], None
    for start in range(0, loss.size, 37):
        part = smoother.add(loss[start:start + 37])
        chunks.append(part)
        at = stop_index(part, STOP_FACTOR, least)
        if at is not None:
            stop = start + at
            break
        least = min(least, part.min())
    np.testing.assert_array_equal(np.concatenate(chunks), whole[:len(np.concatenate(chunks))])
    assert stop == stop_index(whole, STOP_FACTOR) and stop is not None
