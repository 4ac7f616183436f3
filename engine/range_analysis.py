"""The analysis half of a learning-rate range test (Smith, "Cyclical Learning Rates for
Training Neural Networks", 2017, section 3.3): the ramp of learning rates, smoothing, where
to stop, rules that suggest the bounds (eta_min, eta_max) of a cyclical schedule, and the
median of repeated tests.

A test trains with eta rising step by step (`lr_ramp`) and records each step's batch loss
and batch accuracy (and, optionally, validation points); `Curve.build` smooths them and
finds where the loss blew up, and `suggest` applies a rule of `RULES`. A test's folder
keeps its choice in SUMMARY, which `eta_from` reads back for `train --eta-from`. The
test's settings (the ramp's mode, the stop factor) take their defaults from
`settings.RANGE_TEST` alone, so they have none here.
"""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SettingError, UserError, require
from .util.atomic import read_regular

RAMPS = {"linear": np.linspace, "exp": np.geomspace}
BETA = 0.98
RATIO = 10.0  # eta_max / eta_min of the loss rules, as fastai's suggestions space them
SUMMARY = "lr_range.json"  # a test folder's settings, rules' suggestions and choice


class NoSuggestion(UserError):
    """A rule finds nothing to suggest on this curve (e.g. the accuracy never rose)."""


def lr_ramp(lr_min, lr_max, n_steps, mode):
    """eta of each step of the test: float64 (n_steps,) from lr_min to lr_max, both included,
    evenly spaced ("linear") or evenly spaced in log ("exp")."""
    require(mode in RAMPS, "mode", f"must be one of {list(RAMPS)}, got {mode!r}")
    require(lr_min > 0, "lr_min", f"must be > 0, got {lr_min}")
    require(lr_min < lr_max, "lr_min", f"({lr_min}) must be < {{lr_max}} ({lr_max})")
    require(n_steps >= 2, "n_steps", f"must be >= 2, got {n_steps}")
    return RAMPS[mode](float(lr_min), float(lr_max), int(n_steps)).astype(np.float64)


class Smoother:
    """A bias-corrected exponential moving average fed a chunk at a time: `add(values)`
    gives the smoothed value after each of them (float64), as `smooth` over everything
    added so far would."""

    def __init__(self, beta=BETA):
        require(0 <= beta < 1, "beta", f"must be in [0, 1), got {beta}")
        self.beta, self.avg, self.weight = beta, 0.0, 1.0

    def add(self, values):
        x = np.asarray(values, dtype=np.float64)
        out = np.empty_like(x)
        for t, value in enumerate(x.tolist()):
            self.avg = self.beta * self.avg + (1.0 - self.beta) * value
            self.weight *= self.beta
            out[t] = self.avg / (1.0 - self.weight)
        return out


def smooth(values, beta=BETA):
    """Bias-corrected exponential moving average: float64, same length as values.

    avg_t = beta avg_{t-1} + (1 - beta) x_t with avg_{-1} = 0, out_t = avg_t / (1 - beta^(t+1)):
    the mean of x_0..x_t weighted by beta^(t-k). A non-finite value makes every later one
    non-finite.
    """
    return Smoother(beta).add(values)


def smooth_centered(values, beta=BETA):
    """`smooth` forward, then backward over the result: float64, same length as values.

    Without the lag of a one-way average (about beta / (1 - beta) steps), so positions read
    off it are where the raw curve has them.
    """
    return smooth(smooth(values, beta)[::-1], beta)[::-1].copy()


def stop_index(smoothed, stop_factor, least=np.inf):
    """The first step whose smoothed loss is not finite or exceeds stop_factor times the least
    smoothed loss up to it (the loss blew up), or None if there is none. Steps before it are
    the usable curve. least: the least smoothed loss before `smoothed` begins, when it
    continues a curve checked a chunk at a time."""
    require(stop_factor > 1, "stop_factor", f"must be > 1, got {stop_factor}")
    s = np.asarray(smoothed, dtype=np.float64)
    bad = ~np.isfinite(s)
    end = int(np.argmax(bad)) if bad.any() else len(s)
    blown = s[:end] > stop_factor * np.minimum(np.minimum.accumulate(s[:end]), least)
    if blown.any():
        return int(np.argmax(blown))
    return end if end < len(s) else None


