"""Run folders: one owner per folder (claims), and metrics.csv read back or refused in one line."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cifar_engine.errors import SettingError, UserError
from cifar_engine.training.folder import FIGURES, KINDS, RUN_FILES, RunFolder
from cifar_engine.training.loop import METRIC_COLUMNS
from cifar_engine.util.atomic import temp_prefix

# Claims argv[1] for a new run, says so, and holds it until killed.
CLAIMER = """
import sys, time
from cifar_engine.training.folder import RunFolder
folder = RunFolder(sys.argv[1]).claim_new()
print("claimed", flush=True)
time.sleep(60)
"""


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def flags(err):
    """A SettingError as the command line spells it."""
    return err.render(lambda name: "--" + name.replace("_", "-"))


def _names(folder):
    return sorted(os.listdir(folder))


def _fill(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("from an earlier run")


# -- claiming a folder for a new run ----------------------------------------------------------

def test_a_new_run_makes_its_folder_and_holds_it_until_released(tmp_path):
    folder = RunFolder(tmp_path / "runs" / "a").claim_new()

    assert folder.claimed and _names(folder.path) == [".lock"]
    folder.write_text(folder.config, "seed = 1\n")
    folder.release()

    assert not folder.claimed and _names(folder.path) == ["config.toml"]


def test_a_folder_made_for_a_run_that_wrote_nothing_is_removed_with_its_parents(tmp_path):
    (tmp_path / "keep").mkdir()

    with RunFolder(tmp_path / "keep" / "runs" / "a").claim_new():
        pass

    assert _names(tmp_path) == ["keep"] and _names(tmp_path / "keep") == []


def test_release_can_keep_an_empty_folder_and_never_removes_one_it_did_not_make(tmp_path):
    RunFolder(tmp_path / "a").claim_new().release(remove_if_empty=False)
    (tmp_path / "b").mkdir()
    RunFolder(tmp_path / "b").claim_new().release()

    assert _names(tmp_path / "a") == [] and _names(tmp_path / "b") == []


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with RunFolder(tmp_path / "a").claim_new():
            raise RuntimeError("the data would not load")

    assert _names(tmp_path) == []


@pytest.mark.parametrize("found", [["config.toml"], ["metrics.csv", "summary.json", "model.npz"]])
def test_a_folder_holding_another_run_is_refused_in_one_line(tmp_path, found):
    _fill(tmp_path / "a", found)

    with pytest.raises(SettingError) as err:
        RunFolder(tmp_path / "a").claim_new()

    assert err.value.setting == "out"
    assert flags(err.value) == (f"--out {tmp_path / 'a'} holds another run ({', '.join(found)}): "
                                f"choose another folder, or replace it with --overwrite")
    assert _names(tmp_path / "a") == sorted(found)  # untouched, and the lock given back


def test_an_unfinished_run_is_refused_with_the_way_to_continue_it(tmp_path):
    _fill(tmp_path / "a", ["config.toml", "checkpoint.npz", "metrics.csv"])

    with pytest.raises(SettingError) as err:
        RunFolder(tmp_path / "a").claim_new()

    assert flags(err.value) == (f"--out {tmp_path / 'a'} holds an unfinished run: continue it "
                                f"with --resume {tmp_path / 'a'}, or replace it with --overwrite")


def test_overwrite_removes_the_engines_files_and_leaves_the_users(tmp_path):
    _fill(tmp_path / "a", [*RUN_FILES, *FIGURES, "notes.txt"])
    (tmp_path / "a" / "mine").mkdir()

    with RunFolder(tmp_path / "a").claim_new(overwrite=True):
        assert _names(tmp_path / "a") == [".lock", "mine", "notes.txt"]


def test_figures_alone_are_not_a_run(tmp_path):
    _fill(tmp_path / "a", ["schedule.png"])  # what a dry run writes

    with RunFolder(tmp_path / "a").claim_new():
        assert _names(tmp_path / "a") == [".lock", "schedule.png"]


def test_a_folder_in_use_is_refused_naming_the_holder_until_it_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path / "a")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "claimed\n"
        for claim in (lambda f: f.claim_new(), lambda f: f.claim_resume()):
            with pytest.raises(SettingError) as err:
                claim(RunFolder(tmp_path / "a"))
            assert str(err.value).endswith(f"{tmp_path / 'a'}: in use by another run "
                                           f"(process {holder.pid})")
    finally:
        holder.kill()
        holder.wait()

    with RunFolder(tmp_path / "a").claim_new() as folder:  # kill -9 freed it
        assert folder.claimed


def test_a_second_claim_in_one_process_is_refused(tmp_path):
    with RunFolder(tmp_path / "a").claim_new():
        with pytest.raises(SettingError, match="in use by another run"):
            RunFolder(tmp_path / "a").claim_new()


def test_an_out_that_cannot_be_a_folder_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")

    for out, why in [(tmp_path / "file", "not a folder"),
                     (tmp_path / "file" / "a", "cannot write there (")]:
        with pytest.raises(SettingError) as err:
            RunFolder(out).claim_new()
        assert err.value.setting == "out" and f"{out}: {why}" in str(err.value)
        assert "\n" not in str(err.value)


def test_a_path_with_braces_is_spelled_as_it_is(tmp_path):
    _fill(tmp_path / "{out}", ["model.npz"])

    with pytest.raises(SettingError) as err:
        RunFolder(tmp_path / "{out}").claim_new()

    assert flags(err.value).startswith(f"--out {tmp_path / '{out}'} holds another run")


# -- kinds of run: each owns its folder ------------------------------------------------------

@pytest.mark.parametrize("mine", KINDS)
@pytest.mark.parametrize("theirs", KINDS)
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_owned_by_another_kind_of_run_is_refused_even_to_overwrite(tmp_path, mine,
                                                                           theirs, overwrite):
    if mine == theirs:
        return
    article, noun, files = KINDS[theirs]
    _fill(tmp_path / "a", files[:1])

    with pytest.raises(SettingError) as err:
        RunFolder(tmp_path / "a", mine).claim_new(overwrite=overwrite)

    assert flags(err.value) == (f"--out {tmp_path / 'a'} holds {article} {noun} ({files[0]}): "
                                f"choose another folder")
    assert _names(tmp_path / "a") == [files[0]]


def test_a_folder_holding_a_range_test_is_refused_unless_overwritten(tmp_path):
    _fill(tmp_path / "a", ["lr_range.json", "lr_range.png", "notes.txt"])

    with pytest.raises(SettingError) as err:
        RunFolder(tmp_path / "a", "lr-range-test").claim_new()
    assert flags(err.value) == (f"--out {tmp_path / 'a'} holds another LR range test "
                                f"(lr_range.json, lr_range.png): choose another folder, or "
                                f"replace it with --overwrite")

    with RunFolder(tmp_path / "a", "lr-range-test").claim_new(overwrite=True):
        assert _names(tmp_path / "a") == [".lock", "notes.txt"]


def test_a_search_folder_is_continued_never_claimed_anew(tmp_path):
    _fill(tmp_path / "a", ["search.json", "search.jsonl"])

    with pytest.raises(SettingError, match="holds a search already: continue it with resume"):
        RunFolder(tmp_path / "a", "search").claim_new()
    with RunFolder(tmp_path / "a", "search").claim_resume() as folder:
        assert folder.claimed
    (tmp_path / "b").mkdir()
    with pytest.raises(SettingError, match="b: no search.json there"):
        RunFolder(tmp_path / "b", "search").claim_resume()


def test_a_folder_being_written_by_a_live_process_is_refused_whatever_the_kind(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path / "a")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "claimed\n"
        for kind in KINDS:
            with pytest.raises(SettingError, match=f"in use by another run \\(process "
                                                   f"{holder.pid}\\)"):
                RunFolder(tmp_path / "a", kind).claim_new()
    finally:
        holder.kill()
        holder.wait()


# -- claiming a folder to resume its run ------------------------------------------------------

def test_resuming_needs_config_and_checkpoint_and_keeps_the_folder(tmp_path):
    _fill(tmp_path / "a", ["config.toml", "checkpoint.npz"])

    with RunFolder(tmp_path / "a").claim_resume() as folder:
        assert folder.claimed
    RunFolder(tmp_path / "a").claim_resume().release()  # nothing written: kept all the same

    assert _names(tmp_path / "a") == ["checkpoint.npz", "config.toml"]


def test_a_checkpointless_run_is_refused_saying_how_to_start_it_again(tmp_path):
    _fill(tmp_path / "a", ["config.toml", "metrics.csv"])
    a = tmp_path / "a"

    with pytest.raises(SettingError) as err:
        RunFolder(a).claim_resume()

    assert err.value.setting == "resume"
    assert flags(err.value) == (f"--resume {a}: no checkpoint.npz there: the run stopped before "
                                f"its first checkpoint; start it again with --config "
                                f"{a / 'config.toml'} --out {a} --overwrite")
    assert _names(a) == ["config.toml", "metrics.csv"]


@pytest.mark.parametrize("make, why", [
    (lambda a: None, "a: no such folder"),
    (lambda a: a.write_text(""), "a: not a folder"),
    (lambda a: _fill(a, ["checkpoint.npz"]), "a: no config.toml there"),
    (lambda a: (a / "config.toml").mkdir(parents=True), "a/config.toml: not a file"),
    (lambda a: (_fill(a, ["config.toml"]), (a / "checkpoint.npz").mkdir()),
     "a/checkpoint.npz: not a file"),
])
def test_a_folder_without_a_run_to_resume_is_one_line(tmp_path, make, why):
    make(tmp_path / "a")

    with pytest.raises(SettingError) as err:
        RunFolder(tmp_path / "a").claim_resume()

    assert err.value.setting == "resume"
    assert str(err.value) == f"resume {tmp_path}/{why}"


# -- what killed writers left -----------------------------------------------------------------

def _temps(folder, pid):
    names = [temp_prefix("checkpoint.npz", pid) + "k3j2h1g0.tmp",
             temp_prefix("metrics.csv", pid) + "a1b2c3d4.tmp"]
    _fill(folder, names)
    return names


@pytest.mark.parametrize("claim, files, kept", [
    (lambda f: f.claim_new(), [], []),
    (lambda f: f.claim_new(overwrite=True), ["model.npz"], []),
    (lambda f: f.claim_resume(), ["checkpoint.npz", "config.toml"],
     ["checkpoint.npz", "config.toml"]),
], ids=["new", "overwrite", "resume"])
def test_a_claim_removes_the_temporaries_of_dead_writers(tmp_path, claim, files, kept):
    folder = tmp_path / "a"
    _fill(folder, files)
    _temps(folder, dead_pid())
    # Without a writer, or of another host: the lock says they are dead.
    _fill(folder, [".model.npz.q1w2e3r4.tmp", ".model.npz.pid1@another-host.q1w2e3r4.tmp"])
    live = _temps(folder, os.getpid())

    with claim(RunFolder(folder)):
        left = _names(folder)

    assert left == sorted([".lock", *live, *kept])


# -- metrics.csv ------------------------------------------------------------------------------

numbers = st.floats(allow_nan=True, allow_infinity=True)
histories = st.lists(st.tuples(st.integers(0, 10**9), *[numbers] * (len(METRIC_COLUMNS) - 1)),
                     max_size=5)


def _written(path, history):
    folder = RunFolder(path)
    folder.write_metrics(history)
    return folder


def _columns(history):
    table = np.array(history, dtype=np.float64).reshape(-1, len(METRIC_COLUMNS))
    return {name: table[:, k] for k, name in enumerate(METRIC_COLUMNS)}


def assert_same_columns(got, want):
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == np.float64
        np.testing.assert_array_equal(got[name], want[name])  # NaN equals NaN here


def assert_one_line_naming(err, path):
    assert str(path) in str(err) and "\n" not in str(err) and "\r" not in str(err)


HISTORY = [(6, 0.5, 1e-4, 2.25, 2.0, 0.125, 2.5, 2.125, 0.1),
           (12, 1.0, float("nan"), float("inf"), -float("inf"), 0.25, 1.0, 1.5, 0.2)]


def test_metrics_read_back_exactly_nan_and_inf_included(tmp_path):
    assert_same_columns(_written(tmp_path, HISTORY).read_metrics(), _columns(HISTORY))


def test_a_header_alone_is_an_empty_table(tmp_path):
    columns = _written(tmp_path, []).read_metrics()

    assert all(len(values) == 0 for values in columns.values()) and len(columns) == 9


HEADER = ",".join(METRIC_COLUMNS)
ROW = "6,0.5,0.0001,2.25,2.0,0.125,2.5,2.125,0.1"
DAMAGED = {
    "empty": (b"", "empty"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text: byte 0"),
    "a text value": (f"{HEADER}\n{ROW[:-3]}abc\n".encode(),
                     "line 2: 'abc' in column val_acc is not a number"),
    "an empty value": (f"{HEADER}\n{ROW[:-3]}\n".encode(),
                       "line 2: '' in column val_acc is not a number"),
    "a missing column": (f"{HEADER.replace(',eta', '')}\n{ROW}\n".encode(), "no column 'eta'"),
    "a short row": (f"{HEADER}\n{ROW}\n6,0.5\n".encode(), "line 3: 2 values, expected 9"),
    "a blank line": (f"{HEADER}\n\n{ROW}\n".encode(), "line 2: 0 values, expected 9"),
    "cut mid-row": (f"{HEADER}\n{ROW}\n{ROW[:12]}".encode(), "truncated: no newline at the end"),
    "cut mid-number": (f"{HEADER}\n{ROW[:-1]}".encode(), "truncated: no newline at the end"),
    "an open quote": (f'{HEADER}\n"{ROW}\n'.encode(), "line 2: "),
    "a huge field": (f"{HEADER}\n{'1' * 200_000}\n".encode(), "line 2: field larger than"),
    "a long garbage value": (f"{HEADER}\n{ROW[:-3]}{'x' * 100}\n".encode(), "'xxxxxxxxxxxxxxxxxxxx...'"),
}


@pytest.mark.parametrize("data, why", DAMAGED.values(), ids=DAMAGED)
def test_a_damaged_metrics_file_is_one_line_naming_it(tmp_path, data, why):
    folder = RunFolder(tmp_path)
    folder.metrics.write_bytes(data)

    with pytest.raises(UserError) as err:
        folder.read_metrics()

    assert str(err.value).startswith(f"{folder.metrics}: damaged metrics table (")
    assert why in str(err.value)
    assert_one_line_naming(err.value, folder.metrics)


def test_a_missing_or_unreadable_metrics_file_is_one_line(tmp_path):
    folder = RunFolder(tmp_path)
    with pytest.raises(UserError, match="metrics.csv: no such file$"):
        folder.read_metrics()
    folder.metrics.mkdir()
    with pytest.raises(UserError, match=r"metrics.csv: a folder, not a regular file$"):
        folder.read_metrics()


@pytest.mark.timeout(20)
def test_a_metrics_file_that_is_a_pipe_is_refused_without_waiting(tmp_path):
    folder = RunFolder(tmp_path)
    os.mkfifo(folder.metrics)

    with pytest.raises(UserError, match=r"metrics.csv: a FIFO, not a regular file$"):
        folder.read_metrics()


CSV_BYTES = [b",", b"\n", b"\r", b'"', b"\x00", b"\xff", b"\xc3", b" ", b"a", b".", b"-",
             b"e", b"n", b"0", b"9", b"_", b"inf"]
edits = st.lists(st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10**4), st.sampled_from(CSV_BYTES)),
    st.tuples(st.just("insert"), st.integers(0, 10**4),
              st.sampled_from(CSV_BYTES) | st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("delete"), st.integers(0, 10**4), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 10**4), st.none()),
), min_size=1, max_size=4)


def _edit(data, edits):
    for kind, at, what in edits:
        at %= len(data) + 1
        if kind == "replace" and at < len(data):
            data = data[:at] + what + data[at + len(what):]
        elif kind == "insert":
            data = data[:at] + what + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + what:]
        elif kind == "truncate":
            data = data[:at]
    return data


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, edits=edits)
@example(history=HISTORY, edits=[("insert", 0, b"\xef\xbb\xbf")])  # a BOM: no column 'step'
@example(history=HISTORY, edits=[("replace", 60, b'"')])
@example(history=HISTORY, edits=[("insert", 50, b"\x00")])
def test_a_mutated_metrics_file_loads_as_a_table_or_is_one_line(tmp_path, no_fsync, history,
                                                                edits):
    folder = _written(tmp_path, history)
    folder.metrics.write_bytes(_edit(folder.metrics.read_bytes(), edits))

    try:
        columns = folder.read_metrics()
    except UserError as err:
        assert_one_line_naming(err, folder.metrics)
        return
    assert list(columns) == list(METRIC_COLUMNS)
    lengths = {len(values) for values in columns.values()}
    assert len(lengths) == 1 and lengths.pop() <= folder.metrics.read_bytes().count(b"\n")
    assert all(values.dtype == np.float64 for values in columns.values())


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, cut=st.floats(0, 1))
def test_a_truncated_metrics_file_loads_its_whole_rows_or_is_one_line(tmp_path, no_fsync, history,
                                                                     cut):
    folder = _written(tmp_path, history)
    data = folder.metrics.read_bytes()
    data = data[:math.floor(cut * len(data))]
    folder.metrics.write_bytes(data)
    whole_rows = data.count(b"\n") - 1

    if whole_rows < 0 or not data.endswith(b"\n"):
        with pytest.raises(UserError) as err:
            folder.read_metrics()
        assert_one_line_naming(err.value, folder.metrics)
    else:
        assert_same_columns(folder.read_metrics(), _columns(history[:whole_rows]))


@pytest.mark.parametrize("change", ["no velocity", "step of shape (2,)", "history 1-d",
                                    "step nan", "step -3"])
def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, change):
    from cifar_engine.model.network import Network, NetworkSpec
    from cifar_engine.model.npz import save_network

    net = Network(NetworkSpec(input_size=12, n_classes=3, hidden=(5,)), max_batch=4)
    extra = {"step": np.array(7), "history": np.zeros((2, len(METRIC_COLUMNS)))}
    extra.update({f"velocity/{k}": v for k, v in net.velocity.items()})
    if change == "no velocity":
        del extra["velocity/W1"]
    elif change == "step of shape (2,)":
        extra["step"] = np.array([1, 2])
    elif change == "history 1-d":
        extra["history"] = np.zeros(9)
    else:
        extra["step"] = np.array(float(change.split()[1]))
    folder = RunFolder(tmp_path)
    save_network(folder.checkpoint, net, extra)
    with pytest.raises(UserError, match="damaged checkpoint") as caught:
        folder.load_checkpoint(4, 0.0, False)
    assert len(str(caught.value).splitlines()) == 1
