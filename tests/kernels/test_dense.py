"""dense.py: the fused affine map + ReLU and its two backward kernels, against NumPy."""
from functools import reduce

import numpy as np
import pytest

from cifar_engine.kernels.dense import (column_sums, dense_backward, dense_backward_input,
                                        dense_forward, dense_forward_in_order, product_in_order)

# (n, d, m): a batch of one, odd sizes, widths past one 64-column block of column_sums, and
# a layer large enough that every loop runs in parallel form (kernels/serial.py).
SHAPES = [(1, 3, 50), (7, 65, 3), (100, 50, 65), (700, 700, 400)]


@pytest.mark.parametrize("n, d, m", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_dense_forward_is_affine_map_then_relu(n, d, m, relu, with_bias, randn, garbage,
                                                assert_close):
    X, W = randn(n, d), randn(m, d)
    b = randn(m) if with_bias else randn(0)
    S = garbage(n, m)
    dense_forward(S, X, W, b, relu)
    expected = X.astype(np.float64) @ W.T.astype(np.float64)
    if with_bias:
        expected += b
    if relu:
        expected = np.maximum(expected, 0)
    assert_close(S, expected)


@pytest.mark.parametrize("n, d, m", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_dense_forward_in_order_is_affine_map_then_relu(n, d, m, relu, randn, garbage,
                                                        assert_close):
    X, W, b = randn(n, d), randn(m, d), randn(m)
    S = garbage(n, m)
    dense_forward_in_order(S, X, np.ascontiguousarray(W.T), b, relu)
    expected = X.astype(np.float64) @ W.T.astype(np.float64) + b
    assert_close(S, np.maximum(expected, 0) if relu else expected)


def _sum_in_order(x, Wt):
    """One row's x Wt the plain way: a running sum over d, one rounding per multiply and add."""
    acc = np.zeros(Wt.shape[1], Wt.dtype)
    for k in range(Wt.shape[0]):
        acc += x[k] * Wt[k]
    return acc


@pytest.mark.parametrize("n, d, m", [(7, 65, 3), (100, 50, 300), (700, 300, 70)])
def test_product_in_order_sums_each_entry_in_order_wherever_its_row_is(n, d, m, randn, rng,
                                                                        garbage):
    # the entries are exactly the in-order sums, so moving, dropping or adding rows (the
    # scikit-learn sample-order and subset checks) cannot change a row's bits
    X, Wt = randn(n, d), randn(d, m)
    S = garbage(n, m)
    product_in_order(S, X, Wt)
    for i in (0, n // 2, n - 1):
        np.testing.assert_array_equal(S[i], _sum_in_order(X[i], Wt))
    perm = rng.permutation(n)
    moved = garbage(n, m)
    product_in_order(moved, np.ascontiguousarray(X[perm]), Wt)
    np.testing.assert_array_equal(moved, S[perm])
    one = garbage(1, m)
    product_in_order(one, X[n - 1:], Wt)
    np.testing.assert_array_equal(one[0], S[n - 1])


@pytest.mark.parametrize("n, d, m", SHAPES)
@pytest.mark.parametrize("lam", [0.0, 0.3])
@pytest.mark.parametrize("with_db", [True, False], ids=["db", "no-db"])
def test_dense_backward_gives_weight_and_bias_gradients(n, d, m, lam, with_db, randn, garbage,
                                                        assert_close):
    G, X, W = randn(n, m), randn(n, d), randn(m, d)
    dW = garbage(m, d)
    db = garbage(m) if with_db else garbage(0)
    dense_backward(dW, db, G, X, W, lam)
    G64, X64, W64 = (a.astype(np.float64) for a in (G, X, W))
    assert_close(dW, G64.T @ X64 + 2 * lam * W64, "dW")
    if with_db:
        assert_close(db, G64.sum(axis=0), "db")


@pytest.mark.parametrize("n, d, m", SHAPES)
@pytest.mark.parametrize("scale", [1.0, 1 / (1 - 0.3)], ids=["no-dropout", "dropout-0.3"])
def test_dense_backward_input_masks_by_relu_and_scales(n, d, m, scale, randn, garbage,
                                                       assert_close):
    G, W = randn(n, m), randn(m, d)
    X = np.maximum(randn(n, d), 0)  # a ReLU output: about half the entries are exactly 0
    dX = garbage(n, d)
    dense_backward_input(dX, G, X, W, scale)
    expected = (G.astype(np.float64) @ W.astype(np.float64)) * (X > 0) * scale
    assert_close(dX, expected)
    assert np.all(dX[X == 0] == 0)


@pytest.mark.parametrize("n", [1, 7, 100])
@pytest.mark.parametrize("m", [3, 64, 65, 130])
def test_column_sums_match_numpy_and_add_rows_in_order(n, m, randn, garbage, assert_close):
    A = randn(n, m)
    out = garbage(m)
    column_sums(out, A)
    assert_close(out, A.astype(np.float64).sum(axis=0))
    # "each column summed in row order": exactly the left-to-right sum of the rows.
    np.testing.assert_array_equal(out, reduce(np.add, A))
