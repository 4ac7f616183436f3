"""Makes a process look, to cifar_engine and filelock, like a system without fcntl and
os.pread/os.pwrite (as Windows is), for `make test-portable` (CIFAR_ENGINE_TEST_NO_POSIX=1).

fcntl is hidden from those two packages only: on Linux the standard library's subprocess
imports it, as it does not on Windows, so hiding it from everyone would break Python itself
rather than simulate another system. os.pread and os.pwrite are gone for everyone.
"""
import builtins
import os
import sys
import warnings
from pathlib import Path

VARIABLE = "CIFAR_ENGINE_TEST_NO_POSIX"
HIDDEN_FROM = ("cifar_engine", "filelock")
HERE = Path(__file__).resolve().parent  # holds the sitecustomize that hides in child processes
_import = builtins.__import__


def _import_hiding_fcntl(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if name == "fcntl" and level == 0 and importer.partition(".")[0] in HIDDEN_FROM:
        raise ModuleNotFoundError(f"No module named 'fcntl' (hidden by {VARIABLE})", name=name)
    return _import(name, globals, locals, fromlist, level)


def hide():
    """Hide them in this process: before cifar_engine or filelock is first imported."""
    if builtins.__import__ is _import_hiding_fcntl:  # already (this process's sitecustomize)
        return
    too_late = [name for name in HIDDEN_FROM if name in sys.modules]
    if too_late:
        raise RuntimeError(f"{VARIABLE}: {', '.join(too_late)} imported before fcntl was hidden")
    builtins.__import__ = _import_hiding_fcntl
    for call in ("pread", "pwrite"):
        if hasattr(os, call):
            delattr(os, call)
    # filelock chooses its lock as it loads, and warns that it has only the soft one: an
    # artefact of the simulation (on Windows it is silent), so load it now, quietly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import filelock  # noqa: F401


def hide_here_and_in_children():
    """Hide them in this process and in every Python process it starts (through PYTHONPATH)."""
    hide()
    paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
