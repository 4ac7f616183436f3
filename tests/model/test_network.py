"""network.py: the compiled network against the NumPy reference, its argument checks, and the
properties of its training step (deterministic on any thread count, allocation-free, cached)."""
import json
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

from cifar_engine.data.preprocessing import Standardise
from cifar_engine.errors import DataError, SettingError
from cifar_engine.kernels.batch import Augment
from cifar_engine.model.network import Network, NetworkSpec
from reference import ReferenceMLP, centred_difference, softmax

D, K = 24, 5  # input features, classes
N_ROWS = 13  # rows per batch
RTOL = 1e-10
SMOOTHED_NETS = [  # label smoothing: the cross-entropy against smoothed targets
    pytest.param((dict(hidden=(15,), label_smoothing=0.1), dict(momentum=0.9)),
                 id="two-layer-eps0.1-momentum"),
    pytest.param((dict(hidden=(20, 15), batch_norm=True, label_smoothing=0.5),
                  dict(momentum=0.8, nesterov=True)), id="bn-eps0.5-nesterov"),
]
NETS = [  # (spec options, network options)
    pytest.param((dict(hidden=(15,)), dict()), id="two-layer-xent-sgd"),
    pytest.param((dict(hidden=(15,)), dict(momentum=0.9)), id="two-layer-xent-momentum"),
    pytest.param((dict(hidden=(15,), loss="svm"), dict(momentum=0.9, nesterov=True)),
                 id="two-layer-svm-nesterov"),
    pytest.param((dict(hidden=(20, 15), batch_norm=True), dict(momentum=0.9)), id="bn-xent"),
    pytest.param((dict(hidden=(20, 15), batch_norm=True, loss="svm"),
                  dict(momentum=0.8, nesterov=True)), id="bn-svm"),
    *SMOOTHED_NETS,
]


def make_net(spec_options, net_options, max_batch=16, seed=3):
    """A float64 net whose biases, gamma, beta and running stats are moved off their
    initial 0 / 1, so that every tensor takes part from the first step."""
    spec = NetworkSpec(input_size=D, n_classes=K, lam=0.01, dtype="float64", **spec_options)
    net = Network(spec, seed=seed, max_batch=max_batch, **net_options)
    rng = np.random.default_rng(seed)
    for name, p in net.parameters.items():
        if not name.startswith("W"):
            p += 0.3 * rng.standard_normal(p.shape)
    for name, r in net.running_stats.items():
        var = name.startswith("var")
        r[...] = rng.uniform(0.5, 2, r.shape) if var else rng.normal(size=r.shape)
    return net


@pytest.fixture(params=NETS)
def net(request):
    return make_net(*request.param)


def batch(seed, n=N_ROWS):
    rng = np.random.default_rng(100 + seed)
    return rng.standard_normal((n, D)), rng.integers(0, K, n)


def assert_tensors_close(actual, expected, what):
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        floor = RTOL * np.abs(value).max()
        np.testing.assert_allclose(actual[name], value, rtol=RTOL, atol=floor,
                                   err_msg=f"{what} {name}")


# -- the network against the NumPy reference ------------------------------------------------


def test_train_steps_match_the_reference(net):
    ref = ReferenceMLP.of(net)
    for step in range(5):
        X, y = batch(step)
        loss = net.train_step(X, y, eta=0.05, step_number=step)
        assert loss == pytest.approx(ref.train_step(X, y, eta=0.05), rel=RTOL)
        assert_tensors_close(net.parameters, ref.params, f"step {step}:")
        assert_tensors_close(net.running_stats, ref.running, f"step {step}:")


def test_loss_and_gradients_match_the_reference(net):
    X, y = batch(0)
    expected_loss, expected = ReferenceMLP.of(net).loss_and_gradients(X, y)
    assert net.loss_and_gradients(X, y) == pytest.approx(expected_loss, rel=RTOL)
    assert_tensors_close(net.gradients, expected, "gradient of")


def test_forward_in_inference_mode_matches_the_reference(net):
    X, _ = batch(0)
    scores, _ = ReferenceMLP.of(net).forward(X, train=False)
    np.testing.assert_allclose(net.forward(X), scores, rtol=RTOL, atol=RTOL * np.abs(scores).max())


