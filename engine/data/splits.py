"""Train/validation/test splits of a Dataset: index views, never copies.

What is fitted on the train part (its preprocessing) is fitted by the caller
(`preprocessing.fit_preprocessing`), so that one split serves runs of any preprocessing.
"""
from dataclasses import dataclass, field

import numpy as np

from ..errors import SettingError, literal


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
    """

    name: str
    train: Part
    val: Part
    test: Part


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


def make_split(dataset, split="batch1", n_val=1000):
    """Cut `dataset` into train, val and test parts.

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
    test = np.arange(len(dataset.test_labels), dtype=np.int64)
    return Split(
        name=split,
        train=Part(dataset.train_images, dataset.train_labels, train),
        val=Part(dataset.train_images, dataset.train_labels, val),
        test=Part(dataset.test_images, dataset.test_labels, test),
    )