@dataclass(frozen=True, eq=False)
class Curve:
    """One range test, as `Curve.build` makes it; arrays float64 unless said.

    lr, loss, acc (n,): eta, batch loss and batch accuracy of each step.
    smoothed (n,): `smooth(loss, beta)`. acc_smoothed (n,): `smooth_centered` of acc over the
    usable steps, NaN after. stop: steps [0, stop) are usable (`stop_index`, n if none).
    val_steps int64 (m,), val_loss, val_acc (m,): validation points after those steps
    (empty when not measured). beta: the smoothing's.
    """

    lr: np.ndarray
    loss: np.ndarray
    acc: np.ndarray
    smoothed: np.ndarray
    acc_smoothed: np.ndarray
    stop: int
    val_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    val_acc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beta: float = BETA

    @classmethod
    def build(cls, lr, loss, acc, val_steps=(), val_loss=(), val_acc=(), beta=BETA, *,
              stop_factor):
        lr, loss, acc = (np.asarray(a, dtype=np.float64) for a in (lr, loss, acc))
        require(lr.shape == loss.shape == acc.shape and lr.ndim == 1, "curve",
                f"lr, loss and acc must be 1-d of one length, got {lr.shape}, {loss.shape}, "
                f"{acc.shape}")
        smoothed = smooth(loss, beta)
        stop = stop_index(smoothed, stop_factor)
        stop = len(lr) if stop is None else stop
        acc_smoothed = np.full(len(acc), np.nan)
        acc_smoothed[:stop] = smooth_centered(acc[:stop], beta)
        return cls(lr, loss, acc, smoothed, acc_smoothed, stop,
                   np.asarray(val_steps, dtype=np.int64),
                   np.asarray(val_loss, dtype=np.float64), np.asarray(val_acc, dtype=np.float64),
                   beta)


# -- rules ----------------------------------------------------------------------------------

def _crossing(log_lr, values, i, level):
    """The lr where values reaches level between steps i - 1 and i, interpolated in log lr."""
    if i == 0 or values[i] == values[i - 1]:
        return float(np.exp(log_lr[i]))
    f = (level - values[i - 1]) / (values[i] - values[i - 1])
    return float(np.exp(log_lr[i - 1] + min(max(f, 0.0), 1.0) * (log_lr[i] - log_lr[i - 1])))


def _rise_bounds(lr, acc, base, start, end, min_rise):
    """(eta_min, eta_max) where acc has done `start` and `end` of its rise from base to its
    peak: see `accuracy_rule`."""
    peak = int(np.argmax(acc))
    rise = acc[peak] - base
    if not rise >= min_rise:
        raise NoSuggestion(f"the accuracy never rose by {min_rise} over the range "
                           f"(by {rise:.3f}): start lower, or go higher")
    log_lr, low_level, high_level = np.log(lr), base + start * rise, base + end * rise
    below = np.flatnonzero(acc[:peak + 1] < low_level)
    i_min = int(below[-1]) + 1 if below.size else 0
    i_max = i_min + int(np.argmax(acc[i_min:peak + 1] >= high_level))
    return _crossing(log_lr, acc, i_min, low_level), _crossing(log_lr, acc, i_max, high_level)


