"""estimator.py: MLPClassifier passes scikit-learn's estimator checks, works inside its
model-selection tools, and takes every kind of X and y; fits are reproducible and pickles
predict the same in a fresh process."""
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from cifar_engine import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Every check passes; a check that could not would be listed here with its reason.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [MLPClassifier(max_iter=20),
     MLPClassifier(max_iter=20, batch_norm=True, dropout=0.2),
     MLPClassifier(max_iter=20, zca=0.1)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated classes in 20 features, 400 training and 200 test rows."""
    X, y = make_blobs(600, n_features=20, centers=4, cluster_std=4.0, random_state=0)
    return X[:400], y[:400], X[400:], y[400:]


def small(**options):
    return MLPClassifier(**{"hidden_layer_sizes": (16,), "batch_size": 20, "max_iter": 10,
                            "random_state": 0, **options})


# -- scikit-learn's tools ---------------------------------------------------------------------


def test_pipeline(blobs):
    X, y, X_test, y_test = blobs
    pipe = make_pipeline(FunctionTransformer(np.tanh), small()).fit(X, y)
    assert pipe.score(X_test, y_test) > 0.9


def test_grid_search_in_two_processes(blobs):
    X, y, _, _ = blobs
    search = GridSearchCV(small(n_threads=1), {"alpha": [1e-4, 1.0], "batch_norm": [False, True]},
                          cv=2, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.9
    assert set(search.best_params_) == {"alpha", "batch_norm"}


def test_cross_val_score(blobs):
    X, y, _, _ = blobs
    scores = cross_val_score(small(), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


# -- what fit learns and reports ----------------------------------------------------------------


def test_learns_and_reports_what_it_fitted(blobs):
    X, y, X_test, y_test = blobs
    clf = small(hidden_layer_sizes=(16, 8)).fit(X, y)
    assert clf.score(X_test, y_test) > 0.9
    assert clf.n_features_in_ == 20 and clf.n_layers_ == 4 and clf.n_iter_ == 10
    assert len(clf.loss_curve_) == 10 and clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.t_ == 10 * 400
    assert [c.shape for c in clf.coefs_] == [(20, 16), (16, 8), (8, 4)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (4,)]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    # coefs_ and intercepts_ are copies, and they are the network: standardise, then affine
    clf.coefs_[0][...] = 0
    h = (X_test - clf.preprocessing_.mean) / clf.preprocessing_.std
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0)
    scores = h @ clf.coefs_[-1] + clf.intercepts_[-1]
    np.testing.assert_allclose(scores, clf.decision_function(X_test), rtol=1e-4, atol=1e-4)


def test_probabilities_and_decision_function_agree(blobs):
    X, y, X_test, _ = blobs
    clf = small().fit(X, y)
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X_test), np.log(proba), atol=1e-12)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X_test)).all()
    assert clf.decision_function(X_test).shape == (200, 4)


def test_svm_loss_has_no_probabilities(blobs):
    X, y, X_test, y_test = blobs
    clf = small(loss="svm").fit(X, y)
    assert not hasattr(clf, "predict_proba") and not hasattr(clf, "predict_log_proba")
    assert clf.score(X_test, y_test) > 0.9


def test_alpha_is_scikit_learns_l2(blobs):
    """lam = alpha / (2 B): the loss curve's L2 term is 0.5 alpha ||W||^2 / B."""
    X, y, _, _ = blobs
    clf = small(alpha=0.5, max_iter=2).fit(X, y)
    assert clf.network_.spec.lam == pytest.approx(0.5 / (2 * 20))
    squares = sum(float((W.astype(np.float64) ** 2).sum()) for W in clf.coefs_)
    assert clf.network_.penalty() == pytest.approx(0.5 * 0.5 * squares / 20, rel=1e-6)


def test_early_stopping_keeps_the_best_epoch(blobs, capsys):
    X, y, _, _ = blobs
    clf = small(early_stopping=True, max_iter=30, n_iter_no_change=2, tol=0.01,
                learning_rate_init=0.05, verbose=True).fit(X, y)
    assert clf.n_iter_ < 30  # it stopped
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    printed = capsys.readouterr().out
    assert printed.count("Iteration") == clf.n_iter_ and "Validation score" in printed


def test_divergence_is_an_error_naming_the_learning_rate(blobs):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match="diverged; lower learning_rate_init"):
        small(learning_rate_init=1e30, max_iter=3).fit(X, y)


