"""The search's driver: stages that narrow, one table however the trials run, resumes after a
crash, and trials that diverge, fail or are pruned."""
import csv
import json
import math
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_journal import json_values

from cifar_engine.errors import DataError, SettingError, UserError
from cifar_engine.training.folder import RunFolder
from cifar_engine.tune.search.journal import Journal
from cifar_engine.tune.search.pruning import MedianPruner
from cifar_engine.tune.search.runner import (SEARCHABLE, SearchFailed, SearchPlan, best_trial,
                                             load_plan, plan_search, read_retrained, run_search,
                                             stage_space, verified_records)
from cifar_engine.tune.search.space import Budget, narrow
from cifar_engine.tune.search.workers import LocalProcesses
from fakes import write_image_tree
from properties import damaged, loads_or_refuses, report_inputs  # noqa: F401 (a fixture)

BASE = {"batch_size": 10, "n_s": "2ep"}
PARAMS = ["lam=1e-5:1e-1:log", "eta_max=0.01:0.1:log", "hidden=8,16,8x8"]
STAGES = ["6:1cycles", "3:2cycles"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "images"
    write_image_tree(root, per_class=(100, 20), size=(8, 8))
    return root


@pytest.fixture(scope="module")
def learnable(tmp_path_factory):
    """Three classes of 8x8 images told apart by their brightness, and pixel noise."""
    root = tmp_path_factory.mktemp("learnable") / "images"
    rng = np.random.default_rng(0)
    for split, count in (("train", 100), ("test", 20)):
        for label, name in enumerate(("dark", "grey", "light")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.normal(40 + 80 * label, 10, (8, 8, 3)).clip(0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}.png")
    return root


def plan_of(data, params=PARAMS, stages=STAGES, settings=BASE, **options):
    return plan_search(params, stages, settings={"data": str(data), **settings}, **options)


def table(folder):
    """search.csv's rows but for their seconds, the one column that differs run to run."""
    with open(folder / "search.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


def starts(folder):
    """{(stage, trial): how many times it was started}."""
    counts = {}
    for r in Journal(folder).read():
        if r["event"] == "start":
            counts[r["stage"], r["trial"]] = counts.get((r["stage"], r["trial"]), 0) + 1
    return counts


def test_each_stage_searches_around_the_best_trials_of_the_one_before(images, tmp_path):
    plan = plan_of(images)
    result = run_search(plan, tmp_path / "s")
    journal = Journal(tmp_path / "s")

    second = narrow(plan.space, journal.results(0), top_k=2)
    assert stage_space(plan, journal, 1) == second and stage_space(plan, journal, 0) == plan.space
    for name in ("lam", "eta_max"):
        assert np.log(second[name].high / second[name].low) < \
            np.log(plan.space[name].high / plan.space[name].low)
    stage1 = [r for r in result.records if r["stage"] == 1]
    assert [r["trial"] for r in stage1] == [0, 1, 2]
    for r in stage1:
        for name in ("lam", "eta_max"):
            assert second[name].low <= r["settings"][name] <= second[name].high
        assert r["settings"]["hidden"] in second["hidden"].choices

    rows = table(tmp_path / "s")
    assert [(r["stage"], r["trial"]) for r in rows] == \
        [("0", str(t)) for t in range(6)] + [("1", str(t)) for t in range(3)]
    assert list(rows[0])[:5] == ["stage", "trial", "lam", "eta_max", "hidden"]
    assert result.best == max(result.records, key=lambda r: (r["val_acc"], r["stage"]))
    assert load_plan(tmp_path / "s") == plan
    assert (tmp_path / "s" / "search.png").stat().st_size > 0


def test_trials_draw_their_settings_and_seeds_from_the_search_seed(images, tmp_path):
    records = {seed: run_search(plan_of(images, stages=["3:1cycles"], seed=seed),
                                tmp_path / str(seed)).records for seed in (0, 1)}
    again = run_search(plan_of(images, stages=["3:1cycles"]), tmp_path / "again").records
    assert [r["settings"] for r in records[0]] == [r["settings"] for r in again]
    assert [r["seed"] for r in records[0]] == [r["seed"] for r in again]
    assert [r["settings"] for r in records[0]] != [r["settings"] for r in records[1]]
    assert len({r["seed"] for r in records[0]}) == 3


def test_the_table_is_the_same_in_one_process_and_in_two(images, tmp_path):
    plan = plan_of(images, stages=["6:2cycles", "3:2cycles"],
                   pruner=MedianPruner(n_startup_trials=2))
    run_search(plan, tmp_path / "one")
    with LocalProcesses(2) as executor:
        run_search(plan, tmp_path / "two", executor)
    assert table(tmp_path / "two") == table(tmp_path / "one")
    assert "pruned" in {row["status"] for row in table(tmp_path / "one")}
    points = {folder: [r["points"] for r in Journal(tmp_path / folder).finished().values()]
              for folder in ("one", "two")}
    assert points["one"] == points["two"]
    pids = {r["pid"] for r in Journal(tmp_path / "two").read() if r["event"] == "start"}
    assert pids == {os.getpid()}  # the driver journals the starts


def _crashed_copy(whole, crashed):
    """A search folder as `whole` was when its driver died: stage 0's trials 0-3 and 5
    finished (5 before 4, as in parallel runs), trial 4 started, half a line written."""
    records = Journal(whole).read()
    keep = [r for r in records if r["stage"] == 0 and r["trial"] != 4]
    keep.append(next(r for r in records if r["event"] == "start" and r["stage"] == 0
                     and r["trial"] == 4))
    crashed.mkdir()
    shutil.copy(whole / "search.json", crashed / "search.json")
    text = "".join(json.dumps(r) + "\n" for r in keep) + '{"event": "fin'
    (crashed / "search.jsonl").write_text(text)
    return {(r["stage"], r["trial"]) for r in keep if r["event"] == "finish"}


def test_a_resumed_search_runs_only_its_unfinished_trials_and_ends_as_the_whole(images,
                                                                                 tmp_path):
    plan = plan_of(images)
    run_search(plan, tmp_path / "whole")
    finished = _crashed_copy(tmp_path / "whole", tmp_path / "crashed")

    run_search(plan, tmp_path / "crashed", resume=True)
    assert table(tmp_path / "crashed") == table(tmp_path / "whole")
    counts = starts(tmp_path / "crashed")
    assert finished == {(0, 0), (0, 1), (0, 2), (0, 3), (0, 5)}
    assert {key: counts[key] for key in finished} == dict.fromkeys(finished, 1)
    assert counts[0, 4] == 2 and all(counts[1, t] == 1 for t in range(3))


def test_trials_that_diverge_or_cannot_run_are_recorded_and_the_search_goes_on(images,
                                                                               tmp_path):
    plan = plan_of(images, ["eta=0.01,1e6", "batch_size=10,1000"], ["8:1epochs", "2:1epochs"],
                   settings={"schedule": "constant"})
    result = run_search(plan, tmp_path / "s")
    by_status = {}
    for r in result.records[:8]:
        by_status.setdefault(r["status"], []).append(r)
        if r["settings"]["batch_size"] == 1000:
            assert r["status"] == "failed" and "larger than the training split" in r["reason"]
        elif r["settings"]["eta"] == 1e6:
            assert r["status"] == "diverged" and "diverged" in r["reason"]
        else:
            assert r["status"] == "ok" and r["reason"] == ""
    assert set(by_status) == {"ok", "diverged", "failed"}
    for r in by_status["diverged"] + by_status["failed"]:
        assert (r["train_acc"], r["val_acc"], r["test_acc"]) == (None, None, None)
    # the stage after narrows around the trials that ended ok only
    assert stage_space(plan, Journal(tmp_path / "s"), 1) == narrow(
        plan.space, [(r["settings"], r["val_acc"]) for r in by_status["ok"]])
    assert [r["stage"] for r in result.records[8:]] == [1, 1]


def test_a_trial_below_the_median_of_the_earlier_ones_at_a_checkpoint_is_pruned(learnable,
                                                                                  tmp_path):
    pruner = MedianPruner(n_startup_trials=2)
    plan = plan_of(learnable, ["eta=1e-7,0.05"], ["8:3epochs"], pruner=pruner,
                   settings={"hidden": (8,), "batch_size": 8, "momentum": 0.9,
                             "schedule": "constant"})
    records = run_search(plan, tmp_path / "s").records

    statuses = [r["status"] for r in records]
    assert "pruned" in statuses and "ok" in statuses
    for t, r in enumerate(records):
        # the rule, replayed on the points the trials recorded
        previous = {(0, s): list(records[s]["points"]) for s in range(t)}
        stops = [i for i, value in enumerate(r["points"][:2])  # the last point ends the budget
                 if pruner.should_prune(0, i, value, previous)]
        assert r["status"] == ("pruned" if stops else "ok")
        assert len(r["points"]) == (stops[0] + 1 if stops else 3)
        assert r["val_acc"] == r["points"][-1]
        if r["settings"]["eta"] == 1e-7 and t >= 2:
            assert r["status"] == "pruned"
    points = [r for r in Journal(tmp_path / "s").read() if r["event"] == "point"]
    assert {(p["trial"], p["index"]) for p in points} == \
        {(r["trial"], i) for r in records for i in range(min(len(r["points"]), 2))}


def test_the_best_trial_is_trained_again_once_into_best(images, tmp_path):
    plan = plan_of(images, stages=["4:1cycles"], retrain="2cycles")
    result = run_search(plan, tmp_path / "s")
    summary = json.loads((tmp_path / "s" / "best" / "summary.json").read_text())
    assert result.retrained == summary and {"train_acc", "val_acc", "test_acc"} <= set(summary)
    config = (tmp_path / "s" / "best" / "config.toml").read_text()
    assert f"seed = {result.best['seed']}\n" in config and "cycles = 2\n" in config
    assert f"lam = {result.best['settings']['lam']!r}\n" in config

    before = (tmp_path / "s" / "best" / "summary.json").stat().st_mtime_ns
    again = run_search(plan, tmp_path / "s", resume=True)
    assert again.retrained == summary and again.best == result.best
    assert (tmp_path / "s" / "best" / "summary.json").stat().st_mtime_ns == before
    assert set(starts(tmp_path / "s").values()) == {1}


def test_a_search_folder_holds_one_search_with_one_driver(images, tmp_path):
    plan = plan_of(images, stages=["1:1cycles"])
    run_search(plan, tmp_path / "s")
    with pytest.raises(SettingError, match="holds a search already"):
        run_search(plan, tmp_path / "s")
    with pytest.raises(SettingError, match="the search there has another seed"):
        run_search(plan_of(images, stages=["1:1cycles"], seed=5), tmp_path / "s", resume=True)
    with pytest.raises(SettingError, match="no search.json there"):
        run_search(plan, tmp_path / "empty", resume=True)
    with RunFolder(tmp_path / "s", "search").claim_resume(), \
            pytest.raises(SettingError, match="in use by another run"):
        run_search(plan, tmp_path / "s", resume=True)
    with pytest.raises(DataError):
        run_search(plan_of(tmp_path / "nowhere", stages=["1:1cycles"]), tmp_path / "n")
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize("params, stages, settings, options, setting, fragment", [
    (["lam=0.1:0.01"], None, {}, {}, "param", "must be < high"),
    (["lam=0:1:log"], None, {}, {}, "param", "must stay above 0"),
    (["lam=-1:1"], None, {}, {}, "param", "{lam} must be in [0, inf)"),
    (["init=he,foo"], None, {}, {}, "param", "{init} must be one of"),
    (["seed=1:9"], None, {}, {}, "param", "is not a setting to search"),
    ([], None, {}, {}, "param", "give at least one setting"),
    (["lam=0:1"], ["0:2cycles"], {}, {}, "stage", "N_TRIALS >= 1"),
    (["lam=0:1"], ["4:2fortnights"], {}, {}, "stage", "a unit"),
    (["lam=0:1"], ["4:2cycles"], {"schedule": "constant"}, {}, "stage",
     "{cycles} needs a cyclical {schedule}"),
    (["lam=0:1"], None, {"epochs": 3}, {}, "epochs", "set per stage"),
    (["lam=0:1"], None, {"lam": 0.1}, {}, "lam", "is searched"),
    (["lam=0:1"], None, {}, {"top_k": 0}, "top_k", "must be a whole number >= 1"),
    (["lam=0:1"], None, {}, {"retrain": "0cycles"}, "retrain_best", "whole number >= 1"),
])
def test_a_bad_plan_is_refused_naming_what_is_wrong(params, stages, settings, options, setting,
                                                     fragment):
    with pytest.raises(SettingError) as caught:
        plan_search(params, stages, settings=settings, **options)
    assert caught.value.setting == setting and fragment in caught.value.template


def test_the_searchable_settings_leave_out_the_data_seed_stop_rule_and_bookkeeping():
    assert {"lam", "eta_max", "hidden", "batch_norm", "init", "schedule", "n_s"} <= set(SEARCHABLE)
    assert not {"data", "split", "n_val", "seed", "cycles", "epochs", "steps", "threads",
                "eval_every", "checkpoint_every"} & set(SEARCHABLE)
    assert SEARCHABLE["hidden"] is tuple and SEARCHABLE["init"] is str


# -- limits, memory, failed searches, resumed outputs -------------------------------------------

def test_stages_beyond_the_limits_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(SettingError) as caught:
        plan_search(["lam=0:1"], ["1000000000000:1steps"])
    assert caught.value.setting == "stage" and "at most" in str(caught.value)
    plan = plan_of(tmp_path, stages=["2:1cycles"])
    with pytest.raises(SettingError) as caught:
        SearchPlan(plan.base, plan.space, [(10**8, Budget("steps", 1))])
    assert caught.value.setting == "stage"


def test_a_searched_value_that_cannot_fit_in_memory_is_refused_before_any_trial(images,
                                                                               tmp_path):
    plan = plan_of(images, ["lam=1e-5:1e-1:log", "hidden=8,1000000x1000000"], ["2:1cycles"])
    with pytest.raises(SettingError) as caught:
        run_search(plan, tmp_path / "s")
    assert caught.value.setting == "param"
    assert caught.value.template.startswith("hidden=1000000x1000000: {hidden} gives a network "
                                            "that needs ")
    assert not (tmp_path / "s").exists()


def test_a_search_whose_every_trial_fails_is_an_error_after_its_table(images, tmp_path):
    plan = plan_of(images, ["batch_size=1000,2000"], ["2:1epochs"],
                   settings={"schedule": "constant"})
    with pytest.raises(SearchFailed) as caught:
        run_search(plan, tmp_path / "s")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 's'}: no trial of the search ended ok (2 failed); "
                              f"stage 0 trial 0: ") and "\n" not in message
    assert "larger than the training split" in message
    assert caught.value.result.best is None and len(caught.value.result.records) == 2
    assert [row["status"] for row in table(tmp_path / "s")] == ["failed", "failed"]


def test_a_resumed_search_writes_again_the_outputs_it_finds_gone(images, tmp_path):
    plan = plan_of(images, stages=["2:1cycles"], retrain="1cycles")
    run_search(plan, tmp_path / "s")
    rows = table(tmp_path / "s")
    for name in ("search.csv", "search.png", "best/model.npz"):
        (tmp_path / "s" / name).unlink()

    again = run_search(plan, tmp_path / "s", resume=True)
    assert table(tmp_path / "s") == rows and (tmp_path / "s" / "search.png").stat().st_size
    assert (tmp_path / "s" / "best" / "model.npz").is_file()
    assert again.retrained == json.loads((tmp_path / "s/best/summary.json").read_text())
    assert set(starts(tmp_path / "s").values()) == {1}


# -- damaged and forged search folders ----------------------------------------------------------

def _finished_journal(plan, folder, val_acc=lambda t: 0.1 + 0.01 * t):
    """A journal of every trial of every stage of `plan` finished ok, drawn as the search
    draws them (no training): what a finished search leaves."""
    journal = Journal(folder)
    for stage, (n_trials, _) in enumerate(plan.stages):
        space = stage_space(plan, journal, stage)
        for t in range(n_trials):
            settings, config = plan.trial(space, stage, t)
            journal.finish(stage, t, settings, config["seed"], "ok", train_acc=0.5,
                           val_acc=val_acc(t), test_acc=0.4, seconds=1.0, points=[0.3])
    return journal


@pytest.fixture
def finished(tmp_path):
    """(plan, journal) of a finished search folder (search.json and search.jsonl)."""
    plan = plan_of(tmp_path / "no-data", stages=["3:1cycles", "2:1cycles"])
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "search.json").write_text(json.dumps(plan.to_json()))
    return plan, _finished_journal(plan, folder)


