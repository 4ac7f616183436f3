"""The Python API's whole run: `cifar_engine.train(config, out)`."""
import json

import cifar_engine
from cifar_engine import TrainConfig
from fakes import write_image_tree


def test_train_writes_a_run_folder_and_returns_its_summary(tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(100, 20), size=(8, 8)).path
    config = TrainConfig(data=str(root), hidden=(12,), batch_size=10, schedule="triangular",
                         n_s="2ep", cycles=1, eta_min=1e-4, eta_max=0.05)
    rows = []
    trainer, summary = cifar_engine.train(config, out=tmp_path / "run",
                                          cache_dir=tmp_path / "cache",
                                          on_evaluation=lambda t, row: rows.append(row))
    assert trainer.step == 24 and rows == trainer.history
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {"train_acc", "val_acc", "test_acc", "steps", "epochs", "seconds", "seed",
            "data", "environment"} <= set(summary)
    net, _ = cifar_engine.load_network(tmp_path / "run" / "model.npz")
    assert net.class_names == ("ant", "bee", "cow") and net.image_shape == (3, 8, 8)
