"""export.py: the ONNX graph run by onnxruntime against `Network.predict_proba`, on random and
on real images; the safetensors file against the network's state, bit for bit; `export`'s
refusals."""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from safetensors.numpy import load_file

from cifar_engine.data import load_dataset
from cifar_engine.data.preprocessing import PREPROCESSINGS, fit_preprocessing
from cifar_engine.errors import SettingError, UserError
from cifar_engine.model.export import (EXPORTERS, LABEL, OPSET, PIXELS,
                                       PREPROCESSING_GRAPHS, PROBABILITIES, Graph, export,
                                       export_onnx, mirror_index, to_onnx)
from cifar_engine.model.network import Network, NetworkSpec
from real_data import FASHION_MNIST, require

IMAGE_SHAPE = (3, 5, 4)
D, K = int(np.prod(IMAGE_SHAPE)), 4
ATOL = 1e-5  # float32 graph against the engine's float32 kernels (float64: see docs)
PREPROCESSING_OPTIONS = {  # (zca, pca) of fit_preprocessing
    "standardise": (0.0, 0), "zca": (0.1, 0), "pca": (0.0, 12), "pca-whitened": (0.1, 12)}


def trained_net(images, labels, zca=0.0, pca=0, batch_norm=True, dtype="float32",
                image_shape=IMAGE_SHAPE, hidden=(16, 8), steps=12, class_names=None):
    """A net on `images`' preprocessing, trained `steps` steps of 20 (so batch norm's running
    statistics are its batches', not 0 and 1)."""
    rng = np.random.default_rng(0)
    prep = fit_preprocessing(zca, images, np.arange(len(images)), pca=pca)
    n_classes = int(labels.max()) + 1
    spec = NetworkSpec(input_size=prep.n_inputs, n_classes=n_classes, hidden=hidden,
                       batch_norm=batch_norm, dtype=dtype)
    net = Network(spec, seed=1, max_batch=20, momentum=0.9)
    net.set_preprocessing(prep, class_names, image_shape)
    order = rng.permutation(np.arange(len(images)).repeat(steps * 20 // len(images) + 1))
    done = net.run_steps(net.batch_source(images, labels), order.astype(np.int64), 0, 20, 0,
                         np.full(steps, 0.05), np.zeros(steps, net.dtype))
    assert done == steps
    return net


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (120, D), dtype=np.uint8), rng.integers(0, K, 120)


def onnx_outputs(model, pixels):
    """(probabilities, labels) that onnxruntime computes for the rows `pixels`."""
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run([PROBABILITIES, LABEL], {PIXELS: pixels.astype(np.float32)})


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("kind", PREPROCESSING_OPTIONS)
def test_onnx_probabilities_are_predict_probas(images, kind, batch_norm):
    pixels, labels = images
    net = trained_net(pixels, labels, *PREPROCESSING_OPTIONS[kind], batch_norm=batch_norm)
    assert net.preprocessing.kind == kind.split("-")[0]

    probabilities, predicted = onnx_outputs(to_onnx(net), pixels)

    expected = net.predict_proba(pixels)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(predicted, np.argmax(expected, axis=1))


def test_batch_norm_is_folded_from_its_running_statistics(images):
    pixels, labels = images
    net = trained_net(pixels, labels)
    probabilities = onnx_outputs(to_onnx(net), pixels)[0]
    net.running_stats["var1"][...] *= 4  # a graph that ignored them would not follow

    moved = onnx_outputs(to_onnx(net), pixels)[0]

    np.testing.assert_allclose(moved, net.predict_proba(pixels), rtol=0, atol=ATOL)
    assert np.abs(moved - probabilities).max() > 100 * ATOL


@pytest.mark.parametrize("kind", ["standardise", "pca-whitened"])
def test_onnx_flip_is_predict_proba_with_tta_flip(images, kind):
    pixels, labels = images
    net = trained_net(pixels, labels, *PREPROCESSING_OPTIONS[kind])

    probabilities, predicted = onnx_outputs(to_onnx(net, tta="flip"), pixels)

    expected = net.predict_proba(pixels, tta="flip")
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=ATOL)
    assert np.abs(expected - net.predict_proba(pixels)).max() > 100 * ATOL  # flips count