def _forged(journal, **changes):
    """The journal with its last finish record changed (a forgery, as a hostile edit)."""
    lines = journal.path.read_text().splitlines()
    record = {**json.loads(lines[-1]), **changes}
    journal.path.write_text("\n".join([*lines[:-1], json.dumps(record)]) + "\n")


FORGERIES = {
    "a trial the stage does not have": (dict(trial=2), "stage 1 trial 2 is not a trial"),
    "a stage that does not exist": (dict(stage=2, trial=0), "stage 2 trial 0 is not a trial"),
    "a value outside its range": (dict(settings={"lam": 5.0, "eta_max": 0.05, "hidden": [8]}),
                                  "with settings or seed this search does not draw"),
    "another seed": (dict(seed=1), "with settings or seed this search does not draw"),
    "a non-finite accuracy": (dict(val_acc=math.inf), "val_acc is not None or an accuracy"),
    "a record without its keys": (dict(status=None), "status is not one of"),
    "a stage given as a string": (dict(stage="1"), "stage is not a whole number"),
}


@pytest.mark.parametrize("changes, why", FORGERIES.values(), ids=FORGERIES)
def test_a_forged_journal_record_is_refused_never_taken_as_the_best(finished, changes, why):
    plan, journal = finished
    assert verified_records(plan, journal)
    _forged(journal, **{"val_acc": 0.99, **changes})

    with pytest.raises(DataError) as caught:
        verified_records(plan, journal)
    assert str(caught.value).startswith(f"{journal.path}: ") and why in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_record_without_its_keys_is_refused_on_resume_before_any_trial(images, tmp_path):
    plan = plan_of(images, stages=["2:1cycles"])
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "search.json").write_text(json.dumps(plan.to_json()))
    (folder / "search.jsonl").write_text('{"event": "finish", "stage": 0, "trial": 0}\n')

    with pytest.raises(DataError, match=f"^{folder / 'search.jsonl'}: line 1: a finish record "
                                        f"without its 'settings'$"):
        run_search(plan, folder, resume=True)
    assert sorted(p.name for p in folder.iterdir()) == ["search.json", "search.jsonl"]


