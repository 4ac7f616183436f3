import pytest

from cifar_engine.data import load_dataset
from cifar_engine.errors import DataError, SettingError
from fakes import assert_same_data


@pytest.mark.parametrize("fixture, seeded_train", [
    ("cifar10_folder", False), ("cifar10_archive", False), ("cifar100_folder", True),
    ("cifar100_archive", True), ("image_tree", True), ("image_archive", True),
    ("idx_folder", True),
])
def test_every_format_loads_through_the_one_entry_point(request, cache_dir, fixture, seeded_train):
    fake = request.getfixturevalue(fixture)

    dataset = load_dataset(fake.path, cache_dir=cache_dir, progress=False)

    assert_same_data(dataset, fake, seeded_train=seeded_train)
    assert str(fake.path) in dataset.source


def test_coarse_labels_only_for_cifar100(idx_folder, cache_dir):
    with pytest.raises(SettingError, match="^labels coarse: only CIFAR-100 has coarse labels"):
        load_dataset(idx_folder.path, labels="coarse", cache_dir=cache_dir)


def test_an_unknown_label_option(cifar100_folder, cache_dir):
    with pytest.raises(SettingError, match="^labels 'medium': choose one of fine, coarse"):
        load_dataset(cifar100_folder.path, labels="medium", cache_dir=cache_dir)


def test_a_missing_source(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "missing.tar.gz")
