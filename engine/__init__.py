"""cifar-engine: a Numba-compiled CPU engine for training multilayer perceptrons.

The public API is imported lazily so that `cifar-engine data info` starts without
paying for Numba's import. The environment variables that Numba reads are checked before
it loads (`environment.guard`).
"""
from importlib import import_module

from .environment import guard

guard()

__version__ = "0.1.0"

_PUBLIC = {
    "UserError": "errors",
    "DataError": "errors",
    "Dataset": "data",
    "load_dataset": "data",
    "make_split": "data",
    "NetworkSpec": "spec",
    "Network": "network",
    "Standardise": "preprocessing",
    "Zca": "preprocessing",
    "fit_preprocessing": "preprocessing",
    "check_gradients": "gradcheck",
    "save_network": "model_file",
    "load_network": "model_file",
    "SettingError": "errors",
    "SETTINGS": "settings",
    "TrainConfig": "train_config",
    "resolve_config": "train_config",
    "Trainer": "trainer",
    "Observer": "trainer",
    "MetricRow": "trainer",
    "fit": "training",
    "RunResult": "training",
    "train": "training",
    "PRESETS": "presets",
    "MLPClassifier": "estimator",
}


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
