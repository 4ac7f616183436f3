"""The package's layers: every import of the engine points down (or stays in its own unit).

A unit is a sub-package or a top-level module of `engine/`; LAYERS lists them from the
ground up, and a module may import its own unit and the units of lower layers only. Every
import counts, those inside functions too: a lazy import that climbs is still a climb.
"""
import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "engine"

LAYERS = [
    ("errors",),
    ("util",),
    ("initializers", "presets", "schedules", "range_analysis", "plots"),
    ("runtime",),
    ("kernels",),
    ("data",),
    ("settings",),
    ("model",),
    ("training",),
    ("tune", "gradcheck"),
    ("estimator",),
    ("estimator_onnx",),
]
FLOOR = {unit: k for k, units in enumerate(LAYERS) for unit in units}
FACADE = ""  # the package's __init__: the lazy public API over every layer


def module_of(path, root):
    """The dotted name of a source file under root ("" for root's own __init__)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, root):
    """The engine modules that the file at `path` imports, as dotted names under root."""
    name = module_of(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module:
                found.add(target)
            else:  # from . import a, b: each name is a module, or an attribute of the facade
                found.update(".".join(filter(None, [target, a.name])) if target or
                             (root / a.name).exists() or (root / f"{a.name}.py").exists()
                             else FACADE for a in node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found.update(n.removeprefix("cifar_engine").lstrip(".") for n in names
                         if n == "cifar_engine" or n.startswith("cifar_engine."))
    return found


def unit(module):
    return module.split(".")[0]


def climbs(root, floor=FLOOR):
    """["a.b -> c.d", ...]: every import under root that reaches a higher layer, or a unit
    that LAYERS does not place (a new module must be given its floor)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        here = module_of(path, root)
        if here == FACADE:
            continue
        for target in sorted(imports(path, root)):
            there = unit(target)
            if target == FACADE:
                found.append(f"{here} -> the package's facade (import the module itself)")
            elif unit(here) not in floor or there not in floor:
                found.append(f"{here} -> {target} (a unit without a floor in LAYERS)")
            elif there != unit(here) and floor[there] >= floor[unit(here)]:
                found.append(f"{here} -> {target}")
    return found


def test_every_import_of_the_engine_points_down():
    assert climbs(ENGINE) == []


def test_every_unit_of_the_engine_has_a_floor():
    units = {p.stem if p.is_file() else p.name for p in ENGINE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert units == set(FLOOR)


def test_the_kernels_import_only_the_process_below_them():
    reached = {unit(t) for p in (ENGINE / "kernels").rglob("*.py") for t in imports(p, ENGINE)}
    assert reached <= {"kernels", "runtime"}


@pytest.mark.parametrize("source, climb", [
    ("from ..training.run import fit\n", "model.network -> training.run"),
    ("def f():\n    from ..tune import search\n", "model.network -> tune"),
    ("from cifar_engine.estimator import MLPClassifier\n", "model.network -> estimator"),
])
def test_a_climbing_import_is_found(tmp_path, source, climb):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "__init__.py").write_text("")
    (tmp_path / "model" / "network.py").write_text("from ..kernels import step\n" + source)
    assert climbs(tmp_path) == [climb]
