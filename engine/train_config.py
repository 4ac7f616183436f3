"""Every setting of a training run, with its limits, in one declarative place.

A run folder's `config.toml` is this dataclass written out in full, so that
`cifar-engine train --config runs/NAME/config.toml` repeats the run exactly.
"""
import math
import tomllib
from dataclasses import asdict, dataclass, fields

import tomli_w

from .errors import UserError
from .schedules import SCHEDULES
from .spec import NetworkSpec


@dataclass(frozen=True)
class TrainConfig:
    """Data, model, optimiser, schedule, stop, augmentation and bookkeeping of a run.

    n_s, the half cycle, is a number of steps ("500") or of epochs ("2ep"). Stop after
    `cycles` (cyclical schedules: cycles x 2 n_s steps), `epochs` or `steps`, one of them;
    with none given, one cycle for a cyclical schedule and 10 epochs for a constant one.
    `eval_every` 0 means about 50 evaluations in the run.
    """

    data: str = ""
    labels: str = "fine"
    split: str = "batch1"
    n_val: int = 1000
    # the model's settings, with NetworkSpec's defaults
    hidden: tuple = NetworkSpec.hidden
    batch_norm: bool = NetworkSpec.batch_norm
    dropout: float = NetworkSpec.dropout
    init: str = NetworkSpec.init
    sigma: float = NetworkSpec.sigma
    loss: str = NetworkSpec.loss
    lam: float = NetworkSpec.lam
    dtype: str = NetworkSpec.dtype
    seed: int = 0
    batch_size: int = 100
    momentum: float = 0.0
    nesterov: bool = False
    schedule: str = "constant"
    eta: float = 0.01
    eta_min: float = 1e-5
    eta_max: float = 1e-1
    n_s: str = "500"
    gamma: float = 1.0
    cycles: int = 0
    epochs: int = 0
    steps: int = 0
    noise: float = 0.0
    noise_fraction: float = 1.0
    flip: bool = False
    translate: int = 0
    eval_every: int = 0
    checkpoint_every: int = 1000
    threads: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "n_s", str(self.n_s))
        _require(self.batch_size >= 1, "--batch-size must be >= 1")
        _require(0 <= self.momentum < 1, "--momentum must be in [0, 1)")
        _require(self.schedule in SCHEDULES, f"--schedule must be one of {list(SCHEDULES)}")
        _require(self.eta > 0, "--eta must be > 0")
        _require(0 < self.eta_min <= self.eta_max,
                 f"--eta-min ({self.eta_min}) must be > 0 and <= --eta-max ({self.eta_max})")
        _require(self.gamma > 0, "--gamma must be > 0")
        _require(sum(v > 0 for v in (self.cycles, self.epochs, self.steps)) <= 1,
                 "give at most one of --cycles, --epochs, --steps")
        _require(min(self.cycles, self.epochs, self.steps) >= 0,
                 "--cycles, --epochs and --steps must be >= 0")
        _require(self.cycles == 0 or self.schedule != "constant",
                 "--cycles needs a cyclical --schedule")
        _require(self.noise >= 0, "--noise must be >= 0")
        _require(0 <= self.noise_fraction <= 1, "--noise-fraction must be in [0, 1]")
        _require(self.translate >= 0, "--translate must be >= 0")
        _require(self.eval_every >= 0, "--eval-every must be >= 0")
        _require(self.checkpoint_every >= 1, "--checkpoint-every must be >= 1")
        _require(self.threads >= 0, "--threads must be >= 0")
        _require(self.n_val >= 1, "--n-val must be >= 1")
        self.network_spec(1, 2)  # the model options' own checks
        self.half_cycle(1)

    def network_spec(self, input_size, n_classes):
        """The NetworkSpec of this run for data of input_size features and n_classes."""
        return NetworkSpec(input_size=input_size, n_classes=n_classes, hidden=self.hidden,
                           batch_norm=self.batch_norm, dropout=self.dropout, init=self.init,
                           sigma=self.sigma, loss=self.loss, lam=self.lam, dtype=self.dtype)

    def half_cycle(self, steps_per_epoch):
        """n_s in steps."""
        text = self.n_s.strip().lower()
        try:
            value = float(text[:-2]) * steps_per_epoch if text.endswith("ep") else float(text)
        except ValueError:
            value = -1
        if not (value >= 1 and math.isfinite(value)):
            raise UserError(f"--n-s must be a number of steps (500) or epochs (2ep), got "
                            f"{self.n_s!r}")
        return int(round(value))

    def total_steps(self, steps_per_epoch):
        """How many update steps the run makes."""
        if self.steps:
            return self.steps
        if self.epochs:
            return self.epochs * steps_per_epoch
        if self.schedule == "constant":
            return 10 * steps_per_epoch
        return max(self.cycles, 1) * 2 * self.half_cycle(steps_per_epoch)

    # -- TOML ---------------------------------------------------------------------------------

    def to_toml(self):
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return tomli_w.dumps(d)

    @classmethod
    def from_toml(cls, path):
        """The config in the TOML file at path; unknown keys and non-TOML are errors."""
        try:
            with open(path, "rb") as file:
                d = tomllib.load(file)
        except FileNotFoundError:
            raise UserError(f"{path}: no such config file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not a TOML file ({err})") from None
        return cls.from_dict(d, source=str(path))

    @classmethod
    def from_dict(cls, d, source="config"):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as err:
            raise UserError(f"{source}: {err}") from None


def _require(ok, message):
    if not ok:
        raise UserError(message)
