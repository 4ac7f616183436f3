"""Where the data comes from: the path to read, and what kind of source it is."""
import os
from pathlib import Path

from ..errors import DataError
from .archive import first_file_name
from .idx import is_idx_folder
from .paths import data_home

DATA_ENV = "CIFAR_ENGINE_DATA"
CIFAR10_PYTHON, CIFAR100_PYTHON = "cifar10-python", "cifar100-python"
IMAGE_FOLDER, IDX = "image-folder", "fashion-mnist-idx"
CIFAR10_DIR, CIFAR100_DIR = "cifar-10-batches-py", "cifar-100-python"
# What the project data folder may hold, in order of preference.
KNOWN_SOURCES = (CIFAR10_DIR, "cifar-10-python.tar.gz", "cifar-10-jpeg.tar.gz")
_HOW_TO_GET_DATA = "pass --data SRC, set CIFAR_ENGINE_DATA, or run `cifar-engine data download`"


def resolve_source(src=None):
    """The data source's path: `src`, else $CIFAR_ENGINE_DATA, else the project data folder's.

    The project data folder (`<repo>/data` in a checkout, else ~/.cache/cifar-engine) is
    searched for KNOWN_SOURCES. Raises DataError naming the path when it does not exist, or
    saying how to get data when there is none.
    """
    if src is None and os.environ.get(DATA_ENV):
        src, origin = os.environ[DATA_ENV], f"{DATA_ENV}="
    else:
        origin = ""
    if src is not None:
        path = Path(src).expanduser()
        if not path.exists():
            raise DataError(f"{origin}{path}: no such file or folder")
        return path
    home = data_home()
    for name in KNOWN_SOURCES:
        if (home / name).exists():
            return home / name
    raise DataError(f"no data set found in {home}: {_HOW_TO_GET_DATA}")


def _folder_kind(folder):
    names = {entry.name for entry in folder.iterdir()}
    if {"data_batch_1", "batches.meta"} & names:
        return CIFAR10_PYTHON
    if {"train", "test", "meta"} <= names and (folder / "train").is_file():
        return CIFAR100_PYTHON
    if is_idx_folder(folder):
        return IDX
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return IMAGE_FOLDER
    return None


def _archive_kind(path):
    parts = Path(first_file_name(path)).parts
    if CIFAR10_DIR in parts or (parts and parts[-1] in ("data_batch_1", "batches.meta")):
        return CIFAR10_PYTHON
    if CIFAR100_DIR in parts or (parts and parts[-1] in ("train", "test", "meta")):
        return CIFAR100_PYTHON
    return IMAGE_FOLDER


def detect_source(path):
    """What kind of source `path` is, told from the folder's files or the archive's first one.

    Returns
    -------
    kind : CIFAR10_PYTHON, CIFAR100_PYTHON, IMAGE_FOLDER or IDX
    path : the path to read: `path`, or the known source that a folder such as `data/` holds
    """
    if path.is_file():
        return _archive_kind(path), path
    if not path.is_dir():  # a pipe or a device: reading one could block or never end
        raise DataError(f"{path}: not a file or folder")
    kind = _folder_kind(path)
    if kind:
        return kind, path
    for name in KNOWN_SOURCES + (CIFAR100_DIR, "cifar-100-python.tar.gz"):
        if (path / name).exists():
            return detect_source(path / name)
    raise DataError(f"{path}: not a data set I can read (a CIFAR-10/100 python release, an "
                    "image folder with train/ and test/, or Fashion-MNIST IDX files)")
