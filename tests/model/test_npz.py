"""A saved model predicts as the network did; anything else is refused with one line."""
import io
import json
import os
import random
import zipfile

import numpy as np
import pytest

from cifar_engine.data.preprocessing import Pca, Standardise, Zca
from cifar_engine.errors import UserError
from cifar_engine.model.network import Network, NetworkSpec
from cifar_engine.model.npz import (FORMAT_VERSION, check_extra, load_network, save_network,
                                    tensor_shapes)
from properties import allocates_at_most


def small_net(batch_norm=True, zca=False):
    """A 12-6-5-3 network with its standardisation (or ZCA whitening fitted on random
    images), class names and image shape set."""
    rng = np.random.default_rng(0)
    spec = NetworkSpec(input_size=12, n_classes=3, hidden=(6, 5), batch_norm=batch_norm,
                       lam=0.01)
    net = Network(spec, seed=3, max_batch=8)
    preprocessing = (Zca.fit(rng.integers(0, 256, (40, 12), np.uint8), np.arange(40), eps=0.1)
                     if zca else Standardise(rng.uniform(50, 200, 12), rng.uniform(20, 60, 12)))
    net.set_preprocessing(preprocessing, ["cat", "dog", "eel"], (3, 2, 2))
    return net


def read_arrays(path):
    with np.load(path) as z:
        return dict(z)


def rewrite(path, changes):
    """Replace arrays of the .npz at `path` by name (None removes one), as np.savez writes."""
    arrays = read_arrays(path)
    for name, value in changes.items():
        if value is None:
            arrays.pop(name)
        else:
            arrays[name] = value
    np.savez(path, **arrays)


@pytest.fixture
def trained_bn_net():
    rng = np.random.default_rng(0)
    net = small_net()
    for step in range(5):
        net.train_step(rng.standard_normal((8, 12)), rng.integers(0, 3, 8), 0.1, step)
    images = rng.integers(0, 256, (20, 12), dtype=np.uint8)
    return net, images


def test_a_saved_model_predicts_exactly_as_the_network(tmp_path, trained_bn_net):
    net, images = trained_bn_net
    save_network(tmp_path / "model.npz", net, extra={"step": 5})
    loaded, extra = load_network(tmp_path / "model.npz")
    assert loaded.spec == net.spec
    assert loaded.class_names == ("cat", "dog", "eel") and loaded.image_shape == (3, 2, 2)
    np.testing.assert_array_equal(loaded.predict_proba(images), net.predict_proba(images))
    for name, p in net.running_stats.items():
        np.testing.assert_array_equal(loaded.running_stats[name], p)
    assert int(extra["step"]) == 5
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


