"""Where the real data sets live on CI and the developers' machines. Tests that need them
fail, never skip, when they are missing: a silent skip would hide a broken data path."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CIFAR10_JPEG = REPO.parent / "shared" / "data" / "cifar-10-jpeg.tar.gz"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def require(path, how_to_get_it):
    if not path.exists():
        pytest.fail(f"{path} is missing: {how_to_get_it}", pytrace=False)