@pytest.fixture
def images():
    """37 uint8 images (more than two evaluation chunks of 16), labels and standardisation."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (37, D), dtype=np.uint8)
    return pixels, rng.integers(0, K, 37), pixels.mean(axis=0), pixels.std(axis=0) + 1


@pytest.mark.parametrize("index", [None, np.arange(36, 6, -1)], ids=["all", "index"])
def test_evaluate_matches_reference_inference(net, images, index):
    pixels, labels, mean, std = images
    net.set_preprocessing(Standardise(mean, std))
    rows = np.arange(len(pixels)) if index is None else index
    expected = ReferenceMLP.of(net).evaluate((pixels[rows] - mean) / std, labels[rows])
    result = net.evaluate(pixels, labels, index)
    assert result.keys() == expected.keys()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=RTOL), key


def test_predict_proba_is_the_softmax_of_the_reference_scores(net, images):
    pixels, _, mean, std = images
    net.set_preprocessing(Standardise(mean, std))
    P = net.predict_proba(pixels)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=RTOL)
    scores, _ = ReferenceMLP.of(net).forward((pixels - mean) / std, train=False)
    np.testing.assert_allclose(P, softmax(scores), rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
def test_dropout_gradients_match_centred_differences(batch_norm):
    """The reference has no dropout; with the step number fixed, the masks are fixed too."""
    spec = NetworkSpec(input_size=6, n_classes=3, hidden=(5, 4), batch_norm=batch_norm,
                       dropout=0.4, lam=0.01, dtype="float64")
    net = Network(spec, seed=1, max_batch=8)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    net.loss_and_gradients(X, y, step_number=7)
    assert np.any(net.layer_outputs(8)[1] == 0)  # some units are dropped
    for name, p in net.parameters.items():
        fd = centred_difference(lambda: net.objective(X, y, train=True, step_number=7)[0], p)
        np.testing.assert_allclose(net.gradients[name], fd, rtol=1e-6, atol=1e-8, err_msg=name)


# -- argument checks -------------------------------------------------------------------------


def _bad_pixels(n=4, width=D, dtype=np.uint8):
    return np.zeros((n, width), dtype)


BAD_CALLS = [
    pytest.param(lambda net: net.forward(np.zeros((2, D + 1))), "X", id="forward-width"),
    pytest.param(lambda net: net.forward(np.zeros((2, D), np.int64)), "X", id="forward-int"),
    pytest.param(lambda net: net.forward(np.zeros(D)), "X", id="forward-1d"),
    pytest.param(lambda net: net.forward(np.zeros((17, D))), "X", id="forward-too-many-rows"),
    pytest.param(lambda net: net.train_step(np.zeros((3, D + 1)), np.zeros(3, int), 0.1), "X",
                 id="train-width"),
    pytest.param(lambda net: net.train_step(np.zeros((3, D)), np.zeros(4, int), 0.1), "y",
                 id="train-labels-length"),
    pytest.param(lambda net: net.train_step(np.zeros((3, D)), np.zeros(3), 0.1), "y",
                 id="train-labels-float"),
    pytest.param(lambda net: net.train_step(np.zeros((3, D)), np.full(3, K), 0.1), "y",
                 id="train-labels-range"),
    pytest.param(lambda net: net.evaluate(_bad_pixels(dtype=np.float64), np.zeros(4, int)),
                 "images", id="evaluate-float-images"),
    pytest.param(lambda net: net.evaluate(_bad_pixels(width=D - 1), np.zeros(4, int)),
                 "images", id="evaluate-width"),
    pytest.param(lambda net: net.evaluate(_bad_pixels(), np.zeros(4)), "labels",
                 id="evaluate-labels-float"),
    pytest.param(lambda net: net.evaluate(_bad_pixels(), np.zeros(4, int), [0, 4]), "index",
                 id="evaluate-index-range"),
    pytest.param(lambda net: net.set_preprocessing(Standardise(np.zeros(D + 1), np.ones(D + 1))),
                 "preprocessing", id="preprocessing-features"),
    pytest.param(lambda net: net.set_preprocessing((np.zeros(D), np.ones(D))), "preprocessing",
                 id="preprocessing-not-fitted"),
    pytest.param(lambda net: net.set_preprocessing(Standardise(np.zeros(D), np.ones((D, 1)))),
                 "std", id="standardisation-std-shape"),
    pytest.param(lambda net: net.set_preprocessing(Standardise(np.zeros(D), np.zeros(D))),
                 "std", id="standardisation-std-zero"),
]


@pytest.mark.parametrize("call, argument", BAD_CALLS)
def test_bad_arguments_raise_value_error_naming_the_argument(call, argument):
    net = make_net(dict(hidden=(15,)), dict())
    with pytest.raises(ValueError, match=rf"^{argument}\b"):
        call(net)


@pytest.mark.parametrize("options, option", [
    (dict(hidden=(20, 0)), "hidden"),
    (dict(dropout=1.0), "dropout"),
    (dict(lam=-0.1), "lam"),
    (dict(init="uniform"), "init"),
    (dict(loss="hinge"), "loss"),
    (dict(dtype="float16"), "dtype"),
])
def test_spec_validation_names_the_setting(options, option):
    with pytest.raises(ValueError, match=rf"^{option}\b"):
        NetworkSpec(input_size=D, n_classes=K, **options)


# -- properties of the training step ----------------------------------------------------------

TRAIN_IMAGE_SHAPE = (3, 4, 4)


def small_run(seed=0, batch_size=8):
    """A float32 BN net with dropout and every augmentation on a random uint8 data set:
    (net, run) where run(n_steps) trains n_steps more through `Network.run_steps`."""
    spec = NetworkSpec(input_size=int(np.prod(TRAIN_IMAGE_SHAPE)), n_classes=K, hidden=(20, 15),
                       batch_norm=True, dropout=0.2, lam=0.001)
    net = Network(spec, seed=seed, max_batch=batch_size, momentum=0.9, nesterov=True)
    rng = np.random.default_rng(11)
    pixels = rng.integers(0, 256, (64, spec.input_size), dtype=np.uint8)
    net.set_preprocessing(Standardise(pixels.mean(axis=0), pixels.std(axis=0) + 1),
                          image_shape=TRAIN_IMAGE_SHAPE)
    source = net.batch_source(pixels, rng.integers(0, K, len(pixels)))
    order = np.resize(rng.permutation(len(pixels)), 101 * batch_size)
    augment = Augment(True, 1, 0.1, 0.5)
    losses, etas = np.zeros(101), np.full(101, 0.01)
    done = [0]

    def run(n_steps):
        assert net.run_steps(source, order, 0, batch_size, done[0], etas[:n_steps],
                             losses[:n_steps], augment) == n_steps
        done[0] += n_steps
    return net, run


def trained_slab(seed, n_steps):
    """The parameter slab of `small_run(seed)` after n_steps."""
    net, run = small_run(seed)
    run(n_steps)
    return np.concatenate([p.ravel() for p in net.parameters.values()])


def run_python(code, *args, **env):
    """Run code (args in sys.argv[1:]) in a fresh interpreter, with the environment plus env,
    able to import this folder's modules; returns its stdout."""
    here = Path(__file__).parent
    code = f"import sys; sys.path[:0] = [{str(here)!r}, {str(here.parent)!r}]\n" + code
    done = subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stderr}"
    return done.stdout


