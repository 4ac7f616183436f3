"""A saved model predicts as the network did; anything else is refused with one line."""
import numpy as np
import pytest

from cifar_engine.errors import UserError
from cifar_engine.model_file import FORMAT_VERSION, load_network, save_network
from cifar_engine.network import Network, NetworkSpec


@pytest.fixture
def trained_bn_net():
    rng = np.random.default_rng(0)
    spec = NetworkSpec(input_size=12, n_classes=3, hidden=(6, 5), batch_norm=True, lam=0.01)
    net = Network(spec, seed=3, max_batch=8)
    net.set_standardisation(rng.uniform(50, 200, 12), rng.uniform(20, 60, 12),
                            ["cat", "dog", "eel"], (3, 2, 2))
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
