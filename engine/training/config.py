"""Every setting of a training run, with its limits, in one declarative place.

A run folder's `config.toml` is this dataclass written out in full, so that
`cifar-engine train --config runs/NAME/config.toml` repeats the run exactly.
"""
import math
import numbers
import tomllib
from dataclasses import asdict, dataclass, fields

import tomli_w

from ..errors import SettingError, UserError, require
from ..model.spec import NetworkSpec
from ..schedules import SCHEDULES
from ..settings import CYCLICAL, CYCLICAL_DEFAULT, DATA, EXCLUSIVE, MAX_STEPS, SETTINGS, TRAIN
from ..util.atomic import read_regular

_D = {name: s.default for name, s in {**DATA, **TRAIN}.items()}


# What a run records in its config.toml as it starts; a config not yet run may leave them
# unset (its data's path resolved, digest and BLAS found as it prepares).
RECORDED = ("data", "data_sha256", "blas")

@dataclass(frozen=True)
class TrainConfig:
    """Data, model, optimiser, schedule, stop, augmentation and bookkeeping of a run.

    Each setting's type, default and limits are in `settings.SETTINGS`. zca: eps of the
    inputs' ZCA whitening, 0 for per-feature standardisation; pca: the leading principal
    components kept of those inputs, 0 for all (no projection). n_s, the half
    cycle, is a number of steps ("500") or of epochs ("2ep"). Stop after `cycles`
    (cyclical schedules: cycles x 2 n_s steps), `epochs` or `steps`, one of them; with none
    given, one cycle for a cyclical schedule and 10 epochs for any other.
    `eval_every` 0 means about 50 evaluations in the run.
    """

    data: str = _D["data"]
    data_sha256: str = _D["data_sha256"]
    labels: str = _D["labels"]
    split: str = _D["split"]
    n_val: int = _D["n_val"]
    zca: float = _D["zca"]
    pca: int = _D["pca"]
    # the model's settings, with NetworkSpec's defaults
    hidden: tuple = NetworkSpec.hidden
    batch_norm: bool = NetworkSpec.batch_norm
    dropout: float = NetworkSpec.dropout
    init: str = NetworkSpec.init
    sigma: float = NetworkSpec.sigma
    loss: str = NetworkSpec.loss
    lam: float = NetworkSpec.lam
    label_smoothing: float = NetworkSpec.label_smoothing
    dtype: str = NetworkSpec.dtype
    seed: int = _D["seed"]
    batch_size: int = _D["batch_size"]
    momentum: float = _D["momentum"]
    nesterov: bool = _D["nesterov"]
    schedule: str = _D["schedule"]
    eta: float = _D["eta"]
    eta_min: float = _D["eta_min"]
    eta_max: float = _D["eta_max"]
    n_s: str = _D["n_s"]
    gamma: float = _D["gamma"]
    warmup: float = _D["warmup"]
    anneal: str = _D["anneal"]
    cycles: int = _D["cycles"]
    epochs: int = _D["epochs"]
    steps: int = _D["steps"]
    noise: float = _D["noise"]
    noise_fraction: float = _D["noise_fraction"]
    flip: bool = _D["flip"]
    translate: int = _D["translate"]
    tta: str = _D["tta"]
    eval_every: int = _D["eval_every"]
    checkpoint_every: int = _D["checkpoint_every"]
    threads: int = _D["threads"]
    blas: str = _D["blas"]

    def __post_init__(self):
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.n_s, (int, float)) and not isinstance(self.n_s, bool):
            object.__setattr__(self, "n_s", f"{self.n_s:g}")
        for f in fields(self):
            object.__setattr__(self, f.name, SETTINGS[f.name].check(getattr(self, f.name)))
        require(self.eta_min <= self.eta_max, "eta_min",
                f"({self.eta_min:g}) must be <= {{eta_max}} ({self.eta_max:g})")
        for group in EXCLUSIVE:
            given = [name for name in group if getattr(self, name)]
            if len(given) > 1:
                raise SettingError(given[-1], f"excludes {{{given[0]}}}: give at most one of "
                                   + ", ".join(f"{{{name}}}" for name in group))
        require(self.cycles == 0 or SCHEDULES[self.schedule].cyclical, "cycles",
                f"needs a cyclical {{schedule}}, got {self.schedule}")
        for name in ("warmup", "anneal"):  # one-cycle's own: refused rather than ignored
            require(name in SCHEDULES[self.schedule].reads or getattr(self, name) == _D[name],
                    name, f"applies to {{schedule}} one-cycle only (the schedule is "
                          f"{self.schedule})")
        require(self.split == "all" or self.n_val == _D["n_val"], "n_val",
                f"applies to {{split}} all only (the split is {self.split})")
        self.network_spec(1, 2)  # the model settings' own checks
        self.half_cycle(1)

    def network_spec(self, input_size, n_classes):
        """The NetworkSpec of this run for data of input_size features and n_classes."""
        return NetworkSpec(input_size=input_size, n_classes=n_classes, hidden=self.hidden,
                           batch_norm=self.batch_norm, dropout=self.dropout, init=self.init,
                           sigma=self.sigma, loss=self.loss, lam=self.lam,
                           label_smoothing=self.label_smoothing, dtype=self.dtype)

    def half_cycle(self, steps_per_epoch):
        """n_s in steps."""
        return half_cycle_steps(self.n_s, steps_per_epoch)

    def total_steps(self, steps_per_epoch):
        """How many update steps the run makes."""
        if self.steps:
            return self.steps
        if self.epochs:
            return self.epochs * steps_per_epoch
        if not SCHEDULES[self.schedule].cyclical:
            return 10 * steps_per_epoch
        return max(self.cycles, 1) * 2 * self.half_cycle(steps_per_epoch)

    # -- TOML ---------------------------------------------------------------------------------

    def to_dict(self):
        """Every setting by name, as TOML and JSON can hold them."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    def differences(self, other, ignore=()):
        """The names of the settings whose values differ between this config and `other`,
        in the table's order, those in `ignore` aside."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [name for name in mine if name not in ignore and mine[name] != theirs[name]]

    def to_toml(self, notes=()):
        """The config as TOML; each note becomes a comment line at the top."""
        return "".join(f"# {note}\n" for note in notes) + tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, path):
        """The config in the TOML file at path; unknown keys, non-TOML and anything but a
        regular file are errors."""
        data = read_regular(path)  # a FIFO would block for ever
        try:
            d = tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not a TOML file ({err})") from None
        return cls.from_dict(d, source=str(path))

    @classmethod
    def from_dict(cls, d, source=None):
        """The config of settings `d`; `source` (a file) prefixes the errors when given."""
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        try:
            if unknown:
                raise SettingError(unknown[0], "is not a setting" if len(unknown) == 1 else
                                   f"and {', '.join(unknown[1:])} are not settings")
            return cls(**d)
        except SettingError as err:
            if source is None:
                raise
            raise UserError(f"{source}: {err}") from None



