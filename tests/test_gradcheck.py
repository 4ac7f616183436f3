"""The gradient checker: it passes correct gradients to 1e-6 and flags a wrong one."""
import numpy as np
import pytest

from cifar_engine.errors import SettingError
from cifar_engine.gradcheck import (check_gradients, check_size, problem_from_images,
                                    synthetic_problem)
from cifar_engine.model.network import Network, NetworkSpec

NINE_LAYER = (50, 30, 20, 20, 10, 10, 10, 10)
ACCEPTANCE_NETS = [
    pytest.param((), False, "xent", id="one-layer-xent"),
    pytest.param((), False, "svm", id="one-layer-svm"),
    pytest.param((50,), False, "xent", id="two-layer"),
    pytest.param((50, 50), True, "xent", id="three-layer-bn"),
    pytest.param(NINE_LAYER, True, "xent", id="nine-layer-bn"),
    pytest.param((50, 50), True, "svm", id="three-layer-bn-svm"),
]


def _net(hidden, bn, loss, features=20, classes=10, samples=20, lam=0.005, seed=1):
    spec = NetworkSpec(input_size=features, n_classes=classes, hidden=hidden, batch_norm=bn,
                       loss=loss, lam=lam, dtype="float64")
    return Network(spec, seed=seed, max_batch=samples)


@pytest.mark.parametrize("hidden, bn, loss", ACCEPTANCE_NETS)
@pytest.mark.parametrize("seed", [0, 1])
def test_centred_differences_agree_to_1e6_on_synthetic_data(hidden, bn, loss, seed):
    net = _net(hidden, bn, loss, seed=seed)
    X, y = synthetic_problem(20, 20, 10, seed=seed)
    results = check_gradients(net, X, y)
    expected = {"W", "b"} | ({"gamma", "beta"} if bn else set())
    assert {r.name.rstrip("0123456789") for r in results} == expected
    for r in results:
        assert r.passed, r
        assert r.max_rel_error < 1e-6
        assert r.checked > 0.9 * np.prod(r.shape)  # the check is not hollowed out by exclusions


def test_forward_differences_pass_their_own_tolerance():
    net = _net((50,), False, "xent")
    X, y = synthetic_problem(20, 20, 10, seed=0)
    results = check_gradients(net, X, y, method="forward")
    assert all(r.passed for r in results)
    # forward differences are first-order: they are measurably worse than centred ones
    centred = check_gradients(net, X, y, method="centred")
    assert max(r.max_rel_error for r in results) > 10 * max(r.max_rel_error for r in centred)


@pytest.mark.parametrize("tensor, index", [("W1", (3, 4)), ("gamma2", (7,)), ("beta1", (0,)),
                                           ("b3", (9,))])
def test_a_corrupted_gradient_entry_fails_exactly_its_tensor(tensor, index):
    net = _net((50, 50), True, "xent")
    X, y = synthetic_problem(20, 20, 10, seed=0)
    net.loss_and_gradients(X, y)
    analytic = {k: g.copy() for k, g in net.gradients.items()}
    analytic[tensor][index] *= 1.001
    results = {r.name: r for r in check_gradients(net, X, y, analytic=analytic)}
    assert [name for name, r in results.items() if not r.passed] == [tensor]
    assert results[tensor].worst_index == index


def test_a_step_across_a_relu_kink_is_counted_apart_not_failed():
    h = 1e-5
    net = _net((8,), False, "xent", samples=5)
    X, y = synthetic_problem(5, 20, 10, seed=0)
    W1, b1 = net.parameters["W1"], net.parameters["b1"]
    b1[2] = -(X[0] @ W1[2]) + 0.3 * h  # unit 2 of sample 0 sits 0.3 h above its kink
    results = {r.name: r for r in check_gradients(net, X, y, h=h)}
    assert results["b1"].kinks >= 1
    assert all(r.passed for r in results.values())


def test_a_sample_of_entries_is_checked_when_asked():
    net = _net((50,), False, "xent")
    X, y = synthetic_problem(20, 20, 10, seed=0)
    results = {r.name: r for r in check_gradients(net, X, y, entries=30)}
    W1 = results["W1"]
    assert W1.checked + W1.kinks + W1.tiny == 30
    assert results["b2"].checked + results["b2"].kinks + results["b2"].tiny == 10


def test_refuses_float32_and_dropout():
    X, y = synthetic_problem(4, 6, 3)
    f32 = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4,)), max_batch=4)
    with pytest.raises(ValueError, match="float64"):
        check_gradients(f32, X, y)
    drop = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4,), dropout=0.5,
                               dtype="float64"), max_batch=4)
    with pytest.raises(ValueError, match="dropout"):
        check_gradients(drop, X, y)


