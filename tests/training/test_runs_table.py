"""`cifar-engine runs` and `runs_table`: the runs under a folder side by side."""
import csv
import io
import json
import shutil

import pytest
from click.testing import CliRunner

from cifar_engine.cli.main import cli, main
from cifar_engine.errors import SettingError, UserError
from cifar_engine.training.folder import LOCK_NAME
from cifar_engine.training.runs_table import MAX_DEPTH, RESULTS, find_runs, runs_table
from cifar_engine.util.lock import FileLock
from fakes import assert_one_line_error, write_image_tree


def run(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two finished runs that differ in lam and tta, under runs/."""
    root = tmp_path_factory.mktemp("runs")
    images = write_image_tree(root / "images", per_class=(10, 4)).path
    for name, options in (("a", ["--lam", "0.01"]), ("b", ["--lam", "0.1", "--tta", "flip"])):
        assert main(["train", "--data", str(images), "--out", str(root / "runs" / name),
                     "--hidden", "8", "--batch-size", "5", "--steps", "6", "--eval-every", "3",
                     "--cache-dir", str(root / "cache"), *options]) == 0
    return root / "runs"


@pytest.fixture
def runs(trained, tmp_path):
    return shutil.copytree(trained, tmp_path / "runs")


def test_a_row_per_run_with_the_settings_that_differ(runs):
    rows = runs_table(runs)

    assert [r["run"] for r in rows] == ["a", "b"]
    assert list(rows[0]) == ["run", "status", "lam", "tta", *RESULTS]
    a, b = rows
    assert (a["lam"], a["tta"], b["lam"], b["tta"]) == (0.01, "none", 0.1, "flip")
    summary = json.loads((runs / "b" / "summary.json").read_text())
    assert (b["status"], b["steps"], b["epochs"]) == ("finished", 6, summary["epochs"])
    assert (b["val_acc"], b["test_acc"]) == tuple(summary["without_tta"].values())
    assert (b["val_acc_tta"], b["test_acc_tta"]) == (summary["val_acc"], summary["test_acc"])
    assert a["val_acc_tta"] is None and a["test_acc"] == \
        json.loads((runs / "a" / "summary.json").read_text())["test_acc"]


def test_unfinished_runs_show_their_state_and_last_evaluation(runs):
    (runs / "a" / "summary.json").unlink()  # as a run stopped before its end
    shutil.copytree(runs / "a", runs / "c")
    (runs / "c" / "metrics.csv").unlink()  # a run before its first evaluation
    with FileLock(runs / "a" / LOCK_NAME):  # held as by the process training it
        rows = {r["run"]: r for r in runs_table(runs)}
    assert {name: r["status"] for name, r in rows.items()} == \
        {"a": "training", "b": "finished", "c": "interrupted"}
    assert rows["a"]["steps"] == 6 and rows["a"]["test_acc"] is None
    assert rows["c"]["steps"] is None and rows["c"]["val_acc"] is None
    # once its process is gone, the same run is interrupted
    assert runs_table(runs, sort="status")[1]["status"] == "interrupted"


def test_runs_are_found_in_subfolders_and_searches_to_a_depth(runs):
    deep = runs / "group" / "search" / "best"
    shutil.copytree(runs / "a", deep)
    shutil.copytree(runs / "a", runs / "x" / "y" / "z" / "too-deep")
    shutil.copytree(runs / "a", runs / "b" / "inside-a-run")

    found = [p.relative_to(runs).as_posix() for p in find_runs(runs)]

    assert found == ["a", "b", "group/search/best"] and MAX_DEPTH == 3
    assert [r["run"] for r in runs_table(runs / "group")] == ["search/best"]
    assert [r["run"] for r in runs_table(runs / "a")] == ["."]


def test_sorted_by_accuracy_descending_and_by_others_ascending(runs):
    shutil.copytree(runs / "a", runs / "c")
    summary = json.loads((runs / "c" / "summary.json").read_text())
    (runs / "c" / "summary.json").write_text(json.dumps({**summary, "test_acc": 1.0,
                                                         "steps": 1}))
    by_test = [r["test_acc"] for r in runs_table(runs, sort="test_acc")]
    by_steps = [r["steps"] for r in runs_table(runs, sort="steps")]

    assert by_test == sorted(by_test, reverse=True) and by_test[0] == 1.0
    assert by_steps == [1, 6, 6]
    assert runs_table(runs, sort="test_acc_tta")[0]["run"] == "b"  # the others have none


def test_mistakes_are_one_error_naming_them(runs, tmp_path):
    with pytest.raises(SettingError) as err:
        runs_table(runs, sort="accuracy")
    assert err.value.setting == "sort" and "test_acc" in str(err.value)
    with pytest.raises(UserError, match="no such folder"):
        runs_table(tmp_path / "missing")
    (runs / "b" / "summary.json").write_text("{not json")
    with pytest.raises(UserError, match=f"{runs / 'b' / 'summary.json'}: not a run summary"):
        runs_table(runs)


def test_the_command_prints_an_aligned_table(runs):
    result = run("runs", runs, "--sort", "val_acc")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", "status", "lam", "tta", *RESULTS]
    assert len(lines) == 3 and {line.split()[0] for line in lines[1:]} == {"a", "b"}
    assert len({line.index("finished") for line in lines[1:]}) == 1  # aligned
    assert "-" in lines[1 + [line.split()[0] for line in lines[1:]].index("a")].split()


def test_the_command_writes_csv_with_every_digit(runs):
    result = run("runs", runs, "--format", "csv")

    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    summary = json.loads((runs / "a" / "summary.json").read_text())
    assert [r["run"] for r in rows] == ["a", "b"]
    assert float(rows[0]["test_acc"]) == summary["test_acc"] and rows[0]["test_acc_tta"] == ""


def test_the_command_on_a_bad_sort_or_an_empty_folder(runs, tmp_path):
    assert_one_line_error(run("runs", runs, "--sort", "nope"), "--sort must be one of run, ")
    (tmp_path / "empty").mkdir()
    result = run("runs", tmp_path / "empty")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no run folder" in result.stderr
