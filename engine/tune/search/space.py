"""The space a search samples: parameters parsed from text, seeded draws, and narrowing.

A parameter is written `NAME=SPEC`, with NAME a setting (`lam`, `eta_max`, `hidden`):

    lam=1e-5:1e-1:log        log-uniform on [1e-5, 1e-1]
    eta_max=0.01:0.2         uniform (":lin" may be written)
    batch_size=50:500:log    int settings draw ints (see `Param.value_at`)
    hidden=50,100,200        a choice, each equally likely; values typed like the setting
    hidden=50x50,100,none    hidden widths: "50x50" is (50, 50), "100" is (100,), "none" is ()

A stage of a search is `N_TRIALS:BUDGET`, e.g. "16:2cycles" (see `parse_stage`).
"""
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...errors import SettingError, require
from ...settings import MAX_STEPS


@dataclass(frozen=True)
class Scale:
    """How a range is drawn: uniformly in forward(x), mapped back by inverse."""

    forward: object
    inverse: object


SCALES = {"lin": Scale(float, float), "log": Scale(math.log, math.exp)}
CHOICE = "choice"
SIGNIFICANT_DIGITS = 4  # float draws are rounded to this many, so that logs and CSVs read well
# Trials per stage: more than any search could run, few enough that a stage's trials (its
# Latin hypercube's strata, its tasks) are planned at once in a few MB.
MAX_TRIALS = 10_000


def _fail(setting, message):
    # SettingError formats its message: braces in user text must not be read as settings
    raise SettingError(setting, message.replace("{", "{{").replace("}", "}}"))


def _check(ok, message):
    if not ok:
        _fail("param", message)


@dataclass(frozen=True)
class Param:
    """One searched setting: a range (scale "lin" or "log", low < high) or a choice.

    type is the setting's Python type (int, float, bool, str, or tuple for hidden widths);
    low and high are of that type for ranges, choices a tuple of values of it.
    """

    name: str
    type: type
    scale: str
    low: float = None
    high: float = None
    choices: tuple = ()

    def __post_init__(self):
        if self.is_range:
            _check(self.type in (int, float),
                   f"{self.name} is not a number: give choices (a,b,c), not a range")
            _check(self.low < self.high,
                   f"{self.name}: low ({self.low}) must be < high ({self.high})")
            _check(self.scale != "log" or self.low > 0,
                   f"{self.name}: a log range must stay above 0, got low {self.low}")
        else:
            _check(self.scale == CHOICE,
                   f"{self.name}: scale must be one of {[*SCALES, CHOICE]}, got {self.scale!r}")
            _check(len(self.choices) > 0, f"{self.name}: no choices given")
            _check(len(set(self.choices)) == len(self.choices),
                   f"{self.name}: a choice is repeated in {_format_choices(self.choices)}")

    @property
    def is_range(self):
        return self.scale in SCALES

    def value_at(self, u):
        """The value at quantile u in [0, 1): choices split [0, 1) into equal parts; a range
        maps u linearly onto [forward(low), forward(high)].

        An int range draws on [low - 0.5, high + 0.5] and rounds, so each int is equally
        likely on "lin" and about proportional to 1/value on "log" (log-uniform, discretised).
        A float is rounded to SIGNIFICANT_DIGITS and kept inside [low, high].
        """
        if not self.is_range:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        scale = SCALES[self.scale]
        pad = 0.5 if self.type is int else 0.0
        lo, hi = scale.forward(self.low - pad), scale.forward(self.high + pad)
        x = scale.inverse(lo + u * (hi - lo))
        x = round(x) if self.type is int else float(f"{x:.{SIGNIFICANT_DIGITS}g}")
        return self.type(min(max(x, self.low), self.high))

    def __str__(self):
        """The text `parse_param` reads back into this Param."""
        if self.is_range:
            return f"{self.name}={self.low!r}:{self.high!r}:{self.scale}"
        return f"{self.name}={_format_choices(self.choices)}"


def format_value(value):
    """A setting's value as `parse_param` reads it: (50, 50) is "50x50", () is "none"."""
    if isinstance(value, tuple):
        return "x".join(map(str, value)) if value else "none"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def from_json(value):
    """A setting read back from JSON, which wrote tuples as lists: lists become tuples again."""
    return tuple(from_json(v) for v in value) if isinstance(value, list) else value


