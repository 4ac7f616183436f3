"""Where the project keeps its data and its decoded-array cache by default."""
import os
from pathlib import Path

USER_DIR = Path("~/.cache/cifar-engine")
CACHE_ENV = "CIFAR_ENGINE_CACHE"


def checkout_root():
    """The repository folder (it holds pyproject.toml) when running from a checkout, else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def data_home():
    """The project data folder: `<repo>/data` in a checkout, else `~/.cache/cifar-engine`."""
    root = checkout_root()
    return root / "data" if root else USER_DIR.expanduser()


def default_cache_dir():
    """$CIFAR_ENGINE_CACHE, else `<repo>/data/cache` in a checkout, else ~/.cache/cifar-engine."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    root = checkout_root()
    return root / "data" / "cache" if root else USER_DIR.expanduser()
