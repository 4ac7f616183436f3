"""The Python API's whole run: `cifar_engine.train(config, out)`."""
import json

import numpy as np
import pytest

import cifar_engine
from cifar_engine import TrainConfig, UserError
from cifar_engine.training.loop import Callbacks
from fakes import write_image_tree


def test_train_writes_a_run_folder_and_returns_its_summary(tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(100, 20), size=(8, 8)).path
    config = TrainConfig(data=str(root), hidden=(12,), batch_size=10, schedule="triangular",
                         n_s="2ep", cycles=1, eta_min=1e-4, eta_max=0.05)
    rows = []
    result, summary = cifar_engine.train(
        config, out=tmp_path / "run", cache_dir=tmp_path / "cache",
        observers=[Callbacks(on_evaluation=lambda t, row: rows.append(row))])
    assert result.steps == 24 and rows == result.history
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {"train_acc", "val_acc", "test_acc", "steps", "epochs", "seconds", "seed",
            "compile_seconds", "data", "environment"} <= set(summary)
    assert summary["preprocessing"] == {"kind": "standardise"}
    net, _ = cifar_engine.load_network(tmp_path / "run" / "model.npz")
    assert net.class_names == ("ant", "bee", "cow") and net.image_shape == (3, 8, 8)


def test_fit_trains_from_loaded_data_and_writes_nothing(tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(100, 20), size=(8, 8)).path
    data = cifar_engine.load_dataset(root, cache_dir=tmp_path / "cache")
    config = TrainConfig(hidden=(12,), batch_size=10, schedule="triangular", n_s="2ep",
                         cycles=1, eta_min=1e-4, eta_max=0.05, eval_every=6)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cifar_engine.fit(config, data)
    again = cifar_engine.fit(config, data)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    columns = result.columns()
    assert list(columns["step"]) == [6, 12, 18, 24] and result.losses.shape == (24,)
    assert np.array_equal(result.losses, again.losses) and result.test_acc == again.test_acc
    assert 0 <= result.val_acc <= 1 and result.compile_seconds >= 0


def test_a_pca_run_projects_with_statistics_cached_beside_the_data(tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(100, 20), size=(8, 8)).path
    config = TrainConfig(data=str(root), zca=0.1, pca=24, hidden=(12,), batch_size=10,
                         flip=True, translate=1, tta="flip", epochs=2)

    result, summary = cifar_engine.train(config, out=tmp_path / "run",
                                         cache_dir=tmp_path / "cache")

    assert summary["preprocessing"] == {"kind": "pca", "components": 24, "eps": 0.1}
    data = cifar_engine.load_dataset(root, cache_dir=tmp_path / "cache")
    assert [p.name for p in data.cache_entry.glob("pca24-eps0.1-*.npz")]
    net, _ = cifar_engine.load_network(tmp_path / "run" / "model.npz")
    assert net.spec.input_size == 24 and net.preprocessing.n_features == 192
    assert net.evaluate(data.test_images, data.test_labels)["accuracy"] == \
        summary["without_tta"]["test_acc"]
    assert (tmp_path / "run" / "templates.png").stat().st_size > 0


def test_a_zca_run_whitens_with_statistics_cached_beside_the_data(tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(100, 20), size=(8, 8)).path
    config = TrainConfig(data=str(root), zca=0.1, hidden=(12,), batch_size=10,
                         schedule="triangular", n_s="2ep", cycles=1, eta_min=1e-4,
                         eta_max=0.05)

    result, summary = cifar_engine.train(config, out=tmp_path / "run",
                                         cache_dir=tmp_path / "cache")

    assert summary["preprocessing"] == {"kind": "zca", "eps": 0.1}
    assert "zca = 0.1" in (tmp_path / "run" / "config.toml").read_text()
    data = cifar_engine.load_dataset(root, cache_dir=tmp_path / "cache")
    assert [p.name for p in data.cache_entry.glob("zca-eps0.1-*.npz")]
    net, _ = cifar_engine.load_network(tmp_path / "run" / "model.npz")
    assert net.preprocessing.kind == "zca" and net.preprocessing.eps == 0.1
    # the model takes raw images: the test accuracy the run measured on its whitened copy
    assert net.evaluate(data.test_images, data.test_labels)["accuracy"] == result.test_acc


