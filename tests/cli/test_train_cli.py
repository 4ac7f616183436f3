"""`cifar-engine train` and the commands on its run folders, as a user runs them."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cifar_engine.cli.main import cli, main
from cifar_engine.data import dataset_sha256, load_dataset
from fakes import FAST_TRAIN as FAST
from fakes import assert_one_line_error, write_image_tree

CLI = [sys.executable, "-m", "cifar_engine.cli.main"]


def _train(capsys, images, out, *args):
    code = main(["train", "--data", str(images), "--out", str(out), *FAST, *args])
    return code, capsys.readouterr()


def _params(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k.startswith(("param/", "running/"))}


def test_a_run_writes_every_artefact(capsys, images, tmp_path):
    code, out = _train(capsys, images, tmp_path / "run", "--cycles", "1")
    assert code == 0
    assert "test accuracy" in out.out and str(tmp_path / "run") in out.out
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.toml", "metrics.csv", "summary.json", "model.npz", "checkpoint.npz",
            "curves.png", "templates.png"} <= names
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,epoch,eta,train_cost,train_loss,train_acc,val_cost,val_loss,val_acc"


def test_the_config_file_repeats_the_run_exactly(capsys, images, tmp_path):
    _train(capsys, images, tmp_path / "a", "--cycles", "1", "--bn", "--dropout", "0.1")
    code = main(["train", "--config", str(tmp_path / "a" / "config.toml"),
                 "--out", str(tmp_path / "b")])
    assert code == 0
    assert ((tmp_path / "a" / "metrics.csv").read_text()
            == (tmp_path / "b" / "metrics.csv").read_text())


def test_a_config_file_refuses_a_data_set_that_changed_since_its_run(capsys, tmp_path):
    root = write_image_tree(tmp_path / "images", per_class=(30, 5), size=(8, 8)).path
    assert _train(capsys, root, tmp_path / "a", "--cycles", "1")[0] == 0
    config = (tmp_path / "a" / "config.toml").read_text()
    digest = dataset_sha256(load_dataset(root))
    assert f'data = "{root}"' in config and f'data_sha256 = "{digest}"' in config
    first = root / "train" / "ant" / "0000.png"
    Image.fromarray(255 - np.asarray(Image.open(first))).save(first)  # other pixels

    code = main(["train", "--config", str(tmp_path / "a" / "config.toml"),
                 "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"cifar-engine: error: --data-sha256 is {digest[:16]}...: {root} "
                          f"now holds a different data set (sha256 "), err
    assert not (tmp_path / "b").exists()


def test_dry_run_prints_the_plan_and_writes_only_the_schedule(capsys, images, tmp_path):
    code, out = _train(capsys, images, tmp_path / "dry", "--cycles", "2", "--dry-run")
    assert code == 0
    assert "steps: 48" in out.out and "n_s 12" in out.out
    assert {p.name for p in (tmp_path / "dry").iterdir()} == {"schedule.png"}


def test_flags_turn_off_what_a_preset_turns_on(capsys, images, tmp_path):
    code = main(["train", "--preset", "best-10min", "--data", str(images), "--n-val", "60",
                 "--hidden", "16", "--pca", "24", "--batch-size", "10", "--steps", "4", "--no-flip",
                 "--no-bn", "--tta", "none", "--out", str(tmp_path / "run")])
    assert code == 0
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "flip = false" in config and "batch_norm = false" in config
    assert 'tta = "none"' in config and "zca = 0.1" in config
    assert "without_tta" not in json.loads((tmp_path / "run" / "summary.json").read_text())


def test_a_preset_with_test_time_flips_reports_both_accuracies(capsys, images, tmp_path):
    code = main(["train", "--preset", "best-10min", "--data", str(images), "--n-val", "60",
                 "--hidden", "16", "--pca", "24", "--batch-size", "10", "--steps", "4",
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["tta"] == "flip"
    assert (f"test accuracy {summary['test_acc']:.2%}" in out and "with test-time flips "
            f"(without: test {summary['without_tta']['test_acc']:.2%}" in out)


@pytest.mark.parametrize("args, option", [
    (["--eta-min", "0.5", "--eta-max", "0.1"], "--eta-min"),
    (["--lam", "-1"], "--lam"),
    (["--dropout", "1"], "--dropout"),
    (["--hidden", "50,0"], "--hidden"),
    (["--hidden", ""], "--hidden"),
    (["--batch-size", "1000"], "--batch-size"),
    (["--preset", "nope"], "--preset"),
])
def test_invalid_options_end_in_one_line_and_exit_2(capsys, images, tmp_path, args, option):
    code, out = _train(capsys, images, tmp_path / "bad", *args)
    assert code == 2
    assert len(out.err.strip().splitlines()) == 1 and option in out.err
    assert not (tmp_path / "bad" / "metrics.csv").exists()


def test_config_files_that_are_not_toml_or_have_unknown_keys_are_refused(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    assert main(["train", "--config", str(bad)]) == 2
    assert "not a TOML file" in capsys.readouterr().err
    bad.write_text('lam = 0.1\nwarp_speed = 9\n')
    assert main(["train", "--config", str(bad)]) == 2
    assert "warp_speed is not a setting" in capsys.readouterr().err


def test_an_unwritable_out_dir_and_a_resume_without_checkpoint_are_refused(capsys, images,
                                                                           tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out = _train(capsys, images, blocker / "run")
    assert code == 2 and "--out" in out.err
    (tmp_path / "empty").mkdir()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_a_diverging_run_exits_3_naming_step_and_eta(capsys, images, tmp_path):
    code, out = _train(capsys, images, tmp_path / "div", "--schedule", "constant",
                       "--eta", "1e9", "--epochs", "3")
    assert code == 3
    assert "not finite at step" in out.err and "eta 1e+09" in out.err
    assert len(out.err.strip().splitlines()) == 1


def test_sigterm_checkpoints_and_resume_matches_the_uninterrupted_run(images, tmp_path):
    args = ["--data", str(images), *FAST, "--bn", "--momentum", "0.9", "--steps", "60000",
            "--eval-every", "1500", "--checkpoint-every", "700", "--flip"]
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    whole = subprocess.run([*CLI, "train", *args, "--out", str(tmp_path / "whole")],
                           env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([*CLI, "train", *args, "--out", str(tmp_path / "cut")], env=env,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # notes (and, on a slow machine, compiling) come first;
        if line.startswith("step "):  # the first evaluation's line: training is under way
            break
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait() == 143, err  # 128 + SIGTERM, as a shell reports it
    assert "resume with: cifar-engine train --resume" in err
    resumed = subprocess.run([*CLI, "train", "--resume", str(tmp_path / "cut")], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _params(tmp_path / "whole" / "model.npz"), _params(tmp_path / "cut" / "model.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert ((tmp_path / "whole" / "metrics.csv").read_text()
            == (tmp_path / "cut" / "metrics.csv").read_text())


def test_presets_are_listed_with_their_published_figures(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "two-layer-one-cycle" in out and "45.5%" in out and "init-sigma-1e-4-bn" in out


def test_evaluate_and_plot_read_a_finished_run(capsys, images, tmp_path):
    _train(capsys, images, tmp_path / "run", "--cycles", "1")
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "test  accuracy" in out and "confusion matrix" in out
    (tmp_path / "run" / "curves.png").unlink()
    assert main(["plot", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0


def test_predict_names_the_class_of_image_files(capsys, images, tmp_path):
    _train(capsys, images, tmp_path / "run", "--cycles", "1")
    files = [str(images / "test" / "bee" / "0000.png"), str(images / "test" / "cow" / "0001.png")]
    assert main(["predict", str(tmp_path / "run"), *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for path, line in zip(files, lines):
        name, answer = line.rsplit(": ", 1)
        assert name == path and answer.split(" (")[0] in {"ant", "bee", "cow"}
        assert answer.endswith("%)")


def test_predict_refuses_an_image_of_another_size(capsys, images, tmp_path):
    from PIL import Image

    _train(capsys, images, tmp_path / "run", "--steps", "3")
    Image.new("RGB", (9, 8)).save(tmp_path / "wide.png")
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "wide.png")]) == 2
    err = capsys.readouterr().err
    assert "wide.png: image is 9x8, the model takes 8x8" in err


@pytest.mark.parametrize("value, message", [
    ("-1", "--zca must be 0 or in [1e-08, inf), got -1.0"),
    ("nan", "--zca must be a number, got nan"),
    ("inf", "--zca must be 0 or in [1e-08, inf), got inf"),
])
def test_a_zca_eps_below_0_or_not_finite_is_one_line(images, tmp_path, value, message):
    result = CliRunner().invoke(cli, ["train", "--data", str(images), "--out",
                                      str(tmp_path / "run"), "--zca", value])

    assert_one_line_error(result, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value, message", [
    ("-1", "--pca must be in [0, 16777216], got -1"),
    ("100000", "--pca 100000 is more components than the images' "),
])
def test_a_pca_count_out_of_range_is_one_line(images, tmp_path, value, message):
    result = CliRunner().invoke(cli, ["train", "--data", str(images), "--out",
                                      str(tmp_path / "run"), "--batch-size", "10", "--zca", "0.1",
                                      "--pca", value])

    assert_one_line_error(result, message)
    assert not (tmp_path / "run").exists()


def test_zca_is_an_option_of_train_with_its_help():
    result = CliRunner().invoke(cli, ["train", "--help"])

    text = " ".join(result.output.split()).replace("- ", "-")  # click wraps the help
    assert "--zca EPS ZCA-whiten the inputs with eps relative to the mean eigenvalue (0.1 " \
           "works well); 0 = per-feature standardisation. [0 or in [1e-08, inf)] [default: 0.0]" in text


def test_a_zca_model_predicts_raw_image_files_as_its_network_predicts_the_arrays(
        capsys, images, tmp_path):
    from cifar_engine import load_dataset, load_network

    code, out = _train(capsys, images, tmp_path / "run", "--cycles", "1", "--zca", "0.1")
    assert code == 0, out.err
    files = sorted((images / "test").glob("*/*.png"))  # class, then file: the arrays' order
    assert main(["predict", str(tmp_path / "run"), *map(str, files)]) == 0
    lines = capsys.readouterr().out.splitlines()

    net, _ = load_network(tmp_path / "run" / "model.npz")
    data = load_dataset(images)
    assert net.preprocessing.kind == "zca" and len(data.test_images) == len(files) == 60
    expected = [net.class_names[k] for k in net.predict(data.test_images)]
    assert [line.rsplit(": ", 1)[1].split(" (")[0] for line in lines] == expected
    assert [line.rsplit(": ", 1)[0] for line in lines] == list(map(str, files))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["preprocessing"] == {"kind": "zca", "eps": 0.1}
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert f"test  accuracy {summary['test_acc']:.4f}" in capsys.readouterr().out


@pytest.mark.parametrize("files, holds", [
    (["config.toml", "metrics.csv", "schedule.png"], "holds another run (config.toml, metrics.csv)"),
    (["lr_range.json"], "holds an LR range test (lr_range.json)"),
    (["search.json"], "holds a search (search.json)")])
def test_a_dry_run_claims_its_folder_as_a_run_would(capsys, images, tmp_path, files, holds):
    for name in files:
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / name).write_text("another run's")

    code, out = _train(capsys, images, tmp_path / "run", "--cycles", "1", "--dry-run")

    assert code == 2 and out.out == ""
    assert out.err == f"cifar-engine: error: --out {tmp_path / 'run'} {holds}: " + (
        "choose another folder, or replace it with --overwrite\n" if "another run" in holds
        else "choose another folder\n")
    assert all((tmp_path / "run" / name).read_text() == "another run's" for name in files)


def test_a_dry_run_with_overwrite_replaces_nothing(capsys, images, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.npz").write_text("another run's")

    code, out = _train(capsys, images, tmp_path / "run", "--cycles", "1", "--dry-run",
                       "--overwrite")

    assert code == 0 and "schedule: not drawn" in out.out
    assert os.listdir(tmp_path / "run") == ["model.npz"]


@pytest.mark.parametrize("stop", ["--cycles", "--epochs", "--steps"])
def test_a_stop_rule_of_zero_is_refused_not_taken_for_the_default(capsys, images, tmp_path,
                                                                  stop):
    code, out = _train(capsys, images, tmp_path / "run", stop, "0")

    assert code == 2 and out.err == (f"cifar-engine: error: {stop} must be >= 1, got 0 (leave "
                                     f"it out for the default length)\n")
    assert not (tmp_path / "run").exists()


def _shell(command, *args):
    """`command` run by sh with the installed command line's argv as "$@"."""
    return subprocess.run(["sh", "-c", command, "sh", *CLI, *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("redirect, why", [(">&-", "Bad file descriptor"),
                                           ("> /dev/full", "No space left on device")])
def test_standard_output_that_cannot_be_written_ends_in_one_line(redirect, why):
    result = _shell(f'"$@" {redirect}', "presets")

    assert result.returncode == 2
    assert result.stderr == f"cifar-engine: error: cannot write to standard output ({why})\n"


def test_a_run_whose_report_cannot_be_written_keeps_its_files(images, tmp_path):
    result = _shell('"$@" > /dev/full', "train", "--data", images, "--out", tmp_path / "run",
                    *FAST, "--steps", "6")

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == ("cifar-engine: error: cannot write to standard "
                                              "output (No space left on device)")
    assert "Traceback" not in result.stderr
    assert (tmp_path / "run" / "summary.json").exists() and (tmp_path / "run" / "model.npz").exists()

