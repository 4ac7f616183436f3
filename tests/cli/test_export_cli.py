"""`cifar-engine export`: a finished run's model as ONNX or safetensors, written beside it or
where --out says; an existing file, a run without a model or a setting the format cannot
hold is one line on stderr, exit code 2, and nothing written."""
import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file

from cifar_engine.cli.main import cli, main
from cifar_engine.model.npz import load_network
from fakes import assert_one_line_error, write_image_tree


def run(*args):
    return CliRunner().invoke(cli, ["export", *map(str, args)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run (batch norm) on 3x3x5 images of 3 classes; and its test images."""
    root = tmp_path_factory.mktemp("export")
    images = write_image_tree(root / "images", per_class=(10, 4))
    code = main(["train", "--data", str(images.path), "--out", str(root / "run"), "--hidden",
                 "8", "--bn", "--batch-size", "5", "--steps", "4", "--cache-dir",
                 str(root / "cache")])
    assert code == 0
    return root / "run", images.test_images


@pytest.fixture
def run_folder(trained, tmp_path):
    """A copy of the finished run's model files, for a test to write into."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("model.npz", "best.npz", "config.toml"):
        (folder / name).write_bytes((trained[0] / name).read_bytes())
    return folder


@pytest.mark.parametrize("tta", ["none", "flip"])
def test_onnx_beside_the_model_predicts_as_the_run(run_folder, trained, tta):
    result = run(run_folder, "--format", "onnx", "--tta", tta)

    assert result.exit_code == 0, result.output
    path = run_folder / "model.onnx"
    assert result.stdout == f"{path}\n"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = trained[1]
    probabilities = session.run(["probabilities"], {"pixels": images.astype(np.float32)})[0]
    net, _ = load_network(run_folder / "model.npz")
    np.testing.assert_allclose(probabilities, net.predict_proba(images, tta=tta), rtol=0,
                               atol=1e-5)


def test_safetensors_of_the_best_model_to_out(run_folder, tmp_path):
    out = tmp_path / "exported" / "best.safetensors"

    result = run(run_folder, "--format", "safetensors", "--model", "best", "--out", out)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    net, _ = load_network(run_folder / "best.npz")
    tensors = load_file(out)
    for name, value in net.parameters.items():
        assert tensors[f"param/{name}"].tobytes() == value.tobytes()


def test_an_existing_file_is_kept_without_overwrite(run_folder):
    path = run_folder / "model.safetensors"
    path.write_text("the user's")

    result = run(run_folder, "--format", "safetensors")

    assert_one_line_error(result, f"{path}: already exists")
    assert path.read_text() == "the user's"
    assert run(run_folder, "--format", "safetensors", "--overwrite").exit_code == 0
    assert load_file(path)


def test_a_run_without_its_model(tmp_path):
    result = run(tmp_path, "--format", "onnx", "--model", "best")

    assert_one_line_error(result, f"{tmp_path / 'best.npz'}: no such file")
    assert list(tmp_path.iterdir()) == []


def test_flip_is_refused_for_safetensors(run_folder):
    result = run(run_folder, "--format", "safetensors", "--tta", "flip")

    assert_one_line_error(result, "--tta applies to the onnx format only")
    assert not (run_folder / "model.safetensors").exists()


def test_a_damaged_model(run_folder):
    (run_folder / "model.npz").write_bytes(b"not a zip file")

    result = run(run_folder, "--format", "onnx")

    assert_one_line_error(result, "not a cifar-engine model")
    assert not (run_folder / "model.onnx").exists()