def test_mirror_index_mirrors_each_row_of_pixels():
    rows = np.arange(2 * D).reshape(2, D)
    mirrored = rows.reshape(2, *IMAGE_SHAPE)[..., ::-1].reshape(2, D)

    np.testing.assert_array_equal(rows[:, mirror_index(IMAGE_SHAPE)], mirrored)


def test_a_float64_network_is_exported_in_float32(images):
    pixels, labels = images
    net = trained_net(pixels, labels, zca=0.1, dtype="float64")

    probabilities = onnx_outputs(to_onnx(net), pixels)[0]

    np.testing.assert_allclose(probabilities, net.predict_proba(pixels), rtol=0, atol=ATOL)


def test_onnx_metadata_holds_class_names_image_shape_and_preprocessing(images):
    pixels, labels = images
    names = ("ant", "bee", "cow", "dog")
    net = trained_net(pixels, labels, pca=12, class_names=names)

    model = to_onnx(net)

    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["class_names"]) == list(names)
    assert json.loads(props["image_shape"]) == list(IMAGE_SHAPE)
    assert json.loads(props["preprocessing"]) == net.preprocessing.describe()
    assert NetworkSpec.from_dict(json.loads(props["spec"])) == net.spec
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]] == [D]


def test_flip_needs_an_image_shape_and_tta_a_known_value(images):
    pixels, labels = images
    net = trained_net(pixels, labels, image_shape=None, steps=1)

    with pytest.raises(SettingError, match="tta flip needs the model's image shape"):
        to_onnx(net, tta="flip")
    with pytest.raises(SettingError, match="tta must be one of none, flip, got 'spin'"):
        to_onnx(net, tta="spin")


def test_every_preprocessing_kind_has_a_graph():
    assert PREPROCESSING_GRAPHS.keys() == PREPROCESSINGS.keys()


def preprocessed(net, pixels):
    """The first layer's inputs float32 [N, n_inputs] that the graph's preprocessing part
    computes for raw pixels, run alone by onnxruntime."""
    graph = Graph()
    inputs = PREPROCESSING_GRAPHS[net.preprocessing.kind](net.preprocessing, graph, PIXELS)
    h, F = onnx.helper, onnx.TensorProto.FLOAT
    opsets = [h.make_opsetid("", OPSET)]
    model = h.make_model(h.make_graph(
        graph.nodes, "preprocessing", [h.make_tensor_value_info(PIXELS, F, None)],
        [h.make_tensor_value_info(inputs, F, None)], graph.constants), opset_imports=opsets)
    model.ir_version = h.find_min_ir_version_for(opsets)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {PIXELS: pixels.astype(np.float32)})[0]


def test_zca_inputs_are_the_engines_int16_steps(images):
    """The graph rounds the whitened values to the steps the engine stores them in; only a
    value within float32 rounding of a boundary between two steps may land on the other."""
    pixels, labels = images
    net = trained_net(pixels, labels, zca=0.1, steps=1)
    stored, _, step = net.preprocessing.gather_form(pixels)

    steps = preprocessed(net, pixels) / step.astype(np.float32)

    np.testing.assert_allclose(steps, np.rint(steps), rtol=0, atol=1e-3)
    moved = np.rint(steps) - stored
    assert set(np.unique(moved)) <= {-1, 0, 1}
    assert np.mean(moved != 0) < 1e-3


@pytest.fixture(scope="module")
def fashion(real_cache):
    require(FASHION_MNIST, "apt-get install dataset-fashion-mnist (.ci/run does it)")
    return load_dataset(FASHION_MNIST, cache_dir=real_cache, progress=False)


@pytest.mark.parametrize("kind, tta", [("standardise", "flip"), ("pca-whitened", "none"),
                                       ("zca", "none")])
