"""Every setting of a run in one table: its type, default, limits and help.

The table is read by `NetworkSpec` and `TrainConfig` (defaults and checks), by the command
line (each option's type, default and `--help`), and by the scikit-learn estimator. A
setting is named here as Python callers spell it (`eta_min`); the command line alone turns
names into flags (`--eta-min`).

Kept free of Numba so that the command line builds its options without importing it.
"""
import math
import numbers
import sys
from dataclasses import dataclass, replace

from .data import LABEL_OPTIONS, SPLITS
from .errors import SettingError
from .initializers import INITS
from .kernels import LOSS_CODES
from .range_analysis import DEFAULT_RULE, RAMPS, RULES
from .runtime.environment import MAX_THREADS
from .schedules import ANNEALS, SCHEDULES

LOSSES = tuple(LOSS_CODES)
DTYPES = ("float32", "float64")
TTAS = ("none", "flip")  # test-time augmentations (Network.predict_proba)
MAX_SEED = 2**63 - 1  # the seed is an int64 in the compiled random streams
MAX_STEPS = 10**9      # steps (or epochs, cycles) beyond any run that could finish: 11 days at 1 ms


@dataclass(frozen=True)
class Setting:
    """One setting. kind: bool, int, float, str, "widths" (tuple of positive ints), or
    "choice" (one of `choices`). low/high: inclusive limits, unless low_open/high_open;
    off: a value beyond them that turns the setting off (zca's 0)."""

    name: str
    kind: object
    default: object
    help: str
    low: float = None
    high: float = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    off: float = None

    def check(self, value):
        """`value` as this setting's type, or SettingError naming the setting."""
        value = _COERCE[self.kind](self, value)
        if self.kind in (int, float):
            self._check_limits(value)
        return value

    def _check_limits(self, value):
        if self.kind is float and math.isnan(value):
            raise SettingError(self.name, "must be a number, got nan")
        if value == self.off:
            return
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open
                                           else value > self.high)
        if below or above:
            raise SettingError(self.name, f"must be {self.limits()}, got {value}")

    def limits(self):
        """The limits in words: '>= 0', 'in [0, 1)', '> 0', '0 or >= 1e-08'."""
        if self.off is not None:
            return f"{_num(self.off)} or {replace(self, off=None).limits()}"
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        return f"{'<' if self.high_open else '<='} {_num(self.high)}"


