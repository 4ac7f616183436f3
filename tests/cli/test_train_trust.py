"""`cifar-engine train` as a hostile tester runs it: one owner per run folder, options that
do what --help says, and one line with exit 2 for every mistake."""
import csv
import json
import os
import signal

import numpy as np
import pytest

from cifar_engine.cli.main import main
from cifar_engine.training.folder import RunFolder
from fakes import FAST_TRAIN as FAST


def _run(capsys, *args):
    code = main(["train", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(code, err, *fragments):
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("args, fragment", [
    (["--seed", "-1"], "--seed must be in"),
    (["--seed", "1180591620717411303424"], "--seed must be in"),
    (["--seed", "1180591620717411303424", "--dry-run"], "--seed must be in"),
    (["--hidden", "1000000000"], "--hidden gives a network that needs"),
    (["--steps", "100000000000", "--dry-run"], "--steps must be in"),
    (["--epochs", "999999999", "--dry-run"], "--epochs gives a run of"),
    (["--translate", "1000"], "--translate must be less than the images' height"),
    (["--n-val", "50"], "--n-val applies to --split all only"),
    (["--eta", "nan", "--schedule", "constant"], "--eta must be a number, got nan"),
    (["--lam", "inf"], "--lam must be"),
])
def test_bad_values_end_in_one_line_naming_the_flag(capsys, images, tmp_path, args, fragment):
    code, _, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "r"), *FAST,
                        *args)
    _one_line_error(code, err, fragment)
    assert not (tmp_path / "r").exists()  # a failed start leaves no folder behind


def test_a_flag_beside_a_preset_replaces_its_stop_rule(capsys, images, tmp_path):
    code, out, err = _run(capsys, "--preset", "two-layer-tuned", "--data", str(images),
                          "--n-val", "50", "--steps", "30", "--dry-run",
                          "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert "steps: 30 " in out


def test_cyclical_settings_without_a_schedule_train_triangular(capsys, images, tmp_path):
    code, out, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "r"),
                          "--hidden", "8", "--batch-size", "10", "--eta-min", "1e-5",
                          "--eta-max", "0.1", "--n-s", "6", "--cycles", "1")
    assert code == 0, err
    config = (tmp_path / "r" / "config.toml").read_text()
    assert config.startswith("# schedule = 'triangular'") and 'schedule = "triangular"' in config
    code, _, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "c"),
                        "--schedule", "constant", "--cycles", "3")
    _one_line_error(code, err, "--cycles needs a cyclical --schedule")


def test_a_second_writer_of_a_run_folder_is_refused(capsys, images, tmp_path):
    holder = RunFolder(tmp_path / "r").claim_new()  # another run owns the folder
    try:
        code, _, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "r"), *FAST,
                            "--steps", "6")
    finally:
        holder.release()
    _one_line_error(code, err, "--out", str(os.getpid()))


def test_a_new_run_into_an_old_runs_folder_needs_overwrite(capsys, images, tmp_path):
    out = str(tmp_path / "r")
    assert _run(capsys, "--data", str(images), "--out", out, *FAST, "--steps", "6")[0] == 0
    code, _, err = _run(capsys, "--data", str(images), "--out", out, *FAST, "--steps", "12")
    _one_line_error(code, err, "--overwrite")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["steps"] == 6
    code, _, err = _run(capsys, "--data", str(images), "--out", out, *FAST, "--steps", "12",
                        "--overwrite")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["steps"] == 12


def test_resume_applies_a_new_stop_rule_and_refuses_other_changes(capsys, images, tmp_path):
    out = tmp_path / "r"
    args = ["--data", str(images), "--out", str(out), *FAST, "--steps", "12",
            "--checkpoint-every", "6"]
    assert _run(capsys, *args)[0] == 0
    code, _, err = _run(capsys, "--resume", str(out), "--lam", "3")
    _one_line_error(code, err, "--lam cannot change when resuming")
    code, _, err = _run(capsys, "--resume", str(out), "--steps", "5", "--out", "other")
    assert code == 2 and "give no --preset, --config, --out" in err
    code, _, err = _run(capsys, "--resume", str(out), "--steps", "18")
    assert code == 0, err
    assert "resumed with steps = 18 (was 12)" in err
    assert json.loads((out / "summary.json").read_text())["steps"] == 18
    assert "resumed with steps = 18" in (out / "config.toml").read_text()
    code, _, err = _run(capsys, "--resume", str(out), "--steps", "5")
    _one_line_error(code, err, "--steps ends the run at step 5, before its checkpoint")


