"""dropout.py: inverted dropout keeps 1 - p of the entries, scaled by 1 / (1 - p), with a mask
that is a pure function of the key."""
import numpy as np
import pytest

from cifar_engine.kernels.dropout import dropout_forward
from cifar_engine.kernels.rng import derive_key

KEY = np.uint64(12345)


def dropped(H, p, key):
    """A copy of H after dropout_forward."""
    out = H.copy()
    dropout_forward(out, p, key)
    return out


@pytest.mark.parametrize("n, m", [(1, 3), (7, 50), (100, 65), (700, 400)])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.8])
def test_kept_entries_are_scaled_and_the_rest_are_zero(n, m, p, rng, dtype, assert_close):
    H = rng.uniform(0.5, 2.0, (n, m)).astype(dtype)  # all > 0, so a 0 can only be a drop
    out = dropped(H, p, KEY)
    kept = out != 0
    assert_close(out[kept], H[kept].astype(np.float64) / (1 - p))
    if p == 0:
        assert kept.all()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fraction_dropped_is_close_to_p(p, dtype):
    out = dropped(np.ones((400, 500), dtype), p, KEY)
    # 200,000 Bernoulli draws: the standard error of the fraction is at most 0.0011.
    assert abs(np.mean(out == 0) - p) < 0.006


def test_same_key_gives_the_same_mask_and_another_key_another(dtype):
    H = np.ones((50, 40), dtype)
    first, again = dropped(H, 0.5, KEY), dropped(H, 0.5, KEY)
    other = dropped(H, 0.5, KEY + np.uint64(1))
    np.testing.assert_array_equal(first, again)
    # Two independent masks agree on about half the entries, not on all of them.
    assert 0.4 < np.mean((first == 0) == (other == 0)) < 0.6


def test_a_key_from_derive_key_called_in_python_drops_a_fraction_p():
    key = derive_key(0, 1, 0)  # a Python int below 2**63, as derive_key returns it
    assert key < 2 ** 63
    out = dropped(np.ones((200, 100)), 0.5, key)
    assert abs(np.mean(out == 0) - 0.5) < 0.02