def test_same_seed_gives_identical_parameters_and_another_seed_different():
    first, again, other = trained_slab(0, 5), trained_slab(0, 5), trained_slab(1, 5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_training_is_bit_identical_on_one_and_two_threads(tmp_path):
    slabs = []
    for threads in ("1", "2"):
        path = tmp_path / f"threads-{threads}.npy"
        # get_num_threads also starts the threading layer before the first cached call, which
        # keeps this test clear of the bug that ..._compiled_on_cached_kernels_... shows.
        out = run_python(f"import numba, numpy as np; from test_network import trained_slab\n"
                         f"print(numba.get_num_threads())\n"
                         f"np.save({str(path)!r}, trained_slab(seed=0, n_steps=20))",
                         NUMBA_NUM_THREADS=threads)
        assert out.split() == [threads]
        slabs.append(np.load(path))
    np.testing.assert_array_equal(slabs[0], slabs[1])


def misplaced_zeros(shift):
    """np.zeros whose arrays start `shift` elements past a 64-byte line (a context manager
    over the whole process's numpy.zeros)."""
    import contextlib

    real = np.zeros

    def zeros(shape, dtype=float, **kwargs):
        dtype, n = np.dtype(dtype), int(np.prod(shape))
        raw = real(n + 128 // dtype.itemsize, dtype, **kwargs)
        start = (-raw.ctypes.data % 64) // dtype.itemsize + shift
        return raw[start:start + n].reshape(shape)

    @contextlib.contextmanager
    def patched():
        np.zeros = zeros
        try:
            yield
        finally:
            np.zeros = real
    return patched()


def placed_slab(shift, n_steps=6):
    """The parameter slab of a net whose buffers all start `shift` elements off a 64-byte
    line, after n_steps of batch 256: products big enough to be cut into several blocks."""
    spec = NetworkSpec(input_size=3 * 16 * 16, n_classes=K, hidden=(300, 40), batch_norm=True,
                       dropout=0.1, lam=0.001)
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (512, spec.input_size), dtype=np.uint8)
    with misplaced_zeros(shift):
        net = Network(spec, seed=3, max_batch=256, momentum=0.9)
        net.set_preprocessing(Standardise(pixels.mean(axis=0), pixels.std(axis=0) + 1),
                              image_shape=(3, 16, 16))
        source = net.batch_source(pixels, rng.integers(0, K, len(pixels)))
    assert net._buf.params.ctypes.data % 64 == shift * 4
    losses = np.zeros(n_steps)
    net.run_steps(source, rng.permutation(512).repeat(3), 0, 256, 0, np.full(n_steps, 0.05),
                  losses, Augment(True, 1, 0.0, 0.0))
    return np.concatenate([losses.astype(np.float32), *(p.ravel() for p in
                                                        net.parameters.values())])


def test_one_net_trains_to_the_same_bits_in_processes_that_place_its_buffers_apart(tmp_path):
    slabs = []
    for shift, threads in ((0, "1"), (3, "2"), (9, "2")):
        path = tmp_path / f"shift-{shift}.npy"
        run_python(f"import numpy as np; from test_network import placed_slab\n"
                   f"np.save({str(path)!r}, placed_slab({shift}))",
                   **{f"{pool}_NUM_THREADS": threads for pool in ("NUMBA", "OPENBLAS", "MKL")})
        slabs.append(np.load(path))
    for other in slabs[1:]:
        np.testing.assert_array_equal(slabs[0], other)


@pytest.fixture
def nrt_stats():
    """Numba's allocation counters, on for the test: stats() -> (allocs, frees) so far."""
    was_on = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    yield lambda: (rtsys.get_allocation_stats().alloc, rtsys.get_allocation_stats().free)
    if not was_on:
        _nrt_python.memsys_disable_stats()


def test_training_steps_make_no_numba_allocation(nrt_stats):
    _, run = small_run()
    run(1)  # compile or load from the cache

    def allocations(n_steps):
        allocs, frees = nrt_stats()
        run(n_steps)
        after_allocs, after_frees = nrt_stats()
        return after_allocs - allocs, after_frees - frees

    one, hundred = allocations(1), allocations(100)
    # A call unboxes its array arguments (one NRT meminfo each, freed on return); the steps
    # inside the call allocate nothing more, so 100 steps cost what 1 step costs.
    assert hundred == one
    assert one[0] == one[1]


def test_training_steps_do_not_grow_numpy_memory():
    _, run = small_run()

    def numpy_bytes():
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)])
        return sum(stat.size for stat in snapshot.statistics("filename"))

    tracemalloc.start()
    try:
        run(1)
        before = numpy_bytes()
        run(100)
        after = numpy_bytes()
        control = np.ones(1000)  # the filter does see a NumPy allocation
        assert numpy_bytes() - after >= control.nbytes
    finally:
        tracemalloc.stop()
    assert after == before