def test_fashion_mnist_probabilities_match_to_1e_5(fashion, kind, tta):
    """300 real images, a model trained briefly (100 steps, batch norm) on 1000 others. Under
    zca, the images whose int16 inputs the graph rounds as the engine does (see above; the
    others move by a step in some input, which moves their probabilities by ~1e-4)."""
    train, test = fashion.train_images[:1000], fashion.test_images[:300]
    net = trained_net(train, fashion.train_labels[:1000].astype(np.int64),
                      *PREPROCESSING_OPTIONS[kind], image_shape=fashion.image_shape,
                      hidden=(64, 32), steps=100, class_names=fashion.class_names)
    assert np.mean(net.predict(test) == fashion.test_labels[:300]) > 0.5  # it learnt

    probabilities, predicted = onnx_outputs(to_onnx(net, tta), test)

    expected = net.predict_proba(test, tta=tta)
    same = np.ones(len(test), bool)
    if kind == "zca":
        stored, _, step = net.preprocessing.gather_form(test)
        same = (np.rint(preprocessed(net, test) / step.astype(np.float32)) == stored).all(1)
        assert same.mean() > 0.5
    np.testing.assert_allclose(probabilities[same], expected[same], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(predicted[same], np.argmax(expected[same], axis=1))


# -- safetensors -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zca", "pca"])
def test_safetensors_hold_the_state_and_preprocessing_bit_for_bit(images, tmp_path, kind):
    pixels, labels = images
    net = trained_net(pixels, labels, *PREPROCESSING_OPTIONS[kind])
    path = tmp_path / "model.safetensors"

    export(net, path, "safetensors")

    tensors = load_file(path)
    state = net.state_dict(("parameters", "running_stats"))
    expected = {**{f"param/{k}": v for k, v in state["parameters"].items()},
                **{f"running/{k}": v for k, v in state["running_stats"].items()},
                **{f"preprocessing/{k}": np.asarray(v)
                   for k, v in net.preprocessing.arrays().items()}}
    assert tensors.keys() == expected.keys()
    for name, value in expected.items():
        assert tensors[name].dtype == value.dtype, name
        assert tensors[name].tobytes() == value.tobytes(), name


def test_safetensors_metadata_rebuilds_the_spec(images, tmp_path):
    from safetensors import safe_open

    pixels, labels = images
    net = trained_net(pixels, labels, steps=1)
    path = export(net, tmp_path / "m.safetensors", "safetensors")

    with safe_open(path, "numpy") as file:
        meta = file.metadata()

    assert NetworkSpec.from_dict(json.loads(meta["spec"])) == net.spec
    assert json.loads(meta["class_names"]) == list(net.class_names)
    assert json.loads(meta["preprocessing"]) == {"kind": "standardise"}


# -- export ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_net(images):
    return trained_net(*images, steps=1)


@pytest.mark.parametrize("fmt", EXPORTERS)
def test_export_refuses_a_file_already_there(small_net, tmp_path, fmt):
    path = tmp_path / f"model{EXPORTERS[fmt].suffix}"
    path.write_text("mine")

    with pytest.raises(UserError, match=f"{path}: already exists"):
        export(small_net, path, fmt)

    assert path.read_text() == "mine"
    export(small_net, path, fmt, overwrite=True)
    assert path.read_bytes() != b"mine"


def test_export_to_a_folder_writes_nothing(small_net, tmp_path):
    (tmp_path / "model.onnx").mkdir()

    with pytest.raises(UserError, match="a folder, not a regular file"):
        export_onnx(small_net, tmp_path / "model.onnx")

    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_export_names_an_unknown_format_and_a_tta_it_cannot_hold(small_net, tmp_path):
    with pytest.raises(SettingError, match="format must be one of onnx, safetensors"):
        export(small_net, tmp_path / "m.x", "pickle")
    with pytest.raises(SettingError, match="tta applies to the onnx format only"):
        export(small_net, tmp_path / "m.safetensors", "safetensors", tta="flip")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, module", [("onnx", "onnx"), ("safetensors", "safetensors")])
def test_a_missing_library_names_the_extra(small_net, tmp_path, monkeypatch, fmt, module):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, f"{module}.numpy", None)

    with pytest.raises(UserError, match=rf"needs {module}: pip install 'cifar-engine\[export\]'"):
        export(small_net, tmp_path / "m", fmt)

    assert list(tmp_path.iterdir()) == []
