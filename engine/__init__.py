"""cifar-engine: a Numba-compiled CPU engine for training multilayer perceptrons.

The public API is imported lazily so that `cifar-engine data info` starts without
paying for Numba's import. The environment variables that Numba reads are checked before
it loads (`runtime.environment.guard`).
"""
from importlib import import_module
import importlib.metadata

from .runtime.environment import guard

guard()

__version__ = importlib.metadata.version("cifar-engine")

_PUBLIC = {
    "UserError": "errors",
    "DataError": "errors",
    "Dataset": "data",
    "load_dataset": "data",
    "make_split": "data",
    "NetworkSpec": "model.spec",
    "Network": "model.network",
    "Standardise": "data.preprocessing",
    "Zca": "data.preprocessing",
    "fit_preprocessing": "data.preprocessing",
    "check_gradients": "gradcheck",
    "save_network": "model.npz",
    "load_network": "model.npz",
    "SettingError": "errors",
    "SETTINGS": "settings",
    "TrainConfig": "training.config",
    "resolve_config": "training.config",
    "Trainer": "training.loop",
    "Observer": "training.loop",
    "TensorBoardObserver": "training.loggers",
    "MlflowObserver": "training.loggers",
    "MetricRow": "training.loop",
    "fit": "training.run",
    "RunResult": "training.run",
    "train": "training.run",
    "train_or_resume": "training.run",
    "PRESETS": "presets",
    "MLPClassifier": "estimator",
    "export": "model.export",
    "to_onnx": "model.export",
    "register_skl2onnx": "estimator_onnx",
}


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
