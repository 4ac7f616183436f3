"""Fixtures of the kernel tests: every test that asks for `dtype` runs in float64 and float32.

Each kernel is checked against a plain-NumPy computation done in float64 on the same inputs;
`assert_close` holds the kernel to float64 round-off (rtol 1e-10) or float32's (1e-5), with
an absolute floor of rtol times the largest expected magnitude, so entries that cancel to
near zero are judged on the scale of the array.
"""
import numpy as np
import pytest

RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture
def randn(rng, dtype):
    """randn(*shape): standard normal draws, C-contiguous, in the test's dtype."""
    return lambda *shape: rng.standard_normal(shape).astype(dtype)


@pytest.fixture
def assert_close(dtype):
    """assert_close(actual, expected): a kernel output against its float64 NumPy value."""
    rtol = RTOL[dtype]

    def check(actual, expected, err_msg=""):
        actual = np.asarray(actual)
        if actual.ndim:
            assert actual.dtype == dtype, f"{err_msg}: the kernel wrote {actual.dtype}"
        expected = np.asarray(expected, dtype=np.float64)
        floor = rtol * np.abs(expected).max(initial=0.0)
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=floor, err_msg=err_msg)

    return check



@pytest.fixture
def garbage(dtype):
    """garbage(*shape): an output buffer full of NaN, so a kernel that fails to overwrite
    an entry (the contract of every kernel module) leaves a NaN the comparison catches."""
    return lambda *shape: np.full(shape, np.nan, dtype)