CACHE_PROBE = textwrap.dedent("""
    import json
    import numpy as np
    from numba.core import event
    from cifar_engine.kernels import step
    from cifar_engine.model.network import Network, NetworkSpec

    compiled = []

    class Recorder(event.Listener):
        def on_start(self, ev):
            compiled.append(str(ev.data["dispatcher"].py_func.__qualname__))

        def on_end(self, ev):
            pass

    event.register("numba:compile", Recorder())
    net = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4,), dtype="float64"),
                  max_batch=5)
    net.train_step(np.zeros((5, 6)), np.zeros(5, np.int64), 0.1)
    print(json.dumps({"compiled": compiled,
                      "train_step_hits": sum(step.train_step.stats.cache_hits.values())}))
""")


def test_a_second_process_loads_the_training_step_from_the_disk_cache():
    run_python(CACHE_PROBE)  # fills the cache if this is its first use
    second = json.loads(run_python(CACHE_PROBE))
    assert second["compiled"] == []
    assert second["train_step_hits"] == 1


SCORING_PROBE = textwrap.dedent("""
    import sys
    import numpy as np
    from cifar_engine.model.network import Network, NetworkSpec

    net = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4,), dtype="float64"),
                  max_batch=5)
    pixels = np.arange(30, dtype=np.uint8).reshape(5, 6)
    if sys.argv[1] == "evaluate":
        print(net.evaluate(pixels, np.zeros(5, np.int64)))
    else:
        print(net.predict_proba(pixels))
""")