@pytest.mark.parametrize("content", [b"not a zip at all", b""])
def test_a_file_that_is_not_a_model_is_one_clear_error(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(UserError, match="model.npz: not a cifar-engine model"):
        load_network(path)


def test_an_npz_without_the_marker_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", W=np.zeros(3))
    with pytest.raises(UserError, match="no 'cifar-engine-model' marker"):
        load_network(tmp_path / "other.npz")


def test_a_model_of_another_format_version_is_refused(tmp_path, trained_bn_net):
    net, _ = trained_bn_net
    save_network(tmp_path / "model.npz", net)
    with np.load(tmp_path / "model.npz") as z:
        arrays = dict(z)
    arrays["format_version"] = np.array(FORMAT_VERSION + 1)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(UserError, match=f"version {FORMAT_VERSION + 1}"):
        load_network(tmp_path / "future.npz")


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(UserError, match="nowhere.npz: no such file"):
        load_network(tmp_path / "nowhere.npz")


@pytest.fixture
def model(tmp_path):
    save_network(tmp_path / "model.npz", small_net())
    return tmp_path / "model.npz"


@pytest.mark.parametrize("batch_norm", [True, False])
def test_tensor_shapes_names_every_tensor_of_the_network(batch_norm):
    net = small_net(batch_norm)
    stored = {f"param/{k}": v.shape for k, v in net.parameters.items()}
    stored.update({f"running/{k}": v.shape for k, v in net.running_stats.items()})

    assert tensor_shapes(net.spec) == stored


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("tensor", ["param/W2", "param/b3", "running/mean1",
                                    "preprocessing/mean", "preprocessing/std"])
def test_a_tensor_holding_nan_or_inf_is_refused_naming_it(model, tensor, value):
    array = read_arrays(model)[tensor].copy()
    array.flat[1] = value
    rewrite(model, {tensor: array})

    with pytest.raises(UserError, match=f"model.npz: damaged cifar-engine model \\(tensor "
                                        f"{tensor} holds NaN or infinite values\\)$"):
        load_network(model)


@pytest.mark.parametrize("content", [
    random.Random(0).randbytes(3000),
    b"\x93NUMPY" + random.Random(1).randbytes(200),
    b"PK\x03\x04" + random.Random(2).randbytes(500),
])
def test_random_bytes_are_not_an_npz_file(tmp_path, content):
    (tmp_path / "model.npz").write_bytes(content)

    with pytest.raises(UserError) as error:
        load_network(tmp_path / "model.npz")

    assert str(error.value) == (f"{tmp_path / 'model.npz'}: not a cifar-engine model "
                                "(not an .npz file)")


def test_an_npy_file_is_not_an_npz_file(tmp_path):
    with open(tmp_path / "model.npz", "wb") as file:
        np.save(file, np.zeros(3))

    with pytest.raises(UserError, match="model.npz: not a cifar-engine model \\(not an .npz"):
        load_network(tmp_path / "model.npz")


def _spec_with(model, **fields):
    spec = json.loads(str(read_arrays(model)["spec"]))
    spec.update(fields)
    return {"spec": np.array(json.dumps(spec))}


def test_a_spec_claiming_2_to_the_40_hidden_units_is_refused_before_allocating(model):
    rewrite(model, _spec_with(model, hidden=[2**40, 5]))

    with pytest.raises(UserError, match=r"model.npz: damaged cifar-engine model \(tensor "
                                        r"param/W1 is \(6, 12\), its spec needs "
                                        r"\(1099511627776, 12\)\)"), allocates_at_most(16):
        load_network(model)


@pytest.mark.parametrize("changes, message", [
    ({"param/W3": None}, "no tensor param/W3, which its spec needs"),
    ({"param/W9": np.zeros((2, 2), np.float32)}, "tensor param/W9 is not part of its spec"),
    ({"running/var2": -np.ones(5, np.float32)}, "tensor running/var2 holds negative variances"),
    ({"preprocessing/std": np.zeros(12)}, "tensor preprocessing/std holds values <= 0"),
    ({"param/b3": np.array(["a", "b", "c"])}, "tensor param/b3 is <U1, not real numbers"),
    ({"class_names": np.array('["cat", "dog"]')}, "class_names is not a JSON list of 3 strings"),
    ({"class_names": np.array("[1, 2, 3]")}, "class_names is not a JSON list of 3 strings"),
    ({"image_shape": np.array([-3, -2, 2])}, "image_shape [-3, -2, 2] is not a (C, H, W)"),
    ({"image_shape": np.array([3, 2, 3])}, "image_shape [3, 2, 3] is not a (C, H, W)"),
    ({"seed": np.array(1.5)}, "seed is float64 (), not an integer"),
    ({"seed": np.array(-1)}, "seed -1 is not in 0..2**63-1"),
    ({"seed": np.array(2**64 - 1, np.uint64)}, "seed 18446744073709551615 is not in"),
    ({"spec": np.array("[1, 2]")}, "spec is not a JSON object"),
    ({"spec": np.array("[" * 100_000)}, "spec is not valid JSON (maximum recursion depth"),
    ({"spec": np.array(b"{}")}, "spec is |S2 (), not a text"),
    ({"param/W1": np.array(b"xy")}, "tensor param/W1 is (), its spec needs (6, 12)"),
    ({"format_version": np.array(b"")}, "format_version is |S1 (), not an integer"),
    ({"format_version": np.array([1, 1])}, "format_version is int64 (2,), not an integer"),
])
def test_a_damaged_model_is_one_line_naming_the_file(model, changes, message):
    rewrite(model, changes)

    with pytest.raises(UserError, match="model.npz: damaged cifar-engine model") as error:
        load_network(model)

    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("fields, message", [
    ({"dropout": 2.0}, "dropout"),
    ({"lam": "NaN"}, "NaN is not a number"),
    ({"warp": 9}, "warp"),
])
def test_a_spec_out_of_range_names_the_file(model, fields, message):
    changes = _spec_with(model, **fields)
    changes["spec"] = np.array(str(changes["spec"]).replace('"NaN"', "NaN"))
    rewrite(model, changes)

    with pytest.raises(UserError, match="model.npz: damaged cifar-engine model \\(spec") as error:
        load_network(model)

    assert message in str(error.value)


def _with_member(path, name, content):
    """Rewrite the zip at `path` with member `name` holding `content`, others unchanged."""
    with zipfile.ZipFile(path) as old:
        members = {info.filename: old.read(info) for info in old.infolist()}
    members[name] = content
    with zipfile.ZipFile(path, "w") as new:
        for member, data in members.items():
            new.writestr(member, data)


def _npy_header(shape, dtype="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("header", [
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (6, 12), }\x00",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (6, 12), '",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (6, 12), ",
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (6, 12\n",
])
def test_an_array_header_that_is_not_python_is_one_line(model, header):
    """numpy parses a .npy header with Python's parser: SyntaxError and TokenError."""
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(288)
    _with_member(model, "param/W1.npy", member)

    with pytest.raises(UserError, match=r"model.npz: damaged cifar-engine model \(param/W1.npy: "
                                        r"unreadable .npy header"):
        load_network(model)