def _format_choices(choices):
    return ",".join(format_value(c) for c in choices)


@dataclass(frozen=True)
class Space:
    """The searched parameters, in the order given; names are unique."""

    params: tuple

    def __post_init__(self):
        object.__setattr__(self, "params", tuple(self.params))
        seen = set()
        for p in self.params:
            _check(p.name not in seen, f"{p.name} is given twice")
            seen.add(p.name)

    @property
    def names(self):
        return tuple(p.name for p in self.params)

    def __iter__(self):
        return iter(self.params)

    def __len__(self):
        return len(self.params)

    def __getitem__(self, name):
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __str__(self):
        return " ".join(str(p) for p in self.params)


# -- parsing --------------------------------------------------------------------------------

def _number(text):
    value = float(text)  # ValueError for non-numbers
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _int(text):
    value = _number(text)
    if value != int(value):
        raise ValueError(text)
    return int(value)


def _bool(text):
    words = {"true": True, "yes": True, "on": True, "1": True,
             "false": False, "no": False, "off": False, "0": False}
    return words[text.lower()]  # KeyError for anything else


def _str(text):
    if not text:
        raise ValueError(text)
    return text


def _widths(text):
    if text.lower() == "none":
        return ()
    widths = tuple(int(w) for w in text.lower().split("x"))
    if min(widths) < 1:
        raise ValueError(text)
    return widths


# how one value of a setting of each type is read; "what" names it in error messages
VALUE_READERS = {
    int: (_int, "an integer"),
    float: (_number, "a finite number"),
    bool: (_bool, "true or false"),
    str: (_str, "a non-empty word"),
    tuple: (_widths, "widths like 50 or 50x50 or none"),
}


def _read(name, kind, text, whole):
    read, what = VALUE_READERS[kind]
    try:
        return read(text.strip())
    except (ValueError, KeyError):
        _fail("param", f"{whole}: {text.strip()!r} is not {what}")


def parse_param(text, known):
    """The Param written `NAME=LOW:HIGH[:log|:lin]` or `NAME=A,B,...` (see the module doc).

    known maps each searchable setting name to its Python type (int, float, bool, str, or
    tuple for hidden widths). SettingError("param", ...) names what is wrong, in one line.
    """
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name:
        _fail("param", f"{text!r}: write NAME=LOW:HIGH[:log], or NAME=A,B,... for choices")
    if name not in known:
        _fail("param", f"{name!r} is not a setting to search; known: {', '.join(sorted(known))}")
    kind = known[name]
    if kind not in VALUE_READERS:
        _fail("param", f"{name} cannot be searched")
    if ":" in spec:
        return _parse_range(name, kind, spec, text)
    items = spec.split(",")
    if not spec.strip() or any(not item.strip() for item in items):
        _fail("param", f"{text}: an empty choice")
    return Param(name, kind, CHOICE, choices=tuple(_read(name, kind, i, text) for i in items))


def _parse_range(name, kind, spec, text):
    parts = spec.split(":")
    scale = parts[2].strip().lower() if len(parts) == 3 else "lin"
    if len(parts) > 3 or scale not in SCALES:
        _fail("param", f"{text}: a range is LOW:HIGH or LOW:HIGH:log or LOW:HIGH:lin")
    if kind not in (int, float):
        _fail("param", f"{name} is not a number: give choices (a,b,c), not a range")
    low, high = (_read(name, kind, part, text) for part in parts[:2])
    return Param(name, kind, scale, low=low, high=high)


def parse_space(texts, known):
    """The Space of the parameters written in texts (see `parse_param`)."""
    return Space(tuple(parse_param(t, known) for t in texts))


# -- seeded draws ---------------------------------------------------------------------------

def _check_ids(seed, stage, trial):
    for setting, value in (("seed", seed), ("stage", stage), ("trial", trial)):
        require(int(value) == value and value >= 0, setting,
                f"must be an integer >= 0, got {value}")