@pytest.mark.slow
def test_a_step_function_compiled_on_cached_kernels_runs_from_the_cache(tmp_path):
    """Three fresh processes on an empty cache: the first compiles and caches the kernels
    (through evaluate), the second compiles step.predict_scores on those cached kernels,
    the third loads step.predict_scores from the cache and runs it first thing."""
    for stage in ("evaluate", "predict", "predict"):
        run_python(SCORING_PROBE, stage, NUMBA_CACHE_DIR=str(tmp_path))


@pytest.mark.parametrize("change, message", [
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(step0=-1), "step0 must be >= 0"),
    (dict(etas=np.full(3, -0.1)), "etas must be a 1-d float64 array"),
    (dict(etas=np.full(3, np.nan)), "etas must be a 1-d float64 array"),
    (dict(etas=np.full(3, 0.1, np.float32)), "etas must be a 1-d float64 array"),
    (dict(order=np.arange(10)), "order must be a 1-d int64 array holding rows"),
    (dict(first_row=60), "order must be a 1-d int64 array holding rows"),
    (dict(order=np.full(64, 64, np.int64)), "order must hold rows in"),
    (dict(order=np.arange(64.0)), "order must be a 1-d int64 array"),
    (dict(losses_out=np.zeros(2)), "losses_out must be a 1-d float array of at least 3"),
    (dict(source="images"), "source must be this network's source"),
])
def test_run_steps_checks_its_arguments(change, message):
    net = Network(NetworkSpec(input_size=D, n_classes=K, hidden=(6,)), max_batch=8)
    pixels = np.random.default_rng(0).integers(0, 256, (64, D), dtype=np.uint8)
    args = dict(source=net.batch_source(pixels, np.arange(64) % K),
                order=np.arange(64, dtype=np.int64), first_row=0, batch_size=8, step0=0,
                etas=np.full(3, 0.1), losses_out=np.zeros(3, np.float32))
    before = net.parameters["W1"].copy()
    with pytest.raises(ValueError, match=message):
        net.run_steps(**{**args, **change})
    assert np.array_equal(net.parameters["W1"], before)
    assert net.run_steps(**args) == 3 and not np.array_equal(net.parameters["W1"], before)


# -- label smoothing (SMOOTHED_NETS also run every reference test above) -------------------


@pytest.fixture(params=SMOOTHED_NETS)
def smoothed_net(request):
    return make_net(*request.param)


def test_label_smoothed_loss_and_gradients_match_the_reference(smoothed_net):
    net = smoothed_net
    X, y = batch(0)
    expected_loss, expected = ReferenceMLP.of(net).loss_and_gradients(X, y)
    # the smoothing is felt: without it the reference's loss is another number
    plain = NetworkSpec.from_dict({**net.spec.to_dict(), "label_smoothing": 0.0})
    plain_loss, _ = ReferenceMLP(plain, net.parameters, net.running_stats).loss_and_gradients(X, y)
    assert plain_loss != pytest.approx(expected_loss, rel=1e-3)
    assert net.loss_and_gradients(X, y) == pytest.approx(expected_loss, rel=RTOL)
    assert_tensors_close(net.gradients, expected, "gradient of")


def test_label_smoothed_evaluate_reports_the_smoothed_loss(smoothed_net, images):
    net = smoothed_net
    pixels, labels, mean, std = images
    net.set_preprocessing(Standardise(mean, std))
    expected = ReferenceMLP.of(net).evaluate((pixels - mean) / std, labels)
    result = net.evaluate(pixels, labels)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=RTOL), key