def _num(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


def _as_bool(setting, value):
    if isinstance(value, bool):
        return value
    raise SettingError(setting.name, f"must be true or false, got {value!r}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_int(setting, value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not _is_int(value):
        raise SettingError(setting.name, f"must be a whole number, got {value!r}")
    return int(value)


def _as_float(setting, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingError(setting.name, f"must be a number, got {value!r}")
    return float(value)


def _as_str(setting, value):
    if not isinstance(value, str):
        raise SettingError(setting.name, f"must be a string, got {value!r}")
    return value


def _as_choice(setting, value):
    if value not in setting.choices:
        raise SettingError(setting.name, f"must be one of {', '.join(setting.choices)}, "
                                         f"got {value!r}")
    return value


def _as_widths(setting, value):
    if isinstance(value, (list, tuple)) and all(_is_int(w) and w >= 1 for w in value):
        return tuple(int(w) for w in value)
    raise SettingError(setting.name, f"must be a list of positive whole numbers (widths of the "
                                     f"hidden layers), got {value!r}")


_COERCE = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str, "choice": _as_choice,
           "widths": _as_widths}


def _table(*settings):
    return {s.name: s for s in settings}


# The model: what NetworkSpec holds.
MODEL = _table(
    Setting("hidden", "widths", (50,), "Hidden-layer widths, e.g. 50,50; 'none' for the "
            "single-layer classifier."),
    Setting("batch_norm", bool, False, "Batch normalisation after each hidden layer's affine "
            "map."),
    Setting("dropout", float, 0.0, "Inverted-dropout rate p on hidden layers.", 0.0, 1.0,
            high_open=True),
    Setting("init", "choice", "he", "Weight initialisation: he sqrt(2/d), xavier sqrt(1/d), "
            "gaussian sigma.", choices=tuple(sorted(INITS))),
    Setting("sigma", float, 1e-4, "Standard deviation of the gaussian initialisation.", 0.0,
            low_open=True),
    Setting("loss", "choice", "xent", "Softmax cross-entropy or multi-class SVM hinge.",
            choices=LOSSES),
    Setting("lam", float, 0.0, "L2 coefficient: cost = loss + lam * sum of squared weights.",
            0.0, math.inf, high_open=True),
    Setting("label_smoothing", float, 0.0, "Cross-entropy against targets smoothed by s: "
            "s / K on every class plus 1 - s on the label (Szegedy et al. 2016).", 0.0, 1.0,
            high_open=True),
    Setting("dtype", "choice", "float32", "Floating-point type of parameters and activations.",
            choices=DTYPES),
)

# Everything else a training run takes, in the order the command line lists it.
DATA = _table(
    Setting("data", str, "", "Data set: a CIFAR-10/100 python release (.tar.gz or folder), "
            "an image folder with train/ and test/ (or a tar of one), or a Fashion-MNIST IDX "
            "folder.  [default: $CIFAR_ENGINE_DATA, else the project data folder]"),
    Setting("data_sha256", str, "", "The sha256 of the data set as it was decoded, recorded "
            "as a run starts; a run resumed or repeated from its config.toml refuses a data "
            "set that differs.  [default: not checked]"),
    Setting("labels", "choice", "fine", "CIFAR-100 labels: 100 fine classes or 20 coarse "
            "superclasses.", choices=tuple(LABEL_OPTIONS)),
    Setting("split", "choice", "batch1", "batch1: train on batch 1, validate on batch 2; all: "
            "train on all training images but the last n_val.", choices=tuple(SPLITS)),
    Setting("n_val", int, 1000, "Validation images of split all.", 1, MAX_STEPS),
    # eps >= 1e-8 amplifies a direction without variance at most 1e4 times; the fit
    # measures the gain its data give (preprocessing.MAX_ZCA_GAIN)
    Setting("zca", float, 0.0, "ZCA-whiten the inputs with eps relative to the mean "
            "eigenvalue (0.1 works well); 0 = per-feature standardisation.", 1e-8, math.inf,
            high_open=True, off=0.0),
    Setting("pca", int, 0, "Keep the K leading principal components of the standardised or "
            "(with zca) whitened inputs: a first layer of K inputs, D / K times cheaper; 0 = "
            "every feature, no projection.", 0, 2**24),
)

TRAIN = _table(
    Setting("seed", int, 0, "Seed of initial weights, shuffles, dropout masks and "
            "augmentation.", 0, MAX_SEED),
    Setting("batch_size", int, 100, "Mini-batch size.", 1, 2**24),
    Setting("momentum", float, 0.0, "SGD momentum mu (0: plain mini-batch SGD).", 0.0, 1.0,
            high_open=True),
    Setting("nesterov", bool, False, "Nesterov momentum."),
    Setting("schedule", "choice", "constant", "Learning-rate schedule.  [default: triangular "
            "when cyclical settings (eta_min, eta_max, n_s, cycles) are given, else constant]",
            choices=tuple(SCHEDULES)),
    Setting("eta", float, 0.01, "Learning rate of the constant schedule.", 0.0, math.inf,
            low_open=True, high_open=True),
    Setting("eta_min", float, 1e-5, "Lowest eta of a cyclical schedule.", 0.0, math.inf,
            low_open=True, high_open=True),
    Setting("eta_max", float, 1e-1, "Highest eta of a cyclical schedule.", 0.0, math.inf,
            low_open=True, high_open=True),
    Setting("n_s", str, "500", "Half cycle: steps (500) or epochs (2ep)."),
    Setting("gamma", float, 1.0, "Per-step amplitude decay of exp_range.", 0.0, 1.0,
            low_open=True),
    Setting("warmup", float, 0.2, "Fraction of the run over which one-cycle warms up from "
            "eta_min to eta_max.", 0.0, 1.0, low_open=True, high_open=True),
    Setting("anneal", "choice", "cos", "How one-cycle decays from eta_max to 0 after its "
            "warm-up.", choices=ANNEALS),
    Setting("cycles", int, 0, "Stop after this many cycles.", 0, MAX_STEPS),
    Setting("epochs", int, 0, "Stop after this many epochs.", 0, MAX_STEPS),
    Setting("steps", int, 0, "Stop after this many update steps.", 0, MAX_STEPS),
    Setting("noise", float, 0.0, "Augmentation: Gaussian noise sigma, in feature std units.",
            0.0, math.inf, high_open=True),
    Setting("noise_fraction", float, 1.0, "Fraction of each batch that gets noise.", 0.0, 1.0),
    Setting("flip", bool, False, "Augmentation: random horizontal flips."),
    Setting("translate", int, 0, "Augmentation: random translations by up to K pixels "
            "(less than the image's height and width).", 0, 2**15),
    Setting("tta", "choice", "none", "Test-time augmentation of the final validation and test "
            "accuracies: flip averages the probabilities of each image and its mirror "
            "image.", choices=TTAS),
    Setting("eval_every", int, 0, "Evaluate every N steps.  [default: about 50 evaluations]",
            0, MAX_STEPS),
    Setting("checkpoint_every", int, 1000, "Write checkpoint.npz every N steps.", 1, MAX_STEPS),
    Setting("threads", int, 0, "Numba threads.  [default: all cores]", 0, MAX_THREADS),
    Setting("blas", str, "", "The BLAS library the run's products ran on, recorded as it "
            "starts; a run resumed or repeated from its config.toml must run on the same "
            "(CIFAR_ENGINE_BLAS).  [default: this process's]"),
)

SETTINGS = {**DATA, **MODEL, **TRAIN}

# An LR range test's own settings (`lr_range_test.RangeTest`).
RANGE_TEST = _table(
    Setting("lr_min", float, 1e-5, "Learning rate of the first step.", 0.0, math.inf,
            low_open=True, high_open=True),
    Setting("lr_max", float, 1.0, "Learning rate of the last step.", 0.0, math.inf,
            low_open=True, high_open=True),
    Setting("mode", "choice", "linear", "How eta rises: linearly (Smith's test) or "
            "exponentially (the LR finders').", choices=tuple(RAMPS)),
    Setting("stop_factor", float, 4.0, "Stop when the smoothed loss exceeds this many "
            "times its least value.", 1.0, math.inf, low_open=True, high_open=True),
    Setting("repeats", int, 1, "Tests with seeds seed, seed + 1, ...; the suggestion is read "
            "off their median curve.", 1, 1000),
    Setting("rule", "choice", DEFAULT_RULE, "The rule whose bounds are used (every rule's are "
            "printed).", choices=tuple(RULES)),
)

# A gradient check's own settings (`gradcheck.check_gradients`, `cifar-engine grad-check`).
MAX_SIZE = 2**24  # rows, features or classes beyond any check that could finish
GRAD_CHECK = _table(
    Setting("samples", int, 20, "Images (rows) in the check's batch.", 1, MAX_SIZE),
    Setting("features", int, 100, "Keep only the first F features of each image (the classic "
            "reports' shrink).", 1, MAX_SIZE),
    Setting("classes", int, 10, "Classes of the synthetic problem.", 2, MAX_SIZE),
    # below float64's eps, x + h == x for every parameter |x| >= 1: nothing is measured
    Setting("h", float, 1e-5, "Difference step.", sys.float_info.epsilon, 1.0),
    # a floor near the gradients themselves would turn every difference into a small ratio
    Setting("eps", float, 1e-12, "Floor of the relative error's denominator.", 0.0, 1e-6,
            low_open=True),
    # a relative error is at most 1: a tol near it passes any gradient
    Setting("tol", float, None, "Largest relative error that passes.  [default: 1e-6 "
            "centred, 1e-2 forward (first order in h)]", 0.0, 0.1, low_open=True),
    Setting("entries", int, None, "Check a seeded sample of K entries per tensor instead of "
            "all.", 1, MAX_STEPS),
)

# Settings that exclude each other: a later source (preset < config file < explicit
# settings) that sets one of them replaces the earlier sources' choice of the group.
EXCLUSIVE = (("cycles", "epochs", "steps"),)
# Settings that only a cyclical schedule reads; given without a schedule, they choose one.
CYCLICAL = ("eta_min", "eta_max", "n_s", "cycles", "gamma")
CYCLICAL_DEFAULT = "triangular"


def check_settings(values, table=SETTINGS):
    """{name: value} with each value checked and typed by its setting; unknown names are
    errors."""
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise SettingError(unknown[0], f"is not a setting (known: {', '.join(table)})")
    return {name: table[name].check(value) for name, value in values.items()}