def accuracy_rule(curve, start=0.1, end=0.9, min_rise=0.02):
    """Smith's rule: eta_min where the accuracy starts to rise, eta_max where it slows or falls.

    On the usable steps, a = acc_smoothed (centred, so without lag), base = the median raw
    batch accuracy of the first 5% of the steps (at least one), peak = the first maximum of
    a, rise = a[peak] - base. eta_min is the lr where a last crosses base + start * rise
    upwards before the peak (so that early noise does not count as the rise); eta_max the
    first lr after it where a reaches base + end * rise: the accuracy has done 90% of its
    rise, so it slows, or it turns ragged or falls just after (the peak bounds it). Crossings
    are interpolated in log lr. When the accuracy still rises at the stop, the peak is the
    last usable step. NoSuggestion when the rise is below min_rise.
    """
    n = curve.stop
    if n < 3:
        raise NoSuggestion(f"only {n} usable steps")
    base = float(np.median(curve.acc[:max(1, n // 20)]))
    return _rise_bounds(curve.lr[:n], curve.acc_smoothed[:n], base, start, end, min_rise)


def val_accuracy_rule(curve, start=0.1, end=0.9, min_rise=0.02):
    """`accuracy_rule` on the validation points before the stop, unsmoothed, base their first
    value. NoSuggestion with fewer than 3 such points."""
    usable = curve.val_steps < curve.stop
    if usable.sum() < 3:
        raise NoSuggestion(f"only {int(usable.sum())} validation points before the stop")
    lr, acc = curve.lr[curve.val_steps[usable]], curve.val_acc[usable]
    return _rise_bounds(lr, acc, float(acc[0]), start, end, min_rise)


def steepest_rule(curve, ratio=RATIO, window=0.05):
    """eta_max where the smoothed loss falls fastest against log lr, eta_min = eta_max / ratio
    (fastai's "steep" suggestion, used as the top of the cycle).

    On the usable steps, with w = max(1, round(window * n)) steps, the slope at step i is
    (smoothed[i + w] - smoothed[i]) / (log lr[i + w] - log lr[i]), for i from
    round(beta / (1 - beta)) on (before it the smoothed loss rests on few batches and its
    noise could pass for a fall); eta_max is the geometric mean of lr[i] and lr[i + w] at
    the most negative slope. The smoothed loss lags the raw one by about beta / (1 - beta)
    steps, as in fastai, whose conventions these are. NoSuggestion when the loss never falls.
    """
    n = curve.stop
    w = max(1, round(window * n))
    first = round(curve.beta / (1 - curve.beta))
    if n <= first + w:
        raise NoSuggestion(f"only {n} usable steps")
    log_lr, s = np.log(curve.lr[first:n]), curve.smoothed[first:n]
    slope = (s[w:] - s[:-w]) / (log_lr[w:] - log_lr[:-w])
    i = int(np.argmin(slope))
    if not slope[i] < 0:
        raise NoSuggestion("the smoothed loss never falls")
    eta_max = float(np.exp((log_lr[i] + log_lr[i + w]) / 2))
    return eta_max / ratio, eta_max


def minimum_rule(curve, ratio=RATIO, back_off=10.0):
    """eta_max = (the lr of the least smoothed loss) / back_off, eta_min = eta_max / ratio
    (fastai's "minimum" suggestion: at the minimum itself training is on the edge of blowing
    up, so one order of magnitude below it)."""
    n = curve.stop
    if n < 1:
        raise NoSuggestion("no usable steps")
    eta_max = float(curve.lr[int(np.argmin(curve.smoothed[:n]))]) / back_off
    return eta_max / ratio, eta_max


RULES = {
    "accuracy": accuracy_rule,
    "val-accuracy": val_accuracy_rule,
    "steepest": steepest_rule,
    "minimum": minimum_rule,
}
DEFAULT_RULE = "accuracy"  # Smith's own rule for the two bounds of a cyclical schedule


def suggest(curve, rule=DEFAULT_RULE):
    """(eta_min, eta_max) by the rule named `rule` of RULES; NoSuggestion if it has none."""
    if rule not in RULES:
        raise SettingError("rule", f"must be one of {list(RULES)}, got {rule!r}")
    return RULES[rule](curve)


# -- repeats --------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Band:
    """The median of repeated tests and their spread, float64 arrays of the curve's length.

    curve: the `Curve` of the per-step medians. loss_low, loss_high, acc_low, acc_high: the
    least and greatest smoothed loss and smoothed accuracy over the repeats that reached
    each step. n_repeats: how many tests.
    """

    curve: Curve
    loss_low: np.ndarray
    loss_high: np.ndarray
    acc_low: np.ndarray
    acc_high: np.ndarray
    n_repeats: int


def median_curve(curves, beta=BETA, *, stop_factor):
    """The Band of repeated tests of one ramp (seeds differ), `Curve`s of any lengths.

    Each curve counts up to its own stop. The median curve is as long as at least half of
    them (the ceil(N/2)-th longest usable part), so every step's median is over at least
    half the repeats: the per-step median of the raw losses and accuracies of the curves
    that reached the step, then built (smoothed, stopped) as one Curve. Validation points:
    the median at each step that at least half the curves measured.
    """
    require(len(curves) >= 1, "repeats", "must be >= 1")
    length = sorted((c.stop for c in curves), reverse=True)[(len(curves) + 1) // 2 - 1]
    lr = curves[int(np.argmax([len(c.lr) for c in curves]))].lr[:length]
    for c in curves:
        common = min(len(c.lr), length)
        if not np.array_equal(c.lr[:common], lr[:common]):
            raise UserError("the repeated range tests followed different learning rates")

    def stack(name):
        rows = np.full((len(curves), length), np.nan)
        for row, c in zip(rows, curves):
            usable = min(c.stop, length)
            row[:usable] = getattr(c, name)[:usable]
        return rows

    loss, acc = stack("loss"), stack("acc")
    smoothed, acc_smoothed = stack("smoothed"), stack("acc_smoothed")
    val_steps, val_loss, val_acc = _median_points(curves, length)
    curve = Curve.build(lr, np.nanmedian(loss, axis=0), np.nanmedian(acc, axis=0),
                        val_steps, val_loss, val_acc, beta=beta, stop_factor=stop_factor)
    return Band(curve, np.nanmin(smoothed, axis=0), np.nanmax(smoothed, axis=0),
                np.nanmin(acc_smoothed, axis=0), np.nanmax(acc_smoothed, axis=0), len(curves))


def _median_points(curves, length):
    by_step = {}
    for c in curves:
        for step, loss, acc in zip(c.val_steps.tolist(), c.val_loss, c.val_acc):
            if step < min(c.stop, length):
                by_step.setdefault(step, []).append((loss, acc))
    steps = sorted(s for s, v in by_step.items() if 2 * len(v) >= len(curves))
    medians = [np.median(np.array(by_step[s]), axis=0) for s in steps]
    return (np.array(steps, dtype=np.int64), np.array([m[0] for m in medians]),
            np.array([m[1] for m in medians]))


def eta_from(folder):
    """(eta_min, eta_max) that the range test in `folder` chose; a one-line error when the
    folder holds no test or its test suggested nothing."""
    path = Path(folder) / SUMMARY
    if not os.path.lexists(path):
        raise SettingError("eta_from", f"{folder}: no lr_range.json there (run an LR range "
                                       f"test into it first)")
    text = read_regular(path)  # a FIFO would block
    try:
        summary = json.loads(text)
        eta_min, eta_max = summary["eta_min"], summary["eta_max"]
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a range test's summary ({err})") from None
    if not (isinstance(eta_min, (int, float)) and isinstance(eta_max, (int, float))
            and 0 < eta_min <= eta_max):
        raise SettingError("eta_from", f"{folder}: its range test suggested no bounds "
                                       f"(rule {summary.get('rule')!r})")
    return float(eta_min), float(eta_max)

