"""rng.py: the counter-based uniform and normal draws are in range, have the right moments
and distribution, and are pure functions of (key, counter)."""
import numpy as np
import pytest
from numba import njit
from scipy import stats

from cifar_engine.kernels.rng import derive_key, normal, substream, uniform

N_DRAWS = 200_000


@njit(cache=True)
def _draws(draw, key, n):
    """[draw(key, 0), ..., draw(key, n - 1)] with draw one of rng.py's generators."""
    out = np.empty(n)
    for i in range(n):
        out[i] = draw(key, i)
    return out


DRAWS = {"uniform": uniform, "normal": normal}


@pytest.fixture(scope="module")
def key():
    # Kernels receive keys as uint64 (derive_key's type inside Numba); from Python, a key is
    # only uint64 if passed as np.uint64 (see the last test).
    return np.uint64(derive_key(42, 0, 3))


def test_uniform_is_in_the_unit_interval_with_uniform_moments(key):
    u = _draws(uniform, key, N_DRAWS)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.003  # standard error 0.00065
    assert abs(u.var() - 1 / 12) < 0.002
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_normal_has_zero_mean_unit_variance_and_normal_shape(key):
    z = _draws(normal, key, N_DRAWS)
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 0.01  # standard error 0.0022
    assert abs(z.std() - 1) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3


@pytest.mark.parametrize("draw", sorted(DRAWS))
def test_draws_are_a_pure_function_of_key_and_counter(draw, key):
    first = _draws(DRAWS[draw], key, 1000)
    np.testing.assert_array_equal(first, _draws(DRAWS[draw], key, 1000))
    np.testing.assert_array_equal(first[:10], _draws(DRAWS[draw], key, 10))  # i-th is fixed
    other = _draws(DRAWS[draw], key + np.uint64(1), 1000)
    assert np.mean(first == other) < 0.01


def test_keys_and_substreams_are_deterministic_and_distinct():
    keys = [derive_key(seed, stream, counter)
            for seed in (0, 1) for stream in (0, 1, 2) for counter in (0, 1, 2)]
    assert len(set(keys)) == len(keys)
    assert keys == [derive_key(seed, stream, counter)
                    for seed in (0, 1) for stream in (0, 1, 2) for counter in (0, 1, 2)]
    root = np.uint64(keys[0])
    subs = [substream(root, i) for i in range(100)]
    assert len(set(subs)) == 100 and root not in subs


@pytest.mark.parametrize("draw", sorted(DRAWS))
def test_a_key_given_as_a_python_int_draws_the_same_stream(draw, key):
    # derive_key returns a Python int to Python; Numba types one below 2**63 as int64.
    np.testing.assert_array_equal(_draws(DRAWS[draw], int(key), 1000),
                                  _draws(DRAWS[draw], key, 1000))
