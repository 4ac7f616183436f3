"""Learning-rate schedules: a registry, name -> Schedule, read by the config, the command
line, the trainer, the estimator and the figures.

Each schedule maps update steps t = 0, 1, 2, ... (float64 array) to eta. Cyclical
schedules (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017) move eta
between eta_min and eta_max with half cycle n_s steps: eta rises linearly for n_s steps and
falls for n_s, so a cycle is 2 n_s steps and t = 2 l n_s starts cycle l.

    constant:     eta_t = eta
    triangular:   eta_t = eta_min + (eta_max - eta_min) tri(t)
    triangular2:  the amplitude halves every cycle: ... (eta_max - eta_min) tri(t) / 2^l
    exp_range:    the amplitude decays every step:  ... (eta_max - eta_min) tri(t) gamma^t
    one-cycle:    (Smith 2018) a linear warm-up from eta_min to eta_max over the first
                  w = max(1, round(warmup T)) of the run's T steps, then a decay from
                  eta_max to 0 at step T over the rest: cosine, eta_max (1 + cos(pi f)) / 2,
                  or linear, eta_max (1 - f), with f = (t - w) / (T - w)

with tri(t) = 1 - |t / n_s - 2 l - 1| in [0, 1].
"""
from dataclasses import dataclass

import numpy as np

from .errors import SettingError

ANNEALS = ("cos", "linear")


@dataclass(frozen=True)
class Schedule:
    """etas(t, p): eta of steps t (float64 array) under the run's settings p (any object with
    the attributes in `reads`). cyclical: it repeats with half cycle n_s, and a run may stop
    after a number of `cycles`; needs_total: it depends on the run's length (p.total)."""

    etas: object
    reads: tuple
    cyclical: bool = False
    needs_total: bool = False


def _tri(t, n_s):
    cycle = np.floor(t / (2 * n_s))
    return cycle, 1.0 - np.abs(t / n_s - 2 * cycle - 1.0)


def _constant(t, p):
    return np.full(t.shape, float(p.eta))


def _triangular(t, p):
    return p.eta_min + (p.eta_max - p.eta_min) * _tri(t, p.n_s)[1]


def _triangular2(t, p):
    cycle, tri = _tri(t, p.n_s)
    return p.eta_min + (p.eta_max - p.eta_min) * tri / 2.0 ** cycle


def _exp_range(t, p):
    return p.eta_min + (p.eta_max - p.eta_min) * _tri(t, p.n_s)[1] * float(p.gamma) ** t


def _one_cycle(t, p):
    total = int(p.total)
    warm = min(max(1, int(round(p.warmup * total))), max(total - 1, 1))
    rise = p.eta_min + (p.eta_max - p.eta_min) * t / warm
    f = np.clip((t - warm) / max(total - warm, 1), 0.0, 1.0)
    fall = p.eta_max * ((1.0 + np.cos(np.pi * f)) / 2.0 if p.anneal == "cos" else 1.0 - f)
    return np.where(t < warm, rise, fall)


_CYCLE = ("eta_min", "eta_max", "n_s")
SCHEDULES = {
    "constant": Schedule(_constant, ("eta",)),
    "triangular": Schedule(_triangular, _CYCLE, cyclical=True),
    "triangular2": Schedule(_triangular2, _CYCLE, cyclical=True),
    "exp_range": Schedule(_exp_range, (*_CYCLE, "gamma"), cyclical=True),
    "one-cycle": Schedule(_one_cycle, ("eta_min", "eta_max", "warmup", "anneal"),
                          needs_total=True),
}


@dataclass(frozen=True)
class _Settings:
    """The settings a schedule reads; their defaults live in the settings table alone
    (settings.TRAIN), so None here means "not given"."""

    eta: float = None
    eta_min: float = None
    eta_max: float = None
    n_s: int = None
    gamma: float = None
    total: int = None
    warmup: float = None
    anneal: str = None


def eta_schedule(steps, schedule, **settings):
    """eta of each step in `steps` (int array of step numbers): float64 array, same shape.

    settings: those the schedule reads (SCHEDULES[schedule].reads: eta; eta_min, eta_max,
    n_s; gamma; warmup and anneal), and total, the run's steps, for one-cycle.
    """
    if schedule not in SCHEDULES:
        raise SettingError("schedule", f"must be one of {', '.join(SCHEDULES)}, got "
                                       f"{schedule!r}")
    p = _Settings(**settings)
    if SCHEDULES[schedule].needs_total and not (p.total and p.total >= 1):
        raise SettingError("schedule", f"{schedule} needs the run's length in steps")
    missing = [name for name in SCHEDULES[schedule].reads if getattr(p, name) is None]
    if missing:
        raise SettingError(missing[0], f"is needed by the {schedule} schedule")
    return SCHEDULES[schedule].etas(np.asarray(steps, dtype=np.float64), p)
