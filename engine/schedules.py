"""Learning-rate schedules: eta for every update step t = 0, 1, 2, ... as one NumPy array.

Cyclical schedules (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017)
move eta between eta_min and eta_max with half cycle n_s steps: eta rises linearly for n_s
steps and falls for n_s, so a cycle is 2 n_s steps and t = 2 l n_s starts cycle l.

    triangular:   eta_t = eta_min + (eta_max - eta_min) tri(t)
    triangular2:  the amplitude halves every cycle: ... (eta_max - eta_min) tri(t) / 2^l
    exp_range:    the amplitude decays every step:  ... (eta_max - eta_min) tri(t) gamma^t
    constant:     eta_t = eta

with tri(t) = 1 - |t / n_s - 2 l - 1| in [0, 1].
"""
import numpy as np

from .errors import SettingError

SCHEDULES = ("constant", "triangular", "triangular2", "exp_range")


def eta_schedule(steps, schedule="constant", eta=0.01, eta_min=1e-5, eta_max=1e-1, n_s=500,
                 gamma=1.0):
    """eta of each step in `steps` (int array of step numbers): float64 array, same shape."""
    t = np.asarray(steps, dtype=np.float64)
    if schedule == "constant":
        return np.full(t.shape, float(eta))
    if schedule not in SCHEDULES:
        raise SettingError("schedule", f"must be one of {list(SCHEDULES)}, got {schedule!r}")
    cycle = np.floor(t / (2 * n_s))
    tri = 1.0 - np.abs(t / n_s - 2 * cycle - 1.0)
    amplitude = (eta_max - eta_min) * tri
    if schedule == "triangular2":
        amplitude /= 2.0 ** cycle
    elif schedule == "exp_range":
        amplitude *= float(gamma) ** t
    return eta_min + amplitude