@pytest.mark.parametrize("shape", [(2**30,), (2**40, 2**40)])
def test_an_array_header_claiming_more_than_its_member_holds_allocates_nothing(model, shape):
    _with_member(model, "param/W1.npy", _npy_header(shape) + bytes(288))

    with pytest.raises(UserError, match=r"damaged cifar-engine model \(param/W1.npy: its header "
                                        r"declares float32 \(.*\), its data is 288 bytes"), \
            allocates_at_most(16):
        load_network(model)


def test_a_member_claiming_to_unpack_to_more_than_deflate_can_is_refused(model):
    with zipfile.ZipFile(model) as old:
        members = {info.filename: old.read(info) for info in old.infolist()}
    with zipfile.ZipFile(model, "w", zipfile.ZIP_DEFLATED) as new:
        for member, data in members.items():
            new.writestr(member, data)
        directory = new.start_dir  # where the central directory begins
    raw = bytearray(model.read_bytes())
    entry = raw.index(b"param/W1.npy", directory) - 46  # the member's central directory entry
    raw[entry + 24:entry + 28] = (2**30).to_bytes(4, "little")  # its uncompressed size
    model.write_bytes(raw)

    with pytest.raises(UserError, match=r"param/W1.npy: claims 1073741824 bytes from"), \
            allocates_at_most(16):
        load_network(model)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("make", [os.mkdir, os.mkfifo], ids=["folder", "pipe"])
def test_a_model_that_is_not_a_regular_file_is_refused_without_waiting(tmp_path, make):
    make(tmp_path / "model.npz")

    with pytest.raises(UserError, match="model.npz: not a regular file"):
        load_network(tmp_path / "model.npz")


def test_check_extra_names_a_missing_or_misshapen_array(tmp_path):
    extra = {"step": np.array(5), "history": np.zeros((4, 9)), "velocity/W1": np.zeros((6, 12))}
    shapes = {"step": (), "history": (None, 9), "velocity/W1": (6, 12)}
    check_extra(tmp_path / "c.npz", extra, shapes)

    for name, value in [("step", np.array([1, 2])), ("history", np.zeros((4, 8))),
                        ("velocity/W1", None), ("step", np.array("5"))]:
        broken = {**extra, name: value} if value is not None else {
            k: v for k, v in extra.items() if k != name}
        with pytest.raises(UserError, match=f"c.npz: damaged checkpoint \\(extra/{name} is "):
            check_extra(tmp_path / "c.npz", broken, shapes)