def test_resume_of_a_config_toml_that_is_a_folder_is_one_line(capsys, tmp_path):
    (tmp_path / "r" / "config.toml").mkdir(parents=True)
    code, _, err = _run(capsys, "--resume", str(tmp_path / "r"))
    _one_line_error(code, err, "config.toml")


def test_a_divergence_before_any_checkpoint_does_not_claim_one(capsys, images, tmp_path):
    code, _, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "r"),
                        "--hidden", "16", "--batch-size", "10", "--schedule", "constant",
                        "--eta", "1e9", "--epochs", "3")
    assert code == 3 and "no checkpoint was written" in err and "is kept" not in err


def test_sigterm_during_start_up_is_one_line_and_leaves_no_temp_file(capsys, images, tmp_path,
                                                                      monkeypatch):
    import cifar_engine.training.run as training

    real_prepare = training.prepare

    def prepare_then_terminated(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return prepared

    monkeypatch.setattr(training, "prepare", prepare_then_terminated)
    code, _, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "r"), *FAST)
    assert code == 143 and err.strip() == "cifar-engine: stopped by SIGTERM"
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob(".*tmp"))


def test_the_first_run_says_it_compiles_and_times_training_apart(capsys, images, tmp_path,
                                                                  monkeypatch):
    import cifar_engine.training.loop as trainer

    monkeypatch.setattr(trainer, "COMPILE_NOTICE_AFTER", 0.0)  # as if the cache were cold
    code, out, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "r"), *FAST,
                          "--steps", "12")
    assert code == 0, err
    lines = err.splitlines()
    assert lines[0].startswith("compiling the kernels (once per install")
    assert lines[1].startswith("kernels compiled in ")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["compile_seconds"] >= 0 and summary["seconds"] >= 0
    assert np.isfinite(summary["test_acc"])


def test_a_one_cycle_run_warms_up_then_anneals(capsys, images, tmp_path):
    code, out, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "r"),
                          "--hidden", "8", "--batch-size", "10", "--schedule", "one-cycle",
                          "--eta-min", "1e-3", "--eta-max", "0.05", "--warmup", "0.25",
                          "--epochs", "4", "--eval-every", "2")
    assert code == 0, err
    with open(tmp_path / "r" / "metrics.csv") as file:
        etas = [float(row["eta"]) for row in csv.DictReader(file)]
    peak = etas.index(max(etas))
    assert 0 < peak < len(etas) - 1 and etas[-1] < etas[peak] / 10
    code, _, err = _run(capsys, "--data", str(images), "--out", str(tmp_path / "c"),
                        "--schedule", "one-cycle", "--cycles", "2")
    _one_line_error(code, err, "--cycles needs a cyclical --schedule, got one-cycle")


def test_the_run_keeps_its_best_validation_model_beside_the_final_one(capsys, images,
                                                                       tmp_path):
    from cifar_engine.data import load_dataset, make_split
    from cifar_engine.model.npz import load_network

    run = tmp_path / "r"
    code, _, err = _run(capsys, "--data", str(images), "--out", str(run), *FAST, "--cycles", "2",
                        "--eval-every", "3")
    assert code == 0, err
    with open(run / "metrics.csv") as file:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]
    best_row = max(rows, key=lambda r: r["val_acc"])  # the first of equal bests
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["step"] == best_row["step"]
    assert summary["best"]["val_acc"] == best_row["val_acc"]
    split = make_split(load_dataset(images), "batch1")
    best, _ = load_network(run / "best.npz", max_batch=100)
    assert best.evaluate(split.val.images, split.val.labels,
                         split.val.index)["accuracy"] == best_row["val_acc"]
    assert best.evaluate(split.test.images, split.test.labels,
                         split.test.index)["accuracy"] == summary["best"]["test_acc"]
    assert main(["evaluate", str(run), "--model", "best"]) == 0
    assert f"val   accuracy {best_row['val_acc']:.4f}" in capsys.readouterr().out


def test_evaluate_and_predict_take_test_time_flips(capsys, images, tmp_path):
    run = tmp_path / "r"
    assert _run(capsys, "--data", str(images), "--out", str(run), *FAST, "--cycles", "1")[0] == 0
    assert main(["evaluate", str(run), "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert "test  accuracy" in out and "confusion matrix" in out
    image = str(images / "test" / "bee" / "0000.png")
    assert main(["predict", str(run), "--tta", "flip", "--model", "best", image]) == 0
    assert capsys.readouterr().out.startswith(image + ": ")