@pytest.mark.parametrize("name", ["search.json", "search.jsonl", ".lock",
                                  "search.jsonl.lock"])
def test_a_search_file_that_is_a_folder_is_one_line_naming_it(images, tmp_path, name):
    plan = plan_of(images, stages=["2:1cycles"])
    folder = tmp_path / "s"
    folder.mkdir()
    if name != "search.json":
        (folder / "search.json").write_text(json.dumps(plan.to_json()))
    (folder / name).mkdir()

    with pytest.raises(UserError) as caught:
        run_search(plan, folder, resume=True)
    assert f"{folder / name}: cannot " in str(caught.value)
    assert "Is a directory" in str(caught.value) and "\n" not in str(caught.value)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(["stage", "trial", "seed", "val_acc", "settings",
                                                 "status", "event"]),
                               st.integers(-1, 4) | st.floats() | st.none() | st.text(max_size=3)
                               | st.dictionaries(st.sampled_from(["lam", "eta_max", "hidden"]),
                                                 st.floats(0, 10) | st.lists(st.integers(1, 9),
                                                                             max_size=2)),
                               max_size=3))
@example(changes={"val_acc": 0.99, "settings": {"lam": 5.0, "eta_max": 0.05, "hidden": [8]}})
def test_a_forged_record_is_refused_or_is_the_trial_the_plan_draws(finished, no_fsync, changes):
    plan, journal = finished
    _forged(journal, **changes)

    records = loads_or_refuses("journal of a plan", lambda: verified_records(plan, journal),
                               journal.path)
    if records is not None:
        best = best_trial(list(journal.finished(records).values()))
        space = stage_space(plan, journal, best["stage"], records)
        settings, config = plan.trial(space, best["stage"], best["trial"])
        assert (best["settings"], best["seed"]) == (settings, config["seed"])


