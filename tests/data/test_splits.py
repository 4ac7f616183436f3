import numpy as np
import pytest

from cifar_engine.data import Dataset, make_split
from cifar_engine.data.splits import feature_stats
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


def test_mean_and_std_are_those_of_the_train_part(dataset):
    split = make_split(dataset, "all", n_val=5)

    train = dataset.train_images[split.train.index].astype(np.float64)
    np.testing.assert_allclose(split.mean, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(split.std, train.std(axis=0), rtol=1e-12)
    assert split.mean.dtype == split.std.dtype == np.float64


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 1000])
def test_chunked_statistics_do_not_depend_on_the_chunk_size(chunk_rows):
    images = np.random.default_rng(1).integers(0, 256, (50, 8), dtype=np.uint8)
    index = np.arange(3, 50, 2)

    mean, std = feature_stats(images, index, chunk_rows=chunk_rows)

    np.testing.assert_allclose(mean, images[index].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, images[index].std(axis=0), rtol=1e-12)


def test_a_constant_feature_gets_std_1():
    images = np.full((10, 3), 7, dtype=np.uint8)
    images[:, 1] = np.arange(10)

    mean, std = feature_stats(images, np.arange(10), chunk_rows=4)

    assert std[0] == std[2] == 1.0 and std[1] == pytest.approx(np.arange(10).std())
    assert mean[0] == 7.0


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