def test_the_check_leaves_parameters_and_running_statistics_unchanged():
    net = _net((50, 50), True, "xent")
    X, y = synthetic_problem(20, 20, 10, seed=0)
    before = {k: v.copy() for k, v in {**net.parameters, **net.running_stats}.items()}
    check_gradients(net, X, y, entries=20)
    after = {**net.parameters, **net.running_stats}
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.slow
@pytest.mark.parametrize("hidden, bn, loss", ACCEPTANCE_NETS)
def test_centred_differences_agree_to_1e6_on_20_real_images(hidden, bn, loss, cifar10_jpeg):
    X, y = problem_from_images(cifar10_jpeg.train_images, cifar10_jpeg.train_labels, 20, 100)
    net = _net(hidden, bn, loss, features=100)
    for r in check_gradients(net, X, y):
        assert r.passed and r.max_rel_error < 1e-6, r


def _smoothed_net(hidden, bn, label_smoothing, features=20, classes=10, samples=20, seed=1):
    spec = NetworkSpec(input_size=features, n_classes=classes, hidden=hidden, batch_norm=bn,
                       loss="xent", lam=0.005, label_smoothing=label_smoothing,
                       dtype="float64")
    return Network(spec, seed=seed, max_batch=samples)


@pytest.mark.parametrize("hidden, bn", [((), False), ((50,), False), ((50, 50), True)],
                         ids=["one-layer", "two-layer", "three-layer-bn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_label_smoothed_xent_gradients_agree_to_1e6(hidden, bn, seed):
    net = _smoothed_net(hidden, bn, 0.1, seed=seed)
    X, y = synthetic_problem(20, 20, 10, seed=seed)
    results = check_gradients(net, X, y)
    for r in results:
        assert r.passed, r
        assert r.max_rel_error < 1e-6
        assert r.checked > 0.9 * np.prod(r.shape)


def test_unsmoothed_gradients_fail_the_check_of_a_smoothed_net():
    """The check sees the smoothing: the gradients of the same net without it are wrong."""
    X, y = synthetic_problem(20, 20, 10, seed=0)
    plain = _smoothed_net((50,), False, 0.0)
    plain.loss_and_gradients(X, y)
    analytic = {k: g.copy() for k, g in plain.gradients.items()}
    smoothed = _smoothed_net((50,), False, 0.1)
    results = check_gradients(smoothed, X, y, analytic=analytic)
    assert not any(r.passed for r in results)


def test_a_tensor_whose_entries_are_all_below_resolution_fails_as_measuring_nothing():
    net = _net((8,), False, "xent", samples=5)
    X, y = synthetic_problem(5, 20, 10, seed=0)
    results = check_gradients(net, X, y, h=1e-15)
    assert all(r.checked == 0 and not r.passed and not r.measured for r in results)


def test_a_tensor_of_kinks_alone_measured_nothing():
    net = _net((4,), False, "xent", features=6, samples=2)
    X, y = synthetic_problem(2, 6, 10, seed=0)
    net.parameters["W1"][...] = 0  # every pre-activation sits on its ReLU's kink
    net.parameters["b1"][...] = 0
    results = {r.name: r for r in check_gradients(net, X, y, h=1e-5)}
    assert results["b1"].kinks == 4 and results["b1"].checked == 0
    assert not results["b1"].passed


@pytest.mark.parametrize("option, value", [("h", 0.0), ("h", 1e-300), ("h", float("nan")),
                                           ("h", float("inf")), ("eps", float("nan")),
                                           ("eps", 1.0), ("tol", float("inf")),
                                           ("tol", float("nan")), ("tol", 1.0),
                                           ("entries", 0)])
def test_options_beyond_their_limits_are_setting_errors_naming_them(option, value):
    net = _net((4,), False, "xent", features=6, samples=4)
    X, y = synthetic_problem(4, 6, 10)
    with pytest.raises(SettingError) as err:
        check_gradients(net, X, y, **{option: value})
    assert err.value.setting == option


def test_batch_norm_needs_two_samples():
    net = _net((4,), True, "xent", features=6, samples=1)
    X, y = synthetic_problem(1, 6, 10)
    with pytest.raises(SettingError) as err:
        check_gradients(net, X, y)
    assert err.value.setting == "samples"


@pytest.mark.parametrize("sizes, culprit", [((2_000_000_000, 5, 10), "samples"),
                                             ((5, 5, 10**9), "classes"),
                                             ((5, 10**9, 10), "features")])
def test_the_memory_check_names_the_size_that_is_too_large(sizes, culprit):
    samples, features, classes = sizes
    spec = NetworkSpec(input_size=features, n_classes=classes, hidden=(4,), dtype="float64")
    with pytest.raises(SettingError) as err:
        check_size(spec, samples)
    assert err.value.setting == culprit