def half_cycle_steps(n_s, steps_per_epoch):
    """A half cycle n_s in steps (at least 1): an int, or a string of steps ("500") or of
    epochs ("2ep", "0.5ep") of steps_per_epoch steps."""
    value = math.nan
    if isinstance(n_s, numbers.Integral) and not isinstance(n_s, bool):
        value = float(n_s)
    elif isinstance(n_s, str):
        text = n_s.strip().lower()
        try:
            value = float(text[:-2]) * steps_per_epoch if text.endswith("ep") else float(text)
        except ValueError:
            pass
    if not 0 < value <= MAX_STEPS:
        raise SettingError("n_s", f"must be a number of steps (500) or epochs (2ep) > 0, got "
                                  f"{n_s!r}")
    return max(1, int(round(value)))


def resolve_config(preset=None, config_file=None, settings=None, eta_from=None):
    """The run's TrainConfig from defaults < preset < config file < settings.

    preset: a name of `presets.PRESETS`; config_file: a run's config.toml; settings:
    {name: value} given explicitly (by the command line or a Python caller). A source that
    sets one setting of an EXCLUSIVE group (the stop rule: cycles, epochs, steps) replaces
    the earlier sources' choice in that group. Cyclical settings given where no source
    chose a schedule choose CYCLICAL_DEFAULT. eta_from: a folder of an LR range test,
    whose suggested eta_min and eta_max join the explicit settings. Returns (config,
    notes): each note says in one line what was decided for the user, for the run's
    config.toml and its log.
    """
    from ..presets import PRESETS

    settings = dict(settings or {})
    _require_stop_rules(settings)
    notes = []
    if eta_from is not None:
        from ..range_analysis import eta_from as read_bounds

        both = sorted({"eta_min", "eta_max"} & set(settings))
        if both:
            raise SettingError(both[0], "cannot be given with {eta_from}, which sets it")
        settings["eta_min"], settings["eta_max"] = read_bounds(eta_from)
        notes.append(f"eta_min = {settings['eta_min']:.3g}, eta_max = "
                     f"{settings['eta_max']:.3g}: the range test in {eta_from}")

    layers = []
    if preset is not None:
        if preset not in PRESETS:
            raise SettingError("preset", f"must be one of {', '.join(PRESETS)}, got {preset!r}")
        layers.append(dict(PRESETS[preset].settings))
    if config_file is not None:
        layers.append(TrainConfig.from_toml(config_file).to_dict())
    layers.append(settings)
    merged = {}
    for layer in layers:
        for group in EXCLUSIVE:
            if any(name in layer for name in group):
                for name in group:
                    merged.pop(name, None)
        merged.update(layer)
    cyclical = sorted(set(merged) & set(CYCLICAL))
    if "schedule" not in merged and cyclical:
        merged["schedule"] = CYCLICAL_DEFAULT
        notes.append(f"schedule = {CYCLICAL_DEFAULT!r}: cyclical settings "
                     f"({', '.join(cyclical)}) were given without a schedule")
    return TrainConfig.from_dict(merged), notes


