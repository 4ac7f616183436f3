"""estimator_onnx.py: skl2onnx converts a fitted MLPClassifier, alone and in a Pipeline, into
a graph whose onnxruntime probabilities and labels are the classifier's."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skl2onnx
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from cifar_engine import MLPClassifier
from cifar_engine.estimator_onnx import register_skl2onnx

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

IMAGE_SHAPE = (3, 4, 4)
ATOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_skl2onnx()


@pytest.fixture(scope="module")
def pixels():
    """300 rows of 3x4x4 raw pixels (float32), labels of 3 named classes by their mean
    brightness (so a short fit learns something)."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (300, int(np.prod(IMAGE_SHAPE)))).astype(np.float32)
    brightness = X.mean(axis=1)
    y = np.array(["ant", "bee", "cow"])[np.digitize(brightness, np.quantile(brightness,
                                                                            [1 / 3, 2 / 3]))]
    return X, y


def run(model, X):
    """onnxruntime's outputs (label, probabilities) of the model for X."""
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def fitted(X, y, **options):
    return MLPClassifier(**{"hidden_layer_sizes": (16,), "batch_size": 20, "max_iter": 3,
                            "random_state": 0, **options}).fit(X, y)


@pytest.mark.parametrize("options", [
    {}, {"batch_norm": True, "pca": 10}, {"zca": 0.1, "dtype": "float64"},
    {"batch_norm": True, "tta": "flip", "image_shape": IMAGE_SHAPE}],
    ids=["standardise", "bn-pca", "zca-float64", "bn-flip"])
def test_onnx_probabilities_and_labels_are_the_classifiers(pixels, options):
    X, y = pixels
    clf = fitted(X, y, **options)

    label, probabilities = run(skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)

    np.testing.assert_allclose(probabilities, clf.predict_proba(X), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, clf.predict(X))


def test_float64_rows_give_float64_probabilities(pixels):
    X, y = pixels
    X = X.astype(np.float64)
    clf = fitted(X, y)

    label, probabilities = run(skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)

    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), rtol=0, atol=ATOL)


def test_the_default_zipmap_gives_a_probability_per_class_name(pixels):
    X, y = pixels
    clf = fitted(X, y)

    label, probabilities = run(skl2onnx.to_onnx(clf, X[:1]), X[:5])

    expected = clf.predict_proba(X[:5])
    assert [sorted(row) for row in probabilities] == [list(clf.classes_)] * 5
    np.testing.assert_allclose([[row[c] for c in clf.classes_] for row in probabilities],
                               expected, rtol=0, atol=ATOL)


def test_integer_classes_and_nocl(pixels):
    X, y = pixels
    codes = np.searchsorted(np.unique(y), y) * 10 + 5  # classes 5, 15, 25
    clf = fitted(X, codes)

    label = run(skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False}), X)[0]
    index = run(skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False, "nocl": True}), X)[0]

    np.testing.assert_array_equal(label, clf.predict(X))
    np.testing.assert_array_equal(index, np.searchsorted(clf.classes_, clf.predict(X)))


def test_in_a_pipeline(pixels):
    X, y = pixels
    clf = MLPClassifier((16,), batch_size=20, max_iter=3, random_state=0)
    pipe = make_pipeline(MinMaxScaler((0, 255)), clf).fit(X, y)  # skl2onnx converts both

    label, probabilities = run(skl2onnx.to_onnx(pipe, X[:1],
                                                options={id(clf): {"zipmap": False}}), X)

    np.testing.assert_allclose(probabilities, pipe.predict_proba(X), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, pipe.predict(X))


def test_an_opset_before_13_is_refused(pixels):
    X, y = pixels
    clf = fitted(X, y)

    with pytest.raises(RuntimeError, match="opset 13 or later, not 12"):
        skl2onnx.to_onnx(clf, X[:1], target_opset=12)