def test_cyclical_schedule(blobs):
    X, y, X_test, y_test = blobs
    clf = small(schedule="triangular", eta_min=1e-4, eta_max=0.1, n_s="2ep", max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a planned end is no warning
        clf.fit(X, y)
    assert clf.score(X_test, y_test) > 0.9


@pytest.mark.slow  # Numba compiles the float64 training and inference for it: ~50 s cold
def test_float64_network(blobs):
    X, y, X_test, y_test = blobs
    clf = small(dtype="float64").fit(X, y)
    assert clf.coefs_[0].dtype == np.float64 and clf.score(X_test, y_test) > 0.9


# -- continuing: warm_start and partial_fit -----------------------------------------------------


def test_warm_start_continues_and_refuses_a_new_architecture(blobs):
    X, y, _, _ = blobs
    clf = small(warm_start=True, max_iter=3).fit(X, y)
    before = clf.coefs_[0]
    clf.fit(X, y)
    assert len(clf.loss_curve_) == 6 and not np.array_equal(before, clf.coefs_[0])
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        clf.set_params(hidden_layer_sizes=(8,)).fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        clf.set_params(hidden_layer_sizes=(16,)).fit(X, y % 2)
    with pytest.raises(ValueError, match="zca is 0.1, but the network being continued"):
        clf.set_params(zca=0.1).fit(X, y)
    with pytest.raises(ValueError, match="pca is 4, but the network being continued"):
        clf.set_params(zca=0.0, pca=4).fit(X, y)


def test_partial_fit(blobs):
    X, y, X_test, y_test = blobs
    clf = small()
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:100], y[:100])
    for epoch in range(5):
        for start in range(0, 400, 100):
            clf.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(4))
    assert clf.score(X_test, y_test) > 0.9 and len(clf.loss_curve_) == 20
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:10], np.full(10, 7))
    with pytest.raises(ValueError, match="early_stopping"):
        clf.set_params(early_stopping=True).partial_fit(X, y)


def test_partial_fit_epochs_continue_the_run_as_fit_does(blobs):
    """Each partial_fit is the next epoch of the network's one run: its shuffle, dropout
    masks, schedule and velocity continue, so two calls train exactly as fit's two epochs."""
    X, y, _, _ = blobs
    options = dict(dropout=0.2, schedule="triangular", n_s=15, eta_min=1e-3, eta_max=0.1)
    whole = small(max_iter=2, **options).fit(X, y)
    parts = small(**options)
    for _ in range(2):
        parts.partial_fit(X, y, classes=np.arange(4))
    for p, q in zip(whole.coefs_ + whole.intercepts_, parts.coefs_ + parts.intercepts_):
        np.testing.assert_array_equal(p, q)
    assert whole.loss_curve_ == parts.loss_curve_ and whole.t_ == parts.t_ == 800


# -- reproducibility and pickling ---------------------------------------------------------------


