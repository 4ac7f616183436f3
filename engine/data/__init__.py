"""Data sets for the engine: decoding, caching, splitting and downloading.

`load_dataset` is the one entry point; `make_split` cuts a Dataset into train/val/test views.
Nothing here imports Numba or matplotlib, so that `cifar-engine data info` starts fast.
"""
from .dataset import CIFAR10_CLASSES, N_BATCHES, SPLIT_SEED, Dataset, dataset_sha256
from .download import CIFAR10_PYTHON_MD5, CIFAR10_PYTHON_URL, download
from .idx import FASHION_MNIST_CLASSES
from .load import LABEL_OPTIONS, load_dataset
from .paths import data_home, default_cache_dir
from .source import resolve_source
from .splits import SPLITS, Part, Split, make_split

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_PYTHON_MD5", "CIFAR10_PYTHON_URL", "Dataset",
    "FASHION_MNIST_CLASSES", "LABEL_OPTIONS", "N_BATCHES", "Part", "SPLITS", "SPLIT_SEED",
    "Split", "data_home", "dataset_sha256", "default_cache_dir", "download", "load_dataset",
    "make_split",
    "resolve_source",
]