def _plan_bytes(tmp_path):
    plan = plan_of(tmp_path, stages=["3:1cycles"], retrain="1cycles",
                   pruner=MedianPruner(n_startup_trials=2))
    return json.dumps(plan.to_json(), indent=2).encode()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_plan_loads_or_is_one_line_naming_it(tmp_path, no_fsync, data):
    (tmp_path / "search.json").write_bytes(data.draw(damaged(_plan_bytes(tmp_path))))
    loads_or_refuses("search.json", lambda: load_plan(tmp_path), tmp_path / "search.json")


PLAN_KEYS = ["base", "params", "stages", "seed", "top_k", "prune", "retrain", "notes"]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(PLAN_KEYS), value=json_values, drop=st.booleans())
@example(key="params", value=[5], drop=False)
@example(key="stages", value=["100000000:1steps"], drop=False)
@example(key="base", value={"lam": "x"}, drop=False)
@example(key="prune", value={"n_startup_trials": "x"}, drop=False)
def test_any_json_in_a_plan_loads_or_is_one_line_naming_it(tmp_path, no_fsync, key, value,
                                                             drop):
    plan = json.loads(_plan_bytes(tmp_path))
    if drop:
        del plan[key]
    else:
        plan[key] = value
    (tmp_path / "search.json").write_text(json.dumps(plan))
    loaded = loads_or_refuses("search.json", lambda: load_plan(tmp_path),
                              tmp_path / "search.json")
    assert loaded is None or isinstance(loaded, SearchPlan)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged(json.dumps({"train_acc": 0.5, "val_acc": 0.4, "test_acc": 0.3,
                                "status": "ok"}).encode()))
def test_a_damaged_retraining_summary_reads_or_is_one_line_naming_it(tmp_path, no_fsync, data):
    path = tmp_path / "summary.json"
    path.write_bytes(data)
    summary = loads_or_refuses("best summary", lambda: read_retrained(path), path)
    assert summary is None or all(0 <= summary[k] <= 1 for k in ("train_acc", "val_acc",
                                                                  "test_acc"))
