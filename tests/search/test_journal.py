"""The search journal: JSON lines from many processes, torn lines, trials' states, the CSV."""
import csv
import json
import math
import subprocess
import sys
import textwrap

import pytest

from cifar_engine.errors import SettingError
from cifar_engine.search.journal import Journal

SETTINGS = {"lam": 0.001, "hidden": (50, 50), "batch_norm": True}


def finish(journal, stage, trial, val_acc=0.5, status="ok", **extra):
    return journal.finish(stage, trial, {**SETTINGS, "lam": 0.001 * (trial + 1)}, 100 + trial,
                          status, train_acc=0.6, val_acc=val_acc, test_acc=0.45,
                          seconds=1.5, **extra)


def test_records_read_back_as_written_with_tuples_restored(tmp_path):
    journal = Journal(tmp_path / "search")
    journal.start(1, 0, SETTINGS, 123)
    journal.point(1, 0, 0, 0.31)
    written = journal.finish(1, 0, SETTINGS, 123, "ok", train_acc=0.6, val_acc=0.5,
                             test_acc=0.45, seconds=2.0, points=[0.31, 0.5])

    records = journal.read()

    assert [r["event"] for r in records] == ["start", "point", "finish"]
    assert records[0]["settings"] == SETTINGS and records[0]["seed"] == 123
    assert records[1]["index"] == 0 and records[1]["val_acc"] == 0.31
    assert records[2] == written
    assert records[2]["settings"]["hidden"] == (50, 50)
    lines = (tmp_path / "search" / "search.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(isinstance(json.loads(line), dict) for line in lines)


def test_non_finite_accuracies_are_written_as_none(tmp_path):
    journal = Journal(tmp_path)
    finish(journal, 1, 0, val_acc=math.nan, status="diverged", reason="loss is nan")

    (record,) = journal.read()
    assert record["val_acc"] is None and record["status"] == "diverged"


def test_an_unknown_status_is_an_error(tmp_path):
    with pytest.raises(SettingError, match="status must be one of"):
        finish(Journal(tmp_path), 1, 0, status="done")


def test_finished_and_running(tmp_path):
    journal = Journal(tmp_path)
    for trial in range(4):
        journal.start(1, trial, SETTINGS, trial)
    finish(journal, 1, 2)
    finish(journal, 1, 0, val_acc=0.4)
    journal.start(1, 3, SETTINGS, 3)  # restarted after a crash

    assert list(journal.finished()) == [(1, 0), (1, 2)]
    assert journal.finished()[(1, 0)]["val_acc"] == 0.4
    assert list(journal.running()) == [(1, 1), (1, 3)]
    assert journal.running()[(1, 1)]["pid"] > 0
    assert Journal(tmp_path / "nothing").read() == []


def test_results_give_none_for_trials_that_did_not_end_ok(tmp_path):
    journal = Journal(tmp_path)
    finish(journal, 1, 1, val_acc=0.3, status="pruned")
    finish(journal, 1, 0, val_acc=0.5)
    finish(journal, 2, 0, val_acc=0.6)

    assert [acc for _, acc in journal.results(1)] == [0.5, None]
    assert journal.results(1)[0][0]["lam"] == 0.001


def test_a_line_torn_by_a_killed_writer_is_skipped_and_the_next_starts_fresh(tmp_path):
    journal = Journal(tmp_path)
    finish(journal, 1, 0)
    line = journal.path.read_bytes()
    with open(journal.path, "ab") as file:
        file.write(line[:len(line) // 2])  # kill -9 in the middle of a write

    assert [r["trial"] for r in journal.read()] == [0]

    finish(journal, 1, 1)
    assert [r["trial"] for r in journal.read()] == [0, 1]
    assert journal.path.read_bytes().endswith(b"\n")


WRITER = textwrap.dedent("""
    import sys
    from cifar_engine.search.journal import Journal
    journal = Journal(sys.argv[1])
    worker = int(sys.argv[2])
    for trial in range(30):  # lines far longer than a buffered file's chunks
        journal.start(worker, trial, {"pad": "x" * 65536, "worker": worker}, trial)
""")


def test_many_processes_append_whole_lines(tmp_path):
    workers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(w)])
               for w in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]

    lines = (tmp_path / "search.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3 * 30 + 1
    records = [json.loads(line) for line in lines[:-1]]
    for w in range(3):
        assert [r["trial"] for r in records if r["stage"] == w] == list(range(30))


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.reader(file))


def test_the_csv_has_one_row_per_finished_trial_in_stage_and_trial_order(tmp_path):
    journal = Journal(tmp_path)
    finish(journal, 2, 0, val_acc=0.55)
    finish(journal, 1, 1, val_acc=math.inf, status="failed", reason="out of memory")
    journal.start(1, 2, SETTINGS, 7)
    finish(journal, 1, 0, val_acc=0.5)

    path = journal.write_csv(["lam", "hidden", "batch_norm"])

    assert path == tmp_path / "search.csv"
    header, *rows = read_csv(path)
    assert header == ["stage", "trial", "lam", "hidden", "batch_norm", "train_acc", "val_acc",
                      "test_acc", "seconds", "seed", "status", "reason"]
    assert rows == [
        ["1", "0", "0.001", "50x50", "true", "0.6", "0.5", "0.45", "1.5", "100", "ok", ""],
        ["1", "1", "0.002", "50x50", "true", "0.6", "", "0.45", "1.5", "101", "failed",
         "out of memory"],
        ["2", "0", "0.001", "50x50", "true", "0.6", "0.55", "0.45", "1.5", "100", "ok", ""],
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search.csv", "search.jsonl"]


def test_a_resumed_search_writes_the_same_csv_as_an_uninterrupted_one(tmp_path):
    straight = Journal(tmp_path / "straight")
    for trial in range(4):
        straight.start(1, trial, SETTINGS, trial)
        finish(straight, 1, trial, val_acc=0.1 * trial)

    resumed = Journal(tmp_path / "resumed")
    for trial in (2, 0, 3, 1):  # parallel workers, finishing in any order
        resumed.start(1, trial, SETTINGS, trial)
    for trial in (3, 0):
        finish(resumed, 1, trial, val_acc=0.1 * trial)
    with open(resumed.path, "ab") as file:
        file.write(b'{"event": "fin')  # killed here; then resumed
    for trial in (1, 2):
        resumed.start(1, trial, SETTINGS, trial)
        finish(resumed, 1, trial, val_acc=0.1 * trial)

    assert straight.write_csv().read_bytes() == resumed.write_csv().read_bytes()
    assert len(read_csv(straight.csv_path)) == 5


def test_the_search_figure_is_written_from_the_journal(tmp_path):
    from PIL import Image

    from cifar_engine.plots import search_figure
    from cifar_engine.search.space import narrow, parse_space, sample

    space = parse_space(["lam=1e-5:1e-1:log", "eta_max=0.01:0.2", "hidden=50,100,50x50"],
                        {"lam": float, "eta_max": float, "hidden": tuple})
    journal = Journal(tmp_path / "search")
    stage_space = space
    for stage in (1, 2):
        for trial in range(6):
            settings = sample(stage_space, 0, stage, trial)
            status = ("ok", "pruned", "diverged")[trial % 3]
            journal.finish(stage, trial, settings, trial, status, seconds=1.0,
                           val_acc=None if status == "diverged" else 0.3 + 0.02 * trial)
        stage_space = narrow(space, journal.results(1))

    path = search_figure(journal.finished().values(), space, tmp_path / "search.png")

    assert path == tmp_path / "search.png" and Image.open(path).size[0] > 800