def test_label_smoothing_round_trips_and_a_spec_without_it_loads_as_0(tmp_path):
    rng = np.random.default_rng(1)
    spec = NetworkSpec(input_size=12, n_classes=3, hidden=(6,), lam=0.01, label_smoothing=0.2)
    net = Network(spec, seed=3, max_batch=8)
    net.set_preprocessing(Standardise(rng.uniform(50, 200, 12), rng.uniform(20, 60, 12)))
    net.train_step(rng.standard_normal((8, 12)), rng.integers(0, 3, 8), 0.1)
    images, labels = rng.integers(0, 256, (20, 12), dtype=np.uint8), rng.integers(0, 3, 20)
    path = tmp_path / "model.npz"
    save_network(path, net)
    assert json.loads(str(read_arrays(path)["spec"]))["label_smoothing"] == 0.2
    loaded, _ = load_network(path)
    assert loaded.spec == net.spec and loaded.spec.label_smoothing == 0.2
    assert loaded.evaluate(images, labels) == net.evaluate(images, labels)  # smoothed loss
    old_spec = json.loads(str(read_arrays(path)["spec"]))
    del old_spec["label_smoothing"]  # a file written before label smoothing existed
    rewrite(path, {"spec": np.array(json.dumps(old_spec))})
    old, _ = load_network(path)
    assert old.spec.label_smoothing == 0.0
    assert old.spec == NetworkSpec(**{**net.spec.to_dict(), "label_smoothing": 0.0})
    assert old.evaluate(images, labels)["loss"] != pytest.approx(
        net.evaluate(images, labels)["loss"], rel=1e-3)


# -- the preprocessing: ZCA models, and version-1 files ----------------------------------------


@pytest.fixture
def zca_model(tmp_path):
    save_network(tmp_path / "model.npz", small_net(zca=True))
    return tmp_path / "model.npz"


def test_a_zca_model_predicts_from_raw_images_exactly_as_the_network(tmp_path):
    net = small_net(zca=True)
    images = np.random.default_rng(2).integers(0, 256, (20, 12), dtype=np.uint8)
    save_network(tmp_path / "model.npz", net)

    loaded, _ = load_network(tmp_path / "model.npz")

    assert loaded.preprocessing.kind == "zca" and loaded.preprocessing.eps == 0.1
    for name, value in net.preprocessing.arrays().items():
        np.testing.assert_array_equal(loaded.preprocessing.arrays()[name], value)
    np.testing.assert_array_equal(loaded.predict_proba(images, tta="flip"),
                                  net.predict_proba(images, tta="flip"))
    assert read_arrays(tmp_path / "model.npz")["format_version"] == FORMAT_VERSION == 2


def pca_net():
    """A 5-6-3 network on the 5 leading components of whitened random 12-pixel images."""
    rng = np.random.default_rng(0)
    net = Network(NetworkSpec(input_size=5, n_classes=3, hidden=(6,), batch_norm=True),
                  seed=3, max_batch=8)
    net.set_preprocessing(Pca.fit(rng.integers(0, 256, (40, 12), np.uint8), np.arange(40),
                                  eps=0.1, k=5), ["cat", "dog", "eel"], (3, 2, 2))
    return net


def test_a_pca_model_predicts_from_raw_images_exactly_as_the_network(tmp_path):
    net = pca_net()
    images = np.random.default_rng(2).integers(0, 256, (20, 12), dtype=np.uint8)
    save_network(tmp_path / "model.npz", net)

    loaded, _ = load_network(tmp_path / "model.npz")

    assert loaded.preprocessing.describe() == {"kind": "pca", "components": 5, "eps": 0.1}
    for name, value in net.preprocessing.arrays().items():
        np.testing.assert_array_equal(loaded.preprocessing.arrays()[name], value)
    np.testing.assert_array_equal(loaded.predict_proba(images, tta="flip"),
                                  net.predict_proba(images, tta="flip"))