def test_the_svm_loss_ignores_label_smoothing_in_the_step_config():
    """NetworkSpec refuses smoothing with the hinge; a StepConfig carrying it anyway (as
    no caller builds one) leaves the hinge's loss and gradient as they are."""
    from cifar_engine.kernels import step

    net = make_net(dict(hidden=(15,), loss="svm"), dict())
    X, y = batch(0)
    cfg = net._config()
    results = []
    for smoothing in (0.0, 0.3):
        smoothed = cfg._replace(label_smoothing=smoothing)
        scores = step.forward(net._buf, X, net._buf.params[:0], smoothed, True, 0)
        loss = step.loss_gradient(net._buf, scores, y, smoothed)
        results.append((loss, net._buf.grad_a[:N_ROWS * K].copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_label_smoothing_reaches_the_step_config():
    net = make_net(dict(hidden=(15,), label_smoothing=0.25), dict())
    assert net._config().label_smoothing == 0.25
    assert make_net(dict(hidden=(15,)), dict())._config().label_smoothing == 0.0


@pytest.mark.parametrize("options", [dict(loss="svm", label_smoothing=0.1),
                                     dict(loss="svm", label_smoothing=0.5)])
def test_label_smoothing_with_the_svm_loss_is_a_setting_error_naming_it(options):
    with pytest.raises(SettingError, match=r"^label_smoothing must be 0 with loss 'svm'") as err:
        NetworkSpec(input_size=D, n_classes=K, **options)
    assert err.value.setting == "label_smoothing"
    assert err.value.render(lambda name: f"--{name.replace('_', '-')}").startswith(
        "--label-smoothing must be 0 with --loss 'svm'")


@pytest.mark.parametrize("options, smoothing", [
    (dict(loss="svm"), 0.0),
    (dict(loss="svm", label_smoothing=0.0), 0.0),
    (dict(label_smoothing=0.1), 0.1),
    (dict(), 0.0),
])
def test_label_smoothing_is_accepted_with_xent_and_zero_with_svm(options, smoothing):
    assert NetworkSpec(input_size=D, n_classes=K, **options).label_smoothing == smoothing


def test_test_time_flips_average_each_image_with_its_mirror():
    shape = (3, 4, 5)
    spec = NetworkSpec(input_size=60, n_classes=K, hidden=(7,))
    net = Network(spec, seed=1, max_batch=8)
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (11, 60), dtype=np.uint8)
    labels = rng.integers(0, K, 11)
    net.set_preprocessing(Standardise(pixels.mean(axis=0), pixels.std(axis=0) + 1),
                          image_shape=shape)
    mirror = pixels.reshape(11, *shape)[:, :, :, ::-1].reshape(11, 60)  # NumPy's own flip
    expected = (net.predict_proba(mirror) + net.predict_proba(pixels)) / 2
    index = np.array([3, 0, 7])
    np.testing.assert_allclose(net.predict_proba(pixels, index, tta="flip"), expected[index],
                               rtol=1e-6)
    assert np.array_equal(net.mirrored(net.mirrored(pixels)), pixels)
    result = net.evaluate_tta(pixels, labels)
    assert result["accuracy"] == np.mean(np.argmax(expected, axis=1) == labels)
    assert result["loss"] == pytest.approx(-np.mean(np.log(expected[np.arange(11), labels])),
                                           rel=1e-5)
    plain = net.evaluate_tta(pixels, labels, tta="none")
    assert plain["accuracy"] == net.evaluate(pixels, labels)["accuracy"]
    held = net.batch_source(pixels)  # a caller's own source: the same probabilities
    np.testing.assert_array_equal(net.predict_proba(pixels, index, "flip", source=held),
                                  net.predict_proba(pixels, index, "flip"))
    with pytest.raises(ValueError, match="tta must be one of"):
        net.predict_proba(pixels, tta="rotate")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", ["train_step", "loss_and_gradients", "objective", "forward"])
def test_non_finite_inputs_are_refused_before_the_kernels_and_leave_the_weights(bad, call):
    net = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4,)), max_batch=5)
    before = {k: v.copy() for k, v in net.parameters.items()}
    X = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    X[2, 3] = bad
    y = np.zeros(5, np.int64)
    args = {"train_step": (X, y, 0.1), "loss_and_gradients": (X, y), "objective": (X, y),
            "forward": (X,)}[call]
    with pytest.raises(DataError, match="X holds NaN or infinite values"):
        getattr(net, call)(*args)
    assert all(np.array_equal(before[k], v) for k, v in net.parameters.items())


def test_a_float_source_of_non_finite_rows_is_refused():
    net = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4,)), max_batch=5)
    X = np.ones((5, 6), np.float32)
    X[4, 0] = np.nan
    with pytest.raises(DataError, match="X holds NaN or infinite values"):
        net.float_source(X)


