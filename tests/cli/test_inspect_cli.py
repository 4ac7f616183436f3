"""`evaluate`, `predict` and `plot` on run folders whose model or data is wrong: one line on
stderr, exit code 2, no traceback."""
import json
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cifar_engine.cli.main import cli, main
from fakes import assert_one_line_error, write_idx, write_image_tree


def run(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run on 3x3x5 images of classes ant, bee and cow; and its images."""
    root = tmp_path_factory.mktemp("inspect")
    images = write_image_tree(root / "images", per_class=(10, 4)).path
    code = main(["train", "--data", str(images), "--out", str(root / "run"), "--hidden", "8",
                 "--batch-size", "5", "--steps", "3", "--cache-dir", str(root / "cache")])
    assert code == 0
    return root / "run", images


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the finished run, to damage."""
    return shutil.copytree(trained[0], tmp_path / "run")


@pytest.fixture
def image(trained):
    return trained[1] / "test" / "bee" / "0000.png"


def _rewrite_model(folder, change):
    """Apply change(arrays) to the arrays of folder/model.npz."""
    with np.load(folder / "model.npz") as z:
        arrays = dict(z)
    change(arrays)
    np.savez(folder / "model.npz", **arrays)


def _spec_hidden(arrays, hidden):
    spec = json.loads(str(arrays["spec"]))
    arrays["spec"] = np.array(json.dumps({**spec, "hidden": hidden}))


def test_evaluate_on_data_of_another_image_shape(run_copy, tmp_path, cache_dir):
    fashion = write_idx(tmp_path / "fashion").path

    result = run("evaluate", run_copy, "--data", fashion, "--cache-dir", cache_dir)

    assert_one_line_error(result, f"--data {fashion}: images are 1x6x5 (C x H x W), the model "
                                  "takes 3x3x5")


def test_evaluate_on_data_of_other_classes(run_copy, tmp_path, cache_dir):
    other = write_image_tree(tmp_path / "other", classes=("ant", "bee", "dog"),
                             per_class=(5, 2)).path

    result = run("evaluate", run_copy, "--data", other, "--cache-dir", cache_dir)

    assert_one_line_error(result, f"--data {other}: classes ant, bee, dog are not the model's "
                                  "ant, bee, cow")


def test_predict_with_a_spec_of_2_to_the_40_hidden_units(run_copy, image):
    _rewrite_model(run_copy, lambda arrays: _spec_hidden(arrays, [2**40]))

    result = run("predict", run_copy, image)

    assert_one_line_error(result, f"{run_copy / 'model.npz'}: damaged cifar-engine model "
                                  "(tensor param/W1 is (8, 45), its spec needs "
                                  "(1099511627776, 45))")


@pytest.mark.parametrize("command", ["predict", "evaluate", "plot"])
def test_a_model_with_nan_weights_is_refused(run_copy, image, command):
    def poison(arrays):
        arrays["param/W2"] = arrays["param/W2"].copy()
        arrays["param/W2"][0, 0] = np.nan

    _rewrite_model(run_copy, poison)

    result = run(command, run_copy, *([image] if command == "predict" else []))

    assert_one_line_error(result, f"{run_copy / 'model.npz'}: damaged cifar-engine model "
                                  "(tensor param/W2 holds NaN or infinite values)")


@pytest.mark.parametrize("row", [slice(None), 0], ids=["every-unit", "one-hidden-unit"])
@pytest.mark.parametrize("sign", [1, -1])
def test_predict_refuses_weights_that_overflow_in_any_layer(run_copy, image, row, sign):
    """However the products are summed, and also when only one hidden unit's
    pre-activation overflows (to -inf, which its ReLU would turn into a finite 0)."""
    def overflow(arrays):
        arrays["param/W1"][row] = sign * np.finfo(np.float32).max / 2
    _rewrite_model(run_copy, overflow)

    result = run("predict", run_copy, image)

    assert_one_line_error(result, f"{run_copy / 'model.npz'}: the model's weights overflow "
                                  "float32: layer 1's outputs reach ")


def test_a_model_of_random_bytes_is_not_an_npz_file(run_copy, image):
    (run_copy / "model.npz").write_bytes(random.Random(0).randbytes(5000))

    result = run("predict", run_copy, image)

    assert_one_line_error(result, f"{run_copy / 'model.npz'}: not a cifar-engine model "
                                  "(not an .npz file)")


def test_the_installed_command_reports_a_damaged_model_in_one_line(run_copy, image):
    (run_copy / "model.npz").write_bytes(b"\x93NUMPY garbage")

    result = subprocess.run([sys.executable, "-m", "cifar_engine.cli.main", "predict",
                             str(run_copy), str(image)], capture_output=True, text=True,
                            timeout=120)

    assert result.returncode == 2
    assert result.stderr == (f"cifar-engine: error: {run_copy / 'model.npz'}: not a "
                             "cifar-engine model (not an .npz file)\n")


def _without_image_shape(arrays):
    arrays["image_shape"] = np.array((), dtype=np.int64)


def test_predict_needs_a_model_that_knows_its_image_shape(run_copy, image):
    _rewrite_model(run_copy, _without_image_shape)

    result = run("predict", run_copy, image)

    assert_one_line_error(result, f"{run_copy / 'model.npz'}: the model has no image shape")


def test_plot_draws_a_model_without_image_shape(run_copy):
    _rewrite_model(run_copy, _without_image_shape)
    (run_copy / "templates.png").unlink()

    result = run("plot", run_copy)

    assert result.exit_code == 0, result.output
    assert (run_copy / "templates.png").stat().st_size > 0


def test_plot_draws_an_unfinished_run_from_its_metrics_and_checkpoint(run_copy):
    for name in ("model.npz", "best.npz", "summary.json", "curves.png", "templates.png"):
        (run_copy / name).unlink()

    result = run("plot", run_copy)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{run_copy / 'curves.png'}: curves of 3 evaluations, to step 3 (metrics.csv)",
        f"{run_copy / 'templates.png'}: first-layer templates of checkpoint.npz"]
    assert (run_copy / "templates.png").stat().st_size > 0


def test_plot_of_a_folder_without_a_run_draws_nothing(tmp_path):
    (tmp_path / "empty").mkdir()

    assert_one_line_error(run("plot", tmp_path / "empty"), "nothing to draw yet")
    assert not list((tmp_path / "empty").iterdir())