@pytest.mark.parametrize("changes, message", [
    ({"preprocessing/components": np.ones((12, 4), np.float32)},
     "tensor preprocessing/components is (12, 4), its spec needs (12, 5)"),
    ({"preprocessing/gains": None}, "no tensor preprocessing/gains, which its spec needs"),
    ({"preprocessing/mean": np.ones(11)},
     "tensor preprocessing/scale is (12,), its spec needs (11,)"),
    ({"image_shape": np.array([1, 1, 5])}, "image_shape [1, 1, 5] is not a (C, H, W) of 12"),
])
def test_a_damaged_pca_model_is_one_line_naming_the_file(tmp_path, changes, message):
    save_network(tmp_path / "model.npz", pca_net())
    rewrite(tmp_path / "model.npz", changes)

    with pytest.raises(UserError, match="model.npz: damaged cifar-engine model") as error:
        load_network(tmp_path / "model.npz")

    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("changes, message", [
    ({"preprocessing": np.array("lda")},
     "preprocessing 'lda' is not one of standardise, zca, pca"),
    ({"preprocessing": None}, "no preprocessing, which version 2 needs"),
    ({"preprocessing/step": np.zeros(12)}, "tensor preprocessing/step holds values <= 0"),
    ({"preprocessing/eps": np.array(-1.0)}, "tensor preprocessing/eps must be a number > 0"),
    ({"preprocessing/whiten": np.zeros((12, 11))},
     "tensor preprocessing/whiten is (12, 11), its spec needs (12, 12)"),
    ({"preprocessing/whiten": None}, "no tensor preprocessing/whiten, which its spec needs"),
    ({"preprocessing/std": np.ones(12)}, "tensor preprocessing/std is not part of its spec"),
    ({"preprocessing/step": np.full(12, np.inf)},
     "tensor preprocessing/step holds NaN or infinite values"),
])
def test_a_damaged_zca_model_is_one_line_naming_the_file(zca_model, changes, message):
    rewrite(zca_model, changes)

    with pytest.raises(UserError, match="model.npz: damaged cifar-engine model") as error:
        load_network(zca_model)

    assert message in str(error.value) and "\n" not in str(error.value)


def as_version_1(path):
    """Rewrite a model file of a standardised network as version 1 wrote it: the mean and
    std as the arrays `mean` and `std`, no preprocessing kind."""
    arrays = read_arrays(path)
    arrays.update(format_version=np.array(1), mean=arrays.pop("preprocessing/mean"),
                  std=arrays.pop("preprocessing/std"))
    del arrays["preprocessing"]
    np.savez(path, **arrays)


def test_a_version_1_model_loads_as_standardise_and_predicts_as_before(tmp_path, trained_bn_net):
    net, images = trained_bn_net
    save_network(tmp_path / "model.npz", net)
    as_version_1(tmp_path / "model.npz")

    loaded, _ = load_network(tmp_path / "model.npz")

    assert loaded.preprocessing.kind == "standardise"
    np.testing.assert_array_equal(loaded.preprocessing.mean, net.preprocessing.mean)
    np.testing.assert_array_equal(loaded.preprocessing.std, net.preprocessing.std)
    np.testing.assert_array_equal(loaded.predict_proba(images), net.predict_proba(images))
    save_network(tmp_path / "again.npz", loaded)  # and is saved as version 2
    assert read_arrays(tmp_path / "again.npz")["format_version"] == 2


@pytest.mark.parametrize("changes, message", [
    ({"std": np.zeros(12)}, "tensor std holds values <= 0"),
    ({"mean": np.full(12, np.nan)}, "tensor mean holds NaN or infinite values"),
    ({"std": None}, "no tensor std, which its spec needs"),
    ({"preprocessing/whiten": np.eye(12)}, "tensor preprocessing/whiten is not part of"),
])
def test_a_damaged_version_1_model_is_one_line_naming_the_file(model, changes, message):
    as_version_1(model)
    rewrite(model, changes)

    with pytest.raises(UserError, match="model.npz: damaged cifar-engine model") as error:
        load_network(model)

    assert message in str(error.value) and "\n" not in str(error.value)
