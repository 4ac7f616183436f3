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


def test_zca_whitens_what_the_network_sees_and_survives_pickling(pixels):
    X, y = pixels
    clf = small(zca=0.1).fit(X, y)
    pre = clf.preprocessing_
    assert pre.kind == "zca" and pre.eps == 0.1 and clf.score(X, y) > 0.9
    h = pre.transform(X)  # the whitened rows: coefs_ act on them
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0)
    scores = h @ clf.coefs_[-1] + clf.intercepts_[-1]
    np.testing.assert_allclose(scores, clf.decision_function(X), rtol=1e-4, atol=1e-4)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.preprocessing_.kind == "zca"


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