def _require_stop_rules(settings):
    """SettingError for a stop rule given as 0: in a config, 0 is the rule not chosen."""
    for group in EXCLUSIVE:
        for name in group:
            if name in settings and SETTINGS[name].check(settings[name]) == 0:
                raise SettingError(name, "must be >= 1, got 0 (leave it out for the default "
                                         "length)")


# Settings that a resumed run may change: where it stops, and how it reports and saves.
RESUME_CHANGES = ("cycles", "epochs", "steps", "eval_every", "checkpoint_every", "threads")


def resume_config(config, settings):
    """The config of a resumed run: `config` (the run's own) with the explicit `settings`
    that a resumed run can take applied; any other setting that differs is an error.

    Returns (config, notes), a note per change applied.
    """
    _require_stop_rules(settings or {})
    current = config.to_dict()
    changed = {name: value for name, value in (settings or {}).items()
               if name not in current or SETTINGS[name].check(value) != config.__dict__[name]}
    for name, value in changed.items():
        if name not in RESUME_CHANGES:
            raise SettingError(name, f"cannot change when resuming (the run has {name} = "
                                     f"{current.get(name)!r}); only "
                                     + ", ".join(f"{{{n}}}" for n in RESUME_CHANGES)
                                     + " can")
    for group in EXCLUSIVE:
        if any(name in changed for name in group):
            for name in group:
                current[name] = 0
    current.update(changed)
    notes = [f"resumed with {name} = {value!r} (was {config.__dict__[name]!r})"
             for name, value in changed.items()]
    return TrainConfig.from_dict(current), notes
