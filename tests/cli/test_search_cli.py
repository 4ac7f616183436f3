"""`cifar-engine search` as a user runs it: tables per stage, one-line errors before any trial,
resumes that refuse changed options, and a search killed with SIGKILL that resumes to the
table of an uninterrupted one. `images` is conftest's tiny image folder."""
import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from cifar_engine.cli.main import main
from cifar_engine.tune.search.journal import Journal

CLI = [sys.executable, "-m", "cifar_engine.cli.main", "search"]
SEARCH = ["--batch-size", "10", "--n-s", "2ep", "--param", "lam=1e-5:1e-1:log",
          "--param", "eta_max=0.01:0.1:log", "--param", "hidden=8,16",
          "--stage", "6:1cycles", "--stage", "3:2cycles"]
STARTUP_TIMEOUT = 300  # seconds; a cold Numba cache compiles every kernel first


def _run(capsys, *args):
    code = main(["search", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], err


def _table(folder):
    """search.csv's rows but for seconds, the one column that differs run to run."""
    with open(folder / "search.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


@pytest.mark.parametrize("args, fragment", [
    (["--param", "lam=0.1:0.01"], "--param lam: low (0.1) must be < high (0.01)"),
    (["--param", "lam=0:1:log"], "--param lam: a log range must stay above 0"),
    (["--param", "lam=-1:1"], "--lam must be in [0, inf), got -1.0"),
    (["--param", "dropout=0.1,1.5"], "--dropout must be in [0, 1), got 1.5"),
    (["--param", "speed=1:2"], "--param 'speed' is not a setting to search"),
    (["--param", "seed=1:2"], "--param 'seed' is not a setting to search"),
    (["--param", "lam=0:1", "--param", "lam=0.1,0.2"], "--param lam is given twice"),
    (["--lam", "0.1"], "--param is missing"),
    (["--param", "lam=0:1", "--lam", "0.1"], "--lam is searched (--param)"),
    (["--param", "lam=0:1", "--stage", "0:2cycles"], "--stage '0:2cycles': write N_TRIALS"),
    (["--param", "lam=0:1", "--stage", "4:2"], "--stage '2': write a whole number and a unit"),
    (["--param", "lam=0:1", "--stage", "4:2weeks"], "--stage"),
    (["--param", "lam=0:1", "--schedule", "constant", "--stage", "4:2cycles"],
     "--stage 4:2cycles: --cycles needs a cyclical --schedule"),
    (["--param", "lam=0:1", "--epochs", "3"], "--epochs is set per stage"),
    (["--param", "lam=0:1", "--top-k", "0"], "--top-k must be a whole number >= 1"),
    (["--param", "lam=0:1", "--retrain-best", "3"], "--retrain-best '3'"),
    (["--param", "lam=0:1", "--workers", "0"], "--workers"),
    (["--param", "lam=0:1", "--workers", "2", "--dask", "tcp://127.0.0.1:1"],
     "--workers or --dask"),
    (["--param", "lam=0:1", "--stage", "1000000000000:1steps"], "at most 10000 trials a stage"),
    (["--param", "lam=0:1", "--stage", "100000000:1steps"], "at most 10000 trials a stage"),
    (["--param", "lam=0:1", "--stage", "4:10000000000steps"], "must be at most 1000000000"),
    (["--param", "hidden=8,1000000x1000000", "--stage", "2:1cycles"],
     "--param hidden=1000000x1000000: --hidden gives a network that needs "),
])
def test_bad_input_ends_in_one_line_before_any_trial(capsys, images, tmp_path, args,
                                                      fragment):
    code, _, err = _run(capsys, "--data", images, "--out", tmp_path / "s", *args)
    _one_line_error(code, err, fragment)
    assert not (tmp_path / "s").exists()


def test_missing_data_ends_in_one_line_before_any_trial(capsys, tmp_path):
    code, _, err = _run(capsys, "--data", tmp_path / "nowhere", "--out", tmp_path / "s",
                        "--param", "lam=0:1")
    _one_line_error(code, err, "nowhere")
    assert not (tmp_path / "s").exists()


def _tables(out):
    """The stage tables printed: lists of {column: text}."""
    tables, lines = [], out.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("stage  trial"):
            head = line.split()
            rows = []
            for row in lines[k + 1:]:
                if not row[:1].isdigit():
                    break
                rows.append(dict(zip(head, row.split())))
            tables.append(rows)
    return tables


def test_a_search_prints_each_stage_best_first_then_the_winner(capsys, images, tmp_path):
    code, out, err = _run(capsys, "--data", images, "--out", tmp_path / "s", *SEARCH,
                          "--retrain-best", "2cycles")
    assert code == 0, err
    first, second = _tables(out)
    assert [len(first), len(second)] == [6, 3]
    for rows in (first, second):
        vals = [float(r["val"]) for r in rows]
        assert vals == sorted(vals, reverse=True)
    assert list(first[0])[:5] == ["stage", "trial", "lam", "eta_max", "hidden"]
    best = max(_table(tmp_path / "s"),  # ties: the later stage, then the earlier trial
               key=lambda r: (float(r["val_acc"]), int(r["stage"]), -int(r["trial"])))
    assert f"best: stage {best['stage']} trial {best['trial']}: " in out
    assert "retrained: test accuracy " in out and (tmp_path / "s/best/model.npz").is_file()
    assert err.count("stage 0 trial") == 6 and "note: schedule = 'triangular'" in err

    code, out, err = _run(capsys, "--resume", tmp_path / "s")
    assert code == 0, err
    assert "stage 0: 6 trials of 1cycles (6 finished before)" in out
    assert _tables(out) == [first, second] and "stage 0 trial" not in err


@pytest.fixture(scope="module")
def one_stage(images, tmp_path_factory):
    """The folder of a finished one-stage search."""
    folder = tmp_path_factory.mktemp("searches") / "s"
    assert main(["search", "--data", str(images), "--out", str(folder), "--cache-dir",
                 str(folder.parent / "cache"), *SEARCH[:-2]]) == 0
    return folder


@pytest.mark.parametrize("args, fragment", [
    (["--seed", "3"], "--seed cannot change when resuming"),
    (["--stage", "6:2cycles"], "--stage cannot change when resuming"),
    (["--param", "lam=1e-5:1e-2:log"], "--param cannot change when resuming"),
    (["--prune"], "--prune cannot change when resuming"),
    (["--retrain-best", "2cycles"], "--retrain-best cannot change when resuming"),
    (["--momentum", "0.5"], "--momentum cannot change when resuming (the search has 0.0)"),
    (["--lam", "0.5"], "--lam is searched or set per stage"),
    (["--out", "elsewhere"], "give no --preset, --config or --out"),
])
def test_a_resume_refuses_options_that_change_the_search(capsys, one_stage, args, fragment):
    journal = Journal(one_stage).read()
    code, _, err = _run(capsys, "--resume", one_stage, *args)
    _one_line_error(code, err, fragment)
    assert Journal(one_stage).read() == journal


def test_a_resume_takes_the_options_it_was_given_unchanged(capsys, one_stage):
    code, out, err = _run(capsys, "--resume", one_stage, "--seed", "0", "--batch-size", "10",
                          "--stage", "6:1cycles", "--top-k", "2")
    assert code == 0, err
    assert "(6 finished before)" in out


def test_a_resume_needs_a_search_folder(capsys, tmp_path):
    code, _, err = _run(capsys, "--resume", tmp_path)
    _one_line_error(code, err, f"--resume {tmp_path}: no search.json there")


def _kill_after(command, journal, finished):
    """Start `command`; SIGKILL it as soon as `finished` trials have finished and another
    has started. Returns the finish records written before the kill."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while (len(journal.finished()) < finished or not journal.running()) and \
                proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        err = proc.communicate()[1]
    assert proc.returncode == -signal.SIGKILL, f"the search ended before it was killed: {err}"
    assert len(journal.finished()) >= finished, "no trial finished in time"
    return journal.finished()


def test_a_search_killed_mid_stage_resumes_to_the_uninterrupted_table(capsys, images,
                                                                       tmp_path):
    # trials of about 0.1 s, so that the kill lands while one runs
    args = ["--data", str(images), "--batch-size", "1", "--param", "lam=1e-5:1e-1:log",
            "--param", "eta_max=0.001:0.01:log", "--n-s", "3ep", "--stage", "5:1cycles",
            "--stage", "3:1cycles"]
    journal = Journal(tmp_path / "cut")
    before = _kill_after([*CLI, *args, "--out", str(journal.folder)], journal, 2)
    assert len(before) < 8  # killed before the search ended

    code, _, err = _run(capsys, "--resume", journal.folder)
    assert code == 0, err
    code, _, err = _run(capsys, *args, "--out", tmp_path / "whole")
    assert code == 0, err
    assert _table(journal.folder) == _table(tmp_path / "whole")
    starts = [(r["stage"], r["trial"]) for r in journal.read() if r["event"] == "start"]
    assert all(starts.count(key) == 1 for key in before)
    assert len(journal.finished()) == 8


@pytest.mark.parametrize("files", [["config.toml", "model.npz"], ["lr_range.json"]])
def test_a_folder_of_another_kind_of_run_is_refused_before_any_trial(capsys, images,
                                                                     tmp_path, files):
    (tmp_path / "run").mkdir()
    for name in files:
        (tmp_path / "run" / name).write_text("another run's")

    code, out, err = _run(capsys, "--data", images, *SEARCH, "--out", tmp_path / "run")

    _one_line_error(code, err, f"--out {tmp_path / 'run'} holds ", f"({files[0]}",
                    "choose another folder")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(files)


def _damaged_copy(one_stage, tmp_path, damage):
    folder = tmp_path / "s"
    shutil.copytree(one_stage, folder)
    return damage(folder)


def _append(folder, line):
    with open(folder / "search.jsonl", "a") as file:
        file.write(line + "\n")
    return folder / "search.jsonl"


def _mkdir_in_place(path):
    path.unlink(missing_ok=True)
    path.mkdir()
    return path


DAMAGE = {
    "a record without its keys": lambda f: _append(f, '{"event": "finish", "stage": 0, '
                                                      '"trial": 0}'),
    "a stage given as a string": lambda f: _append(f, json.dumps(
        {**Journal(f).read()[-1], "stage": "0", "settings": {}})),
    "a trial the stage does not have": lambda f: _append(f, json.dumps(
        {**Journal(f).read()[-1], "trial": 99, "val_acc": 0.99})),
    "search.jsonl a folder": lambda f: _mkdir_in_place(f / "search.jsonl"),
    ".lock a folder": lambda f: _mkdir_in_place(f / ".lock"),
    "search.json a folder": lambda f: _mkdir_in_place(f / "search.json"),
    "search.json not a plan": lambda f: (f / "search.json").write_text("[1]") and
    f / "search.json",
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE)
def test_resuming_a_damaged_search_folder_is_one_line_naming_the_file(capsys, one_stage,
                                                                      tmp_path, damage):
    named = _damaged_copy(one_stage, tmp_path, damage)
    code, _, err = _run(capsys, "--resume", tmp_path / "s")
    _one_line_error(code, err, "cifar-engine: error: ", f" {named}: " if named.name == ".lock"
                    else f"error: {named}: ")


def test_resuming_a_finished_search_writes_its_deleted_table_again(capsys, one_stage, tmp_path):
    folder = _damaged_copy(one_stage, tmp_path, lambda f: f)
    rows = _table(folder)
    (folder / "search.csv").unlink()

    code, _, err = _run(capsys, "--resume", folder)
    assert code == 0, err
    assert _table(folder) == rows


def test_a_search_whose_every_trial_fails_exits_2_with_one_error_line(capsys, images, tmp_path):
    code, out, err = _run(capsys, "--data", images, "--out", tmp_path / "s", "--schedule",
                          "constant", "--param", "batch_size=1000,2000", "--stage", "2:1epochs")
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("cifar-engine: error: ")]
    assert errors == [err.splitlines()[-1]]
    assert errors[0].startswith(f"cifar-engine: error: {tmp_path / 's'}: no trial of the search "
                                f"ended ok (2 failed)")
    assert len(_table(tmp_path / "s")) == 2
