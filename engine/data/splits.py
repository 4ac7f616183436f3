"""Train/validation/test splits of a Dataset: index views, and the train part's statistics."""
from dataclasses import dataclass, field

import numpy as np

from ..errors import SettingError, literal

CHUNK_ROWS = 4096  # training rows turned into float64 at a time for the mean and std


@dataclass(frozen=True, eq=False)
class Part:
    """One part of a split: the dataset's arrays seen through `index`, never a copy.

    Attributes
    ----------
    images : uint8 (N, D), the dataset's full image array
    labels : int64 (N,), the dataset's full labels
    index : int64 (n,), the rows that belong to this part, in the part's order
    """

    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)

    def __len__(self):
        return len(self.index)


@dataclass(frozen=True, eq=False)
class Split:
    """A named split of a Dataset into train, val and test parts.

    Attributes
    ----------
    name : str, a key of SPLITS
    train, val, test : Part
    mean : float64 (D,), per-feature mean over the train part
    std : float64 (D,), per-feature std (ddof=0) over the train part, 1 where it is 0
    """

    name: str
    train: Part
    val: Part
    test: Part
    mean: np.ndarray = field(repr=False)
    std: np.ndarray = field(repr=False)


def _batch1(dataset, n_val):
    """Train on batch 0, validate on batch 1 (the classic course setting); n_val is unused."""
    return np.flatnonzero(dataset.train_batches == 0), np.flatnonzero(dataset.train_batches == 1)


def _all(dataset, n_val):
    """Train on all training images but the last n_val of batch order 0..4; validate on those."""
    n = len(dataset.train_batches)
    if not 1 <= n_val < n:
        raise SettingError("n_val", f"{n_val}: must lie in 1..{n - 1} for {{split}} all "
                                    f"(the training set has {n} images)")
    order = np.argsort(dataset.train_batches, kind="stable")
    return order[:-n_val], order[-n_val:]


SPLITS = {"batch1": _batch1, "all": _all}


def feature_stats(images, index, chunk_rows=CHUNK_ROWS):
    """Per-feature mean and std of images[index], in float64, a chunk of rows at a time.

    Chunks are merged with Chan et al.'s pairwise update of (count, mean, sum of squared
    deviations), which does not cancel the way E[x^2] - E[x]^2 does. A constant feature's
    std of 0 becomes 1, so that standardising leaves it at 0 instead of dividing by 0.

    Parameters
    ----------
    images : uint8 (N, D)
    index : int64 (n,), n >= 1

    Returns
    -------
    mean, std : float64 (D,)
    """
    count, mean, m2 = 0, np.zeros(images.shape[1]), np.zeros(images.shape[1])
    for start in range(0, len(index), chunk_rows):
        chunk = images[index[start:start + chunk_rows]].astype(np.float64)
        chunk_mean = chunk.mean(axis=0)
        delta = chunk_mean - mean
        total = count + len(chunk)
        mean += delta * (len(chunk) / total)
        m2 += ((chunk - chunk_mean) ** 2).sum(axis=0) + delta ** 2 * (count * len(chunk) / total)
        count = total
    std = np.sqrt(m2 / count)
    std[std == 0] = 1.0
    return mean, std


def make_split(dataset, split="batch1", n_val=1000):
    """Cut `dataset` into train, val and test parts, and standardisation statistics.

    Parameters
    ----------
    dataset : Dataset
    split : "batch1" (train batch 0, validate batch 1) or "all" (train all but the last
        n_val of the batch-ordered training images, validate on those); test is the test set
    n_val : int, validation size for "all"

    Raises
    ------
    SettingError : an unknown split (naming split), or n_val out of range (naming n_val)
    """
    if split not in SPLITS:
        raise SettingError("split", f"{literal(repr(split))}: choose one of "
                                    f"{', '.join(sorted(SPLITS))}")
    train, val = SPLITS[split](dataset, n_val)
    if not len(train) or not len(val):
        raise SettingError("split", f"{split}: the training set ({len(dataset.train_labels)} "
                                    "images) leaves an empty train or val part")
    mean, std = feature_stats(dataset.train_images, train)
    test = np.arange(len(dataset.test_labels), dtype=np.int64)
    return Split(
        name=split,
        train=Part(dataset.train_images, dataset.train_labels, train),
        val=Part(dataset.train_images, dataset.train_labels, val),
        test=Part(dataset.test_images, dataset.test_labels, test),
        mean=mean,
        std=std,
    )
