import numpy as np
import pytest

from cifar_engine.data import Dataset, make_split
from cifar_engine.errors import SettingError


@pytest.fixture
def dataset():
    """20 training images in 5 batches of 4, stored out of batch order; 6 test images."""
    rng = np.random.default_rng(0)
    return Dataset(
        train_images=rng.integers(0, 256, (20, 12), dtype=np.uint8),
        train_labels=np.arange(20, dtype=np.int64) % 3,
        test_images=rng.integers(0, 256, (6, 12), dtype=np.uint8),
        test_labels=np.arange(6, dtype=np.int64) % 3,
        class_names=("a", "b", "c"),
        image_shape=(3, 2, 2),
        source="test",
        train_batches=rng.permutation(np.repeat(np.arange(5), 4)),
    )


def _check_views(split, dataset):
    assert split.train.images is dataset.train_images and split.val.images is dataset.train_images
    assert split.test.images is dataset.test_images and split.test.labels is dataset.test_labels
    np.testing.assert_array_equal(split.test.index, np.arange(6))


def test_batch1_trains_on_batch_0_and_validates_on_batch_1(dataset):
    split = make_split(dataset, "batch1")

    np.testing.assert_array_equal(split.train.index, np.flatnonzero(dataset.train_batches == 0))
    np.testing.assert_array_equal(split.val.index, np.flatnonzero(dataset.train_batches == 1))
    assert (len(split.train), len(split.val), len(split.test)) == (4, 4, 6)
    _check_views(split, dataset)


def test_all_validates_on_the_end_of_the_last_batch(dataset):
    split = make_split(dataset, "all", n_val=3)

    last_batch = np.flatnonzero(dataset.train_batches == 4)
    np.testing.assert_array_equal(split.val.index, last_batch[1:])
    assert (len(split.train), len(split.val)) == (17, 3)
    np.testing.assert_array_equal(dataset.train_batches[split.train.index], np.sort(
        dataset.train_batches[split.train.index]))
    assert sorted(np.concatenate([split.train.index, split.val.index])) == list(range(20))
    _check_views(split, dataset)


@pytest.mark.parametrize("split, n_val, setting, message", [
    ("batch2", 1000, "split", "split 'batch2': choose one of all, batch1"),
    ("{x}", 1000, "split", "split '{x}': choose one of all, batch1"),
    ("all", 0, "n_val", "n_val 0: must lie in 1..19 for split all"),
    ("all", -1, "n_val", "n_val -1"),
    ("all", 20, "n_val", "n_val 20"),
])
def test_bad_split_settings_are_setting_errors_naming_them(dataset, split, n_val, setting,
                                                           message):
    with pytest.raises(SettingError) as error:
        make_split(dataset, split, n_val=n_val)

    assert error.value.setting == setting and str(error.value).startswith(message)


def test_the_settings_a_message_names_can_be_spelled_as_flags(dataset):
    with pytest.raises(SettingError) as error:
        make_split(dataset, "all", n_val=0)

    assert error.value.render(lambda name: "--" + name.replace("_", "-")) == (
        "--n-val 0: must lie in 1..19 for --split all (the training set has 20 images)")


def test_batch1_needs_two_non_empty_batches(dataset):
    tiny = Dataset(**{**vars(dataset), "train_batches": np.full(20, 2)})

    with pytest.raises(SettingError, match="split batch1: the training set"):
        make_split(tiny, "batch1")
