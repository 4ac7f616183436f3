"""Fixtures of the command-line tests: a tiny image-folder data set (fakes.FAST_TRAIN runs a
few dozen steps on it)."""
import pytest

from fakes import write_image_tree


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """300 training and 60 test 8x8 RGB images of 3 classes, as an image folder."""
    root = tmp_path_factory.mktemp("tiny") / "images"
    write_image_tree(root, per_class=(100, 20), size=(8, 8))
    return root