@pytest.mark.parametrize("bn", [False, True])
def test_predictions_refuse_a_hidden_pre_activation_that_can_overflow(bn):
    net = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4, 4), batch_norm=bn),
                  max_batch=5)
    images = np.full((5, 6), 255, np.uint8)
    net.predict_proba(images)  # the initial weights are far from overflowing
    net.parameters["W2"][1] = -np.finfo(np.float32).max / 4  # unit 1 of layer 2 reaches -inf
    with pytest.raises(DataError, match="the model's weights overflow float32: layer 2's "
                                        "outputs reach"):
        net.predict_proba(images)


def test_the_reach_of_every_layer_bounds_its_outputs():
    net = Network(NetworkSpec(input_size=6, n_classes=3, hidden=(4,), dtype="float64"),
                  max_batch=200)
    net.set_preprocessing(Standardise(np.full(6, 100.0), np.full(6, 30.0)))
    images = np.random.default_rng(0).choice(np.array([0, 255], np.uint8), (200, 6))
    reach = net.output_reach()
    scores = net.forward(net.preprocessing.transform(images))
    hidden = net.layer_outputs(200)[1]
    assert np.abs(hidden).max() <= reach[0] and np.abs(scores).max() <= reach[1]
    assert np.abs(scores).max() > reach[1] / 100  # and not by far, for these weights


# -- the state pair ----------------------------------------------------------------------------

def test_the_state_pair_carries_every_group_into_another_network(net):
    X, y = batch(0)
    net.train_step(X, y, eta=0.05)  # velocity off zero
    state = net.state_dict()
    other = Network(net.spec, seed=11, max_batch=16, momentum=net.momentum)
    other.load_state(state)
    for group in ("parameters", "velocity", "running_stats"):
        mine, theirs = getattr(net, group), getattr(other, group)
        assert mine.keys() == theirs.keys() == state[group].keys()
        assert all(np.array_equal(mine[k], theirs[k]) for k in mine)


def test_a_state_is_a_copy(net):
    state = net.state_dict(["parameters"])
    state["parameters"]["W1"][...] = 7.0
    assert not (net.parameters["W1"] == 7.0).any()


def test_a_state_of_some_groups_writes_only_those(net):
    before = net.state_dict()
    snapshot = net.state_dict(["running_stats"])
    for r in net.running_stats.values():
        r += 1.0
    net.load_state(snapshot)
    after = net.state_dict()
    for group in before:
        assert all(np.array_equal(before[group][k], after[group][k]) for k in before[group])


@pytest.mark.parametrize("state, message", [
    ({"weights": {}}, "no state group 'weights'"),
    ({"parameters": {"W9": np.zeros(3)}},
     "parameters W9: shape (3,) where this network holds none"),
    ({"parameters": {"b1": np.zeros(1), "W1": np.zeros((1, 1))}}, "parameters b1: shape (1,)"),
])
def test_a_state_that_does_not_fit_is_refused_and_writes_nothing(net, state, message):
    before = net.state_dict()
    with pytest.raises(ValueError, match=re.escape(message)):
        net.load_state(state)
    after = net.state_dict()
    assert all(np.array_equal(before[g][k], after[g][k]) for g in before for k in before[g])


def test_a_state_without_copies_is_the_networks_own_slabs(net):
    views = net.state_dict(["parameters"], copy=False)["parameters"]
    views["W1"][...] = 7.0
    assert (net.parameters["W1"] == 7.0).all()


def test_a_network_built_from_a_state_holds_it_and_one_without_parameters_draws_them():
    spec = NetworkSpec(input_size=12, n_classes=3, hidden=(7,), batch_norm=True)
    trained = Network(spec, seed=4, max_batch=5, momentum=0.9)
    state = {group: {name: value + 0.5 for name, value in arrays.items()}
             for group, arrays in trained.state_dict().items()}
    restored = Network(spec, seed=99, max_batch=5, momentum=0.9, state=state)
    for group, arrays in state.items():
        for name, value in arrays.items():
            np.testing.assert_array_equal(restored.state_dict([group])[group][name], value)
    running_only = Network(spec, seed=4, max_batch=5, state={"running_stats":
                                                               state["running_stats"]})
    fresh = Network(spec, seed=4, max_batch=5)
    for name, value in fresh.parameters.items():
        np.testing.assert_array_equal(running_only.parameters[name], value)