def test_random_state_makes_fit_bit_reproducible(blobs):
    X, y, X_test, _ = blobs
    a = small(batch_norm=True, dropout=0.2).fit(X, y)
    b = small(batch_norm=True, dropout=0.2).fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))
    c = small(batch_norm=True, dropout=0.2, random_state=1).fit(X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_pickle_predicts_identically_in_a_fresh_process(blobs, tmp_path):
    X, y, X_test, _ = blobs
    labels = np.array(["cat", "dog", "emu", "fox"])[y]
    clf = small(batch_norm=True).fit(X, labels)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X_test)
    script = textwrap.dedent(f"""
        import pickle, sys
        import numpy as np
        clf = pickle.loads(open({str(tmp_path / "model.pkl")!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "proba.npy")!r}, clf.predict_proba(X))
        np.save({str(tmp_path / "labels.npy")!r}, clf.predict(X))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), clf.predict_proba(X_test))
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), clf.predict(X_test))
    # the pickle holds the network's state, not its scratch buffers (116 kB here)
    assert len(pickle.dumps(clf)) < 10_000


@pytest.mark.parametrize("params, kind", [(dict(zca=0.1), "zca"),
                                          (dict(zca=0.1, pca=8), "pca")])
def test_zca_or_pca_gives_what_the_network_sees_and_survives_pickling(pixels, params, kind):
    X, y = pixels
    clf = small(**params).fit(X, y)
    pre = clf.preprocessing_
    assert pre.kind == kind and pre.eps == 0.1 and clf.score(X, y) > 0.9
    assert clf.coefs_[0].shape[0] == params.get("pca", X.shape[1])
    h = pre.transform(X)  # the whitened (projected) rows: coefs_ act on them
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0)
    scores = h @ clf.coefs_[-1] + clf.intercepts_[-1]
    np.testing.assert_allclose(scores, clf.decision_function(X), rtol=1e-4, atol=1e-4)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.preprocessing_.kind == kind


# -- kinds of X and y ---------------------------------------------------------------------------


def test_string_labels(blobs):
    X, y, X_test, y_test = blobs
    names = np.array(["airplane", "bird", "cat", "deer"], dtype=object)
    clf = small().fit(X, names[y])
    assert clf.classes_.tolist() == names.tolist()
    assert clf.predict(X_test).dtype == object
    assert clf.score(X_test, names[y_test]) > 0.9


@pytest.fixture(scope="module")
def pixels():
    """uint8 'images': 4 classes of noisy bright patches in 48 features."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    X = rng.integers(0, 120, (400, 48))
    for k in range(4):
        X[y == k, 12 * k:12 * k + 12] += 120
    return X.astype(np.uint8), y


@pytest.mark.parametrize("kind", ["float32", "float64", "int64", "F-order", "uint8-F-order"])
def test_every_kind_of_x_trains_as_uint8_does(pixels, kind):
    """The same values in another dtype or layout give the same network bit for bit."""
    X, y = pixels
    other = {"float32": X.astype(np.float32), "float64": X.astype(np.float64),
             "int64": X.astype(np.int64), "F-order": np.asfortranarray(X.astype(np.float32)),
             "uint8-F-order": np.asfortranarray(X)}[kind]
    a, b = small().fit(X, y), small().fit(other, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(other))
    assert a.score(X, y) > 0.9


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_read_only_memmap(pixels, tmp_path, dtype):
    X, y = pixels
    path = tmp_path / "X.npy"
    np.save(path, X.astype(dtype))
    X_map = np.load(path, mmap_mode="r")
    assert not X_map.flags.writeable
    clf = small().fit(X_map, y)
    np.testing.assert_array_equal(clf.predict(X_map), small().fit(X, y).predict(X))


def test_large_x_is_predicted_in_chunks(pixels):
    """Rows beyond the network's n_max, and a converted X beyond CONVERT_ROWS."""
    from cifar_engine.estimator import CONVERT_ROWS
    X, y = pixels
    clf = small().fit(X, y)
    big = np.tile(X, (CONVERT_ROWS // len(X) + 2, 1))
    expected = np.tile(clf.decision_function(X), (CONVERT_ROWS // len(X) + 2, 1))
    np.testing.assert_array_equal(clf.decision_function(big), expected)
    np.testing.assert_array_equal(clf.decision_function(big.astype(np.float64)), expected)


# -- the engine's recipe: images, flips and shifts, one-cycle, test-time flips -----------------

IMAGE = (3, 8, 8)


@pytest.fixture(scope="module")
def images():
    """A Dataset of uint8 3x8x8 'images' on noise: class k's bright 2x2 patch lies at the
    left end of rows 2k and 2k + 1 (mirroring moves it, and keeps its class); 320 training
    images in 5 batches (split all's order) and 64 test images."""
    from cifar_engine.data import Dataset

    rng = np.random.default_rng(1)

    def draw(n):
        y = rng.integers(0, 4, n)
        X = rng.integers(0, 140, (n, *IMAGE))
        for k in range(4):
            X[y == k, :, 2 * k:2 * k + 2, :2] += 110
        return X.reshape(n, -1).astype(np.uint8), y.astype(np.int64)

    (X, y), (X_test, y_test) = draw(320), draw(64)
    return Dataset(X, y, X_test, y_test, ("a", "b", "c", "d"), IMAGE, "synthetic",
                   np.arange(320) * 5 // 320)


# Preset settings that say what data to train on and when to evaluate: the caller's X
DATA_SIDE = ("split", "n_val", "eval_every")
ESTIMATOR_NAMES = {"hidden": "hidden_layer_sizes", "eta": "learning_rate_init",
                   "nesterov": "nesterovs_momentum", "epochs": "max_iter", "seed": "random_state"}


def estimator_params(settings):
    """MLPClassifier's parameters for a run of the engine's settings: lam as alpha
    (lam = alpha / (2 B)), the engine's defaults where scikit-learn's differ, and no stop
    by the training loss. A setting the estimator does not take makes it a TypeError."""
    params = {ESTIMATOR_NAMES.get(name, name): value for name, value in settings.items()
              if name not in (*DATA_SIDE, "lam")}
    return {"nesterovs_momentum": False, "random_state": 0, **params,
            "alpha": 2 * settings["batch_size"] * settings["lam"],
            "n_iter_no_change": settings["epochs"], "image_shape": IMAGE}


def test_the_best_10min_recipe_trains_as_the_engines_own_run(images):
    """best-10min's every setting (narrower, shorter, on small images) through the
    estimator gives the engine's own run bit for bit: PCA, BN, dropout, flips and shifts,
    label smoothing, one-cycle; and its test-time flips predict as the run evaluates."""
    from cifar_engine import TrainConfig, fit
    from cifar_engine.data import make_split
    from cifar_engine.presets import PRESETS

    settings = {**PRESETS["best-10min"].settings, "hidden": (32, 16), "batch_size": 64,
                "epochs": 3, "n_val": 64, "translate": 1, "pca": 24}
    result = fit(TrainConfig(**settings), images)
    train = make_split(images, "all", 64).train
    clf = MLPClassifier(**estimator_params(settings)).fit(train.images[train.index],
                                                          train.labels[train.index])

    ours, theirs = clf.network_.state_dict(), result.net.state_dict()
    assert ours.keys() == theirs.keys()
    for group in ours:
        for name in ours[group]:
            np.testing.assert_array_equal(ours[group][name], theirs[group][name],
                                          err_msg=f"{group} {name}")
    X_test, y_test = images.test_images, images.test_labels
    predicted = clf.predict(X_test)
    assert np.array_equal(predicted, result.net.predict(X_test, tta="flip"))
    assert np.mean(predicted == y_test) == result.test_acc  # the run's, with tta
    # the engine's float32 probabilities, renormalised in float64
    np.testing.assert_allclose(clf.predict_proba(X_test),
                               result.net.predict_proba(X_test, tta="flip"), rtol=1e-6,
                               atol=1e-7)


def mirror(X):
    return X.reshape(-1, *IMAGE)[..., ::-1].reshape(len(X), -1)


def reference_proba(clf, X):
    """softmax of the network's scores, in float64 from coefs_ and intercepts_."""
    h = clf.preprocessing_.transform(X)
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0)
    scores = h @ clf.coefs_[-1] + clf.intercepts_[-1]
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind", [np.uint8, np.float64])
def test_test_time_flips_average_the_probabilities_of_each_image_and_its_mirror(images, kind):
    clf = small(flip=True, image_shape=IMAGE).fit(images.train_images, images.train_labels)
    X, y = images.test_images.astype(kind), images.test_labels
    plain = clf.predict_proba(X)
    clf.set_params(tta="flip")
    proba = clf.predict_proba(X)
    expected = (reference_proba(clf, X) + reference_proba(clf, mirror(X))) / 2
    # the network computes in float32, the reference in float64
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(proba, plain, atol=1e-3)  # the mirrors count
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), atol=1e-12)
    # the log of the engine's float32 probabilities, whose sum is 1 within float32's eps
    np.testing.assert_allclose(clf.decision_function(X), np.log(proba), atol=1e-6)
    assert np.array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)


def test_flips_and_shifts_are_reproducible_and_change_the_fit(images):
    X, y = images.train_images, images.train_labels
    a, b = (small(flip=True, translate=2, image_shape=IMAGE).fit(X, y) for _ in range(2))
    plain = small(image_shape=IMAGE).fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a.coefs_[0], plain.coefs_[0])


def test_pickled_tta_predicts_identically(images):
    clf = small(tta="flip", image_shape=IMAGE).fit(images.train_images, images.train_labels)
    again = pickle.loads(pickle.dumps(clf))
    assert again.network_.image_shape == IMAGE
    np.testing.assert_array_equal(again.predict_proba(images.test_images),
                                  clf.predict_proba(images.test_images))


def test_image_shape_is_inferred_for_cifar_and_fashion_mnist_widths():
    rng = np.random.default_rng(0)
    y = np.arange(8) % 2
    for width, shape in [(3072, (3, 32, 32)), (784, (1, 28, 28)), (48, None)]:
        X = rng.integers(0, 256, (8, width), dtype=np.uint8)
        clf = small(max_iter=1, batch_size=4).fit(X, y)
        assert clf.network_.image_shape == shape


def test_one_cycle_trains_in_fit_and_partial_fit_refuses_it(blobs):
    X, y, X_test, y_test = blobs
    clf = small(schedule="one-cycle", eta_min=0.01, eta_max=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a planned end is no warning
        clf.fit(X, y)
    assert clf.score(X_test, y_test) > 0.9
    for fitted in (clf, small(schedule="one-cycle")):
        with pytest.raises(ValueError, match="^schedule one-cycle spans a run's length .* "
                                             "partial_fit") as error:
            fitted.partial_fit(X, y, classes=np.arange(4))
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("options, name", [
    (dict(flip=True), "flip"),
    (dict(translate=1), "translate"),
    (dict(tta="flip"), "tta"),
])
def test_reading_rows_of_no_known_image_shape_as_images_is_refused(blobs, options, name):
    X, y, _, _ = blobs  # 20 features
    with pytest.raises(ValueError, match=rf"^{name} reads X's rows as images, .*"
                                         rf"give image_shape$") as error:
        small(**options).fit(X, y)
    assert "\n" not in str(error.value)
    if name == "tta":  # asked for after the fit, by prediction
        with pytest.raises(ValueError, match="^tta reads X's rows as images"):
            small(max_iter=1).fit(X, y).set_params(tta="flip").predict(X)


# -- parameter errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("options, name", [
    (dict(alpha=-1.0), "alpha"),
    (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size="big"), "batch_size"),
    (dict(learning_rate_init=0.0), "learning_rate_init"),
    (dict(momentum=1.0), "momentum"),
    (dict(max_iter=0), "max_iter"),
    (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(dropout=1.0), "dropout"),
    (dict(loss="hinge"), "loss"),
    (dict(schedule="cosine"), "schedule"),
    (dict(schedule="triangular", n_s="two epochs"), "n_s"),
    (dict(schedule="triangular", eta_min=0.5, eta_max=0.1), "eta_min"),
    (dict(dtype="float16"), "dtype"),
    (dict(n_threads=0), "n_threads"),
    (dict(random_state=-1), "random_state"),
    (dict(zca=-1.0), "zca"),
    (dict(zca=float("nan")), "zca"),
    (dict(label_smoothing=1.0), "label_smoothing"),
    (dict(loss="svm", label_smoothing=0.1), "label_smoothing"),
    (dict(schedule="one-cycle", warmup=0.0), "warmup"),
    (dict(schedule="one-cycle", anneal="exp"), "anneal"),
    (dict(warmup=0.5), "warmup"),  # one-cycle's own, given to another schedule
    (dict(flip="yes"), "flip"),
    (dict(translate=-1), "translate"),
    (dict(translate=2, image_shape=(5, 2, 2)), "translate"),
    (dict(tta="rotate"), "tta"),
    (dict(image_shape=(4, 5)), "image_shape"),
    (dict(image_shape=(3, 32, 32)), "image_shape"),  # blobs have 20 features
])
def test_bad_parameters_raise_one_line_naming_the_parameter(blobs, options, name):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match=rf"^{name} ") as error:
        MLPClassifier(**options).fit(X, y)
    assert "\n" not in str(error.value)


# -- without scikit-learn -----------------------------------------------------------------------


def test_the_package_imports_without_scikit_learn():
    script = textwrap.dedent("""
        import sys
        sys.modules["sklearn"] = None  # import sklearn now raises ImportError
        import cifar_engine
        assert cifar_engine.Network is not None
        try:
            from cifar_engine import MLPClassifier
        except ImportError as error:
            print(error)
        else:
            raise SystemExit("MLPClassifier imported without scikit-learn")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert "\n" not in message and "pip install cifar-engine[sklearn]" in message