def test_a_tta_run_reports_flipped_validation_and_test_accuracies_beside_plain_ones(tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(100, 20), size=(8, 8)).path
    config = TrainConfig(data=str(root), tta="flip", hidden=(12,), batch_size=10,
                         schedule="triangular", n_s="2ep", cycles=1, eta_min=1e-4,
                         eta_max=0.05, split="all", n_val=60, eval_every=12)

    result, summary = cifar_engine.train(config, out=tmp_path / "run",
                                         cache_dir=tmp_path / "cache")

    data = cifar_engine.load_dataset(root, cache_dir=tmp_path / "cache")
    net, _ = cifar_engine.load_network(tmp_path / "run" / "model.npz")
    val = slice(len(data.train_labels) - 60, None)
    flipped_test = net.predict(data.test_images, tta="flip") == data.test_labels
    flipped_val = net.predict(data.train_images[val], tta="flip") == data.train_labels[val]
    assert summary["tta"] == "flip"
    assert summary["test_acc"] == flipped_test.mean() and summary["val_acc"] == flipped_val.mean()
    assert summary["without_tta"] == {
        "test_acc": net.evaluate(data.test_images, data.test_labels)["accuracy"],
        "val_acc": net.evaluate(data.train_images[val], data.train_labels[val])["accuracy"]}
    plain_train = net.evaluate(data.train_images[:-60], data.train_labels[:-60])["accuracy"]
    assert summary["train_acc"] == plain_train
    best = summary["best"]
    best_net, _ = cifar_engine.load_network(tmp_path / "run" / "best.npz")
    assert best["test_acc"] == best_net.evaluate(data.test_images,
                                                 data.test_labels)["accuracy"]
    assert best["test_acc_tta"] == np.mean(
        best_net.predict(data.test_images, tta="flip") == data.test_labels)


@pytest.mark.parametrize("args, name", [
    (({"hidden": [12]}, None), "config"),
    ((None,), "config"),
    ((TrainConfig(), "data/images"), "dataset"),
    ((TrainConfig(), None, [1, 2]), "split"),
])
def test_a_wrong_typed_argument_is_one_error_naming_it(args, name):
    with pytest.raises(UserError) as err:
        cifar_engine.fit(*args)
    assert str(err.value).startswith(f"{name} must be a")
    assert "\n" not in str(err.value)


def test_train_checks_its_config_before_claiming_a_folder(tmp_path):
    with pytest.raises(UserError, match="^config must be a TrainConfig"):
        cifar_engine.train({"hidden": [12]}, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_prepare_records_the_runs_library_and_data_and_refuses_others(tmp_path):
    from cifar_engine.data import dataset_sha256
    from cifar_engine.runtime.blas import library_name
    from cifar_engine.training.run import prepare

    root = write_image_tree(tmp_path / "images", per_class=(30, 5), size=(8, 8)).path
    config = TrainConfig(data=str(root), hidden=(8,), batch_size=10)
    prepared = prepare(config, cache_dir=tmp_path / "cache")
    data = cifar_engine.load_dataset(root, cache_dir=tmp_path / "other-cache")
    assert prepared.config.blas == library_name()
    assert prepared.config.data_sha256 == dataset_sha256(data)
    assert len(prepared.config.data_sha256) == 64

    other = {"openblas": "mkl", "mkl": "openblas"}[library_name()]
    for setting, value in (("blas", other), ("data_sha256", "0" * 64)):
        with pytest.raises(UserError, match=f"^{setting} is "):
            prepare(TrainConfig(**{**vars(prepared.config), setting: value}),
                    cache_dir=tmp_path / "cache")
