"""`cifar-engine search` in jobs that a cluster stops and starts: --resume-if-exists, a
--timeout that says how to continue, and stages added on --resume."""
import csv
import os

from cifar_engine.cli.main import main
from cifar_engine.tune.search.journal import Journal

SEARCH = ["--batch-size", "10", "--n-s", "2ep", "--param", "lam=1e-5:1e-1:log",
          "--param", "hidden=8,16", "--stage", "3:1cycles"]


def _run(capsys, *args):
    code = main(["search", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _rows(folder):
    with open(folder / "search.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def _starts(folder):
    return [(r["stage"], r["trial"]) for r in Journal(folder).read() if r["event"] == "start"]


def test_the_same_command_again_continues_the_search_there(capsys, images, tmp_path):
    args = ["--data", images, "--out", tmp_path / "s", "--resume-if-exists", *SEARCH]
    code, _, err = _run(capsys, *args)
    assert code == 0, err
    rows = _rows(tmp_path / "s")

    code, out, err = _run(capsys, *args)

    assert code == 0, err
    assert "stage 0: 3 trials of 1cycles (3 finished before)" in out
    assert _rows(tmp_path / "s") == rows and len(_starts(tmp_path / "s")) == 3
    code, _, err = _run(capsys, *args[:-2], "--stage", "3:2cycles")
    assert code == 2 and "--stage cannot change when resuming" in err


def test_a_timeout_says_how_to_continue_and_a_resume_may_add_a_stage(capsys, images, tmp_path):
    code, out, err = _run(capsys, "--data", images, "--out", tmp_path / "s", *SEARCH,
                          "--timeout", "1e-9")

    assert code == 0, err
    assert "no trial ended ok" in out and _starts(tmp_path / "s") == []
    assert err.splitlines()[-1] == (f"cifar-engine: the search started no trial after its "
                                    f"timeout of 1e-09 s (3 not run); continue with: "
                                    f"cifar-engine search --resume {tmp_path / 's'}")

    code, out, err = _run(capsys, "--resume", tmp_path / "s", "--timeout", "600",
                          "--stage", "3:1cycles", "--stage", "2:1cycles")

    assert code == 0, err
    assert [(r["stage"], r["trial"]) for r in _rows(tmp_path / "s")] == \
        [("0", "0"), ("0", "1"), ("0", "2"), ("1", "0"), ("1", "1")]
    assert "best: stage" in out and "continue with" not in err


def test_a_journal_lock_held_for_ever_ends_the_search_in_one_line(capsys, images, tmp_path,
                                                                  monkeypatch):
    from cifar_engine.util.lock import TIMEOUT_ENV, FileLock

    assert _run(capsys, "--data", images, "--out", tmp_path / "s", *SEARCH)[0] == 0
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    path = tmp_path / "s" / "search.jsonl.lock"
    with FileLock(path):  # a holder stuck for ever (stopped, on a hung mount)
        code, out, err = _run(capsys, "--resume", tmp_path / "s")

    assert code == 2
    assert err.splitlines()[-1] == (f"cifar-engine: error: {path}: still locked by process "
                                    f"{os.getpid()} after 0.3 s (wait longer with "
                                    f"{TIMEOUT_ENV}=SECONDS)")