def sample(space, seed, stage, trial, n_trials=None):
    """The settings of trial `trial` of stage `stage`: {name: value} (Python int, float, ...).

    A pure function of its arguments, so that local, parallel, resumed and distributed
    searches draw the same trials. Each parameter gets a u in [0, 1), the parameters taken
    in name order (so the order they are given in does not matter), and u becomes a value by
    `Param.value_at`. With n_trials (the stage's trial count) the stage is a Latin
    hypercube: for each parameter, `np.random.default_rng([seed, stage])` deals the n_trials
    strata [k/n, (k+1)/n) out to the trials in a random order, and
    `default_rng([seed, stage, trial])` places each trial's u inside its stratum, so that 16
    coarse trials of lam cover its range as a jittered grid of 16 would (independent draws
    can leave gaps and clumps). Without n_trials, u comes from the trial's stream alone.
    """
    _check_ids(seed, stage, trial)
    params = sorted(space, key=lambda p: p.name)
    u = np.random.default_rng([seed, stage, trial]).random(len(params))
    if n_trials is not None:
        check_trials(n_trials, "n_trials")
        require(0 <= trial < n_trials, "trial", f"must be in [0, {n_trials}), got {trial}")
        u = (_strata(int(seed), int(stage), n_trials, len(params))[:, trial] + u) / n_trials
    drawn = {p.name: p.value_at(float(x)) for p, x in zip(params, u)}
    return {name: drawn[name] for name in space.names}


@lru_cache(maxsize=8)
def _strata(seed, stage, n_trials, n_params):
    """The strata of a stage's trials, one row per parameter (in name order): dealt once
    per stage rather than once per trial, which would make planning a stage quadratic."""
    deal = np.random.default_rng([seed, stage])
    strata = np.array([deal.permutation(n_trials) for _ in range(n_params)]).reshape(
        n_params, n_trials)
    strata.flags.writeable = False
    return strata


def trial_seed(seed, stage, trial):
    """The training seed of a trial: an int in [0, 2^31), a pure function of its ids.

    Drawn from a stream of its own (spawn key 1), so it is independent of the settings'.
    """
    _check_ids(seed, stage, trial)
    state = np.random.SeedSequence([seed, stage, trial], spawn_key=(1,)).generate_state(1)
    return int(state[0] >> 1)


# -- narrowing ------------------------------------------------------------------------------

def _accuracy(value):
    return None if value is None or not math.isfinite(value) else float(value)


def top_trials(results, top_k):
    """The settings of the best trials: the top_k by validation accuracy, and every trial
    tied with the k-th (so the answer does not depend on the order of results). Trials whose
    val_acc is None or not finite (diverged, failed) are left out."""
    valid = [(s, a) for s, a in ((s, _accuracy(a)) for s, a in results) if a is not None]
    if not valid:
        return []
    kth = sorted((a for _, a in valid), reverse=True)[min(top_k, len(valid)) - 1]
    return [s for s, a in valid if a >= kth]


def narrow(space, results, top_k=2, margin=0.5, min_width=0.1):
    """The next stage's Space from the finished trials of this one.

    results: list of (settings dict, val_acc), val_acc None or NaN for a diverged or failed
    trial. The rule, with the best trials those of `top_trials(results, top_k)` (ties with
    the k-th included) and x = forward(value), i.e. log(value) on "log" ranges:

    - a range becomes [lo, hi] with lo, hi the least and greatest x of the best trials,
      widened by margin * (hi - lo) on each side, then widened about its centre to at least
      min_width times the width of the given range (in x); then moved, not cut, back inside
      the given range (or made equal to it when wider). It always holds every best trial's
      value. An int range is rounded inwards to the ints it holds, and widened by one if
      that leaves a single int.
    - a choice keeps the choices the best trials took, in their given order.
    - with no finite val_acc, or no best trial that has the parameter, it stays as it was.
    """
    require(top_k >= 1, "top_k", f"must be >= 1, got {top_k}")
    require(margin >= 0, "margin", f"must be >= 0, got {margin}")
    require(0 < min_width <= 1, "min_width", f"must be in (0, 1], got {min_width}")
    best = top_trials(results, top_k)
    narrowed = []
    for param in space:
        values = [from_json(s[param.name]) for s in best if param.name in s]
        narrowed.append(_narrow_param(param, values, margin, min_width) if values else param)
    return Space(tuple(narrowed))


