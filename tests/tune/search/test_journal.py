"""The search journal: JSON lines from many processes, torn lines, trials' states, the CSV."""
import csv
import json
import math
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cifar_engine.errors import DataError, SettingError, UserError
from cifar_engine.tune.search.journal import ACCURACIES, Journal, record_problem
from properties import damaged, loads_or_refuses, report_inputs  # noqa: F401 (a fixture)

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
    from cifar_engine.tune.search.journal import Journal
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

    from cifar_engine.tune.search.figure import search_figure
    from cifar_engine.tune.search.space import narrow, parse_space, sample

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

    path = tmp_path / "search.png"
    fig = search_figure(journal.finished().values(), space, path)

    assert len([ax for ax in fig.axes if ax.axison]) == len(space)  # a panel per parameter
    assert Image.open(path).size[0] > 800


# -- damaged journals -------------------------------------------------------------------------

def _record_line(**changes):
    record = {"event": "finish", "stage": 0, "trial": 1, "settings": {"lam": 0.01}, "seed": 3,
              "status": "ok", "train_acc": 0.5, "val_acc": 0.4, "test_acc": 0.3,
              "seconds": 1.0, "reason": "", "points": [0.4], "time": 1.0, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not DROP})


DROP = object()


@pytest.mark.parametrize("line, why", [
    (_record_line(status=DROP), "a finish record without its 'status'"),
    (_record_line(stage="0"), "a finish record whose stage is not a whole number >= 0: '0'"),
    (_record_line(trial=-1), "whose trial is not a whole number >= 0"),
    (_record_line(trial=True), "whose trial is not a whole number >= 0"),
    (_record_line(val_acc=float("nan")), "whose val_acc is not None or an accuracy in [0, 1]"),
    (_record_line(val_acc=float("inf")), "whose val_acc is not None or an accuracy in [0, 1]"),
    (_record_line(test_acc=1.5), "whose test_acc is not None or an accuracy in [0, 1]"),
    (_record_line(settings=[1]), "whose settings is not an object"),
    (_record_line(points=[0.1, "x"]), "whose points is not a list of accuracies"),
    (_record_line(status="won"), "whose status is not one of"),
    (_record_line(event="begin"), "not a journal record (event 'begin'"),
    ('{"event": "point", "stage": 0, "trial": 0, "index": 0}', "without its 'val_acc'"),
])
def test_a_record_that_no_writer_writes_is_one_line_naming_the_journal(tmp_path, line, why):
    journal = Journal(tmp_path)
    finish(journal, 0, 0)
    with open(journal.path, "a") as file:
        file.write(line + "\n")

    with pytest.raises(DataError) as caught:
        journal.read()
    assert str(caught.value).startswith(f"{journal.path}: line 2: ")
    assert why in str(caught.value) and "\n" not in str(caught.value)


def test_a_journal_or_lock_that_is_a_folder_is_one_line_naming_it(tmp_path):
    journal = Journal(tmp_path / "a")
    journal.path.mkdir(parents=True)
    with pytest.raises(DataError, match=f"^{journal.path}: cannot read \\(Is a directory\\)$"):
        journal.read()
    with pytest.raises(UserError, match=f"^{journal.path}: cannot write \\(Is a directory\\)$"):
        finish(journal, 0, 0)

    journal = Journal(tmp_path / "b")
    (tmp_path / "b" / "search.jsonl.lock").mkdir(parents=True)
    for write in (lambda: finish(journal, 0, 0), journal.write_csv):
        with pytest.raises(UserError, match=f"^{journal.path}.lock: cannot lock \\("):
            write()


# Any JSON value, and objects that look like records: the keys a record has, any values.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
KEYS = ["event", "stage", "trial", "settings", "seed", "status", *ACCURACIES, "seconds",
        "reason", "points", "index", "time"]
record_like = st.fixed_dictionaries({}, optional={key: json_values for key in KEYS}) | \
    st.builds(lambda base, key, value: {**base, key: value},
              st.sampled_from([json.loads(_record_line()),
                               json.loads(_record_line(event="start")),
                               {"event": "point", "stage": 0, "trial": 0, "index": 0,
                                "val_acc": 0.5}]),
              st.sampled_from(KEYS), json_values)


def _journal_bytes():
    lines = [_record_line(trial=t, val_acc=0.1 * t) for t in range(3)]
    return ("\n".join(lines) + "\n").encode()


def _use_every_reader(journal):
    """What the search reads from a journal, each way it reads it."""
    records = loads_or_refuses("journal", journal.read, journal.path)
    if records is not None:
        journal.finished(records), journal.running(records), journal.results(0, records)
        loads_or_refuses("journal csv", journal.write_csv, journal.path)
    return records


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged(_journal_bytes()))
def test_a_damaged_journal_reads_as_records_or_is_one_line(tmp_path, no_fsync, data):
    journal = Journal(tmp_path)
    journal.path.write_bytes(data)
    records = _use_every_reader(journal)
    assert records is None or all(record_problem(r) is None for r in records)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(record_like | json_values, min_size=1, max_size=4))
@example(lines=[{"event": "finish", "stage": 0, "trial": 0}])
@example(lines=[json.loads(_record_line(stage="0"))])
def test_any_json_in_a_journal_reads_as_records_or_is_one_line(tmp_path, no_fsync, lines):
    journal = Journal(tmp_path)
    journal.path.write_bytes(_journal_bytes() + b"".join(
        json.dumps(line).encode() + b"\n" for line in lines))
    _use_every_reader(journal)


def test_a_line_nested_too_deep_for_json_is_skipped_as_a_fragment(tmp_path):
    journal = Journal(tmp_path)
    journal.path.write_bytes(b"[" * 100_000 + b"\n" + _journal_bytes())

    assert [r["trial"] for r in journal.read()] == [0, 1, 2]
