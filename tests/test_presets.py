"""The classic results, reproduced by the presets on the real data (slow: make test-slow).

Each bound is the published figure less 1.5 points (the issue's acceptance), the
qualitative finding where nothing was published, or, for best-10min and best-30min, the
lower of the two seeds measured less half a point (another library or CPU rounds
elsewhere, and the same seed ends up to 0.3 points away; their time limits `make
test-slow` does not check: see docs/results.md)."""
import pytest

import cifar_engine
from cifar_engine.presets import PRESETS
from real_data import CIFAR10_JPEG, require

FLOORS = {
    "one-layer": 0.389 - 0.015,
    "one-layer-lam1": 0.375 - 0.015,
    "two-layer-one-cycle": 0.455 - 0.015,
    "two-layer-three-cycles": 0.45 - 0.015,
    "two-layer-tuned": 0.52 - 0.015,
    "three-layer-bn": 0.535 - 0.015,
    "init-sigma-1e-4-bn": 0.50,
    "two-layer-best": 0.557 - 0.015,
    "best-10min": 0.697 - 0.005,  # seeds 0 and 1 measured 69.71% and 70.26% (2026-12-07)
    "best-30min": 0.727 - 0.005,  # seeds 0 and 1 measured 72.74% and 72.71% (2026-12-07)
}


def _run(name, tmp_path, real_cache):
    require(CIFAR10_JPEG, "the offline CIFAR-10 JPEG archive lives in ../shared/data/")
    config = cifar_engine.TrainConfig.from_dict({**PRESETS[name].settings,
                                                 "data": str(CIFAR10_JPEG)})
    _, summary = cifar_engine.train(config, out=tmp_path / name, cache_dir=real_cache)
    return summary["test_acc"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_preset_reaches_the_published_accuracy(name, tmp_path, real_cache):
    assert _run(name, tmp_path, real_cache) >= FLOORS[name]


@pytest.mark.slow
def test_tiny_init_without_batch_norm_stays_at_chance(tmp_path, real_cache):
    assert _run("init-sigma-1e-4", tmp_path, real_cache) < 0.12