def _narrow_param(param, values, margin, min_width):
    if not param.is_range:
        kept = tuple(c for c in param.choices if c in values)
        return Param(param.name, param.type, CHOICE, choices=kept or param.choices)
    scale = SCALES[param.scale]
    bottom, top = scale.forward(param.low), scale.forward(param.high)
    xs = [scale.forward(min(max(v, param.low), param.high)) for v in values]
    lo, hi = min(xs), max(xs)
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    short = min_width * (top - bottom) - (hi - lo)
    if short > 0:
        lo, hi = lo - short / 2, hi + short / 2
    width = hi - lo
    if width >= top - bottom:
        lo, hi = bottom, top
    elif lo < bottom:
        lo, hi = bottom, bottom + width
    elif hi > top:
        lo, hi = top - width, top
    low, high = scale.inverse(lo), scale.inverse(hi)
    if param.type is int:
        low, high = math.ceil(low - 1e-9), math.floor(high + 1e-9)
        if low >= high:
            low, high = (low, low + 1) if low + 1 <= param.high else (high - 1, high)
    low, high = max(low, param.low), min(high, param.high)  # exp(log(x)) may miss x by an ulp
    return Param(param.name, param.type, param.scale, low=param.type(low), high=param.type(high))


# -- stages ---------------------------------------------------------------------------------

BUDGET_UNITS = {"cycles": "cycles", "cycle": "cycles", "epochs": "epochs", "epoch": "epochs",
                "ep": "epochs", "steps": "steps", "step": "steps"}


@dataclass(frozen=True)
class Budget:
    """How long each trial of a stage trains: amount (int >= 1) of kind cycles|epochs|steps."""

    kind: str
    amount: int

    def __post_init__(self):
        require(self.kind in set(BUDGET_UNITS.values()), "budget",
                f"unit must be one of cycles, epochs, steps, got {self.kind!r}")
        require(isinstance(self.amount, int) and 1 <= self.amount <= MAX_STEPS, "budget",
                f"must be a whole number of {self.kind} in [1, {MAX_STEPS}], got "
                f"{self.amount!r}")

    def settings(self):
        """The training settings of this budget: {"cycles": .., "epochs": .., "steps": ..}."""
        return {"cycles": 0, "epochs": 0, "steps": 0, self.kind: self.amount}

    def __str__(self):
        return f"{self.amount}{self.kind}"


def parse_budget(text, setting="budget"):
    """The Budget written `AMOUNT UNIT`: "3cycles", "2 epochs", "4ep", "1000steps"."""
    match = re.fullmatch(r"\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]+)\s*", text)
    unit = BUDGET_UNITS.get(match.group(2).lower()) if match else None
    if unit is None:
        _fail(setting, f"{text!r}: write a whole number and a unit, one of cycles, epochs, "
                       f"steps (e.g. 2cycles)")
    try:
        amount = _int(match.group(1))
    except ValueError:
        amount = 0
    if amount < 1:
        _fail(setting, f"{text!r}: the amount must be a whole number >= 1")
    if amount > MAX_STEPS:
        _fail(setting, f"{text!r}: the amount must be at most {MAX_STEPS}")
    return Budget(unit, amount)


def parse_stage(text, setting="stage"):
    """(n_trials, Budget) of a stage written `N_TRIALS:BUDGET`, e.g. "16:2cycles"."""
    count, sep, budget = text.partition(":")
    try:
        n_trials = _int(count) if sep else 0
    except ValueError:
        n_trials = 0
    if n_trials < 1:
        _fail(setting, f"{text!r}: write N_TRIALS:BUDGET with N_TRIALS >= 1, e.g. 16:2cycles")
    if n_trials > MAX_TRIALS:
        _fail(setting, f"{text!r}: at most {MAX_TRIALS} trials a stage, got {n_trials}")
    return n_trials, parse_budget(budget, setting)


def check_trials(n_trials, setting="stage"):
    """SettingError(setting) unless n_trials is a whole number in [1, MAX_TRIALS]."""
    require(isinstance(n_trials, int) and not isinstance(n_trials, bool)
            and 1 <= n_trials <= MAX_TRIALS, setting,
            f"must have a whole number of trials in [1, {MAX_TRIALS}], got {n_trials!r}")


def check_stage(stage, setting="stage"):
    """The stage (n_trials, Budget) as a tuple, or SettingError(setting)."""
    require(isinstance(stage, tuple) and len(stage) == 2 and isinstance(stage[1], Budget),
            setting, f"must be (n_trials, Budget), got {stage!r}")
    check_trials(stage[0], setting)
    return stage
