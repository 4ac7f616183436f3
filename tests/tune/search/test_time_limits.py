"""Searches on a clock, and searches that grow: a search's timeout, a trial's time limit, and
stages added to a finished search when it is resumed."""
import json
from dataclasses import replace

import pytest
from test_runner import images, plan_of, starts, table  # noqa: F401 (images: a fixture)

from cifar_engine.errors import SettingError
from cifar_engine.tune.search.journal import Journal
from cifar_engine.tune.search.runner import (Report, SearchFailed, best_trial, load_plan,
                                             run_search)
from cifar_engine.tune.search.space import parse_stage


class SlowReport(Report):
    """Takes `seconds` to hear of each finished trial, so that a search's clock runs out."""

    def __init__(self, seconds):
        self.seconds = seconds

    def trial(self, record):
        import time

        time.sleep(self.seconds)


def test_a_search_starts_no_trial_after_its_timeout_and_resume_runs_the_rest(images,  # noqa: F811
                                                                             tmp_path):
    plan = plan_of(images, stages=["4:1cycles", "2:1cycles"], timeout=0.5)
    whole = run_search(replace(plan, timeout=None), tmp_path / "whole")

    stopped = run_search(plan, tmp_path / "s", report=SlowReport(0.6))

    assert stopped.unstarted == 5 and [(r["stage"], r["trial"]) for r in stopped.records] == \
        [(0, 0)] and stopped.retrained is None
    assert [(r["stage"], r["trial"]) for r in Journal(tmp_path / "s").read()] == [(0, 0)] * 2
    assert load_plan(tmp_path / "s").timeout == 0.5
    assert len(table(tmp_path / "s")) == 1  # the table of what ran

    resumed = run_search(replace(plan, timeout=60), tmp_path / "s", resume=True)

    same = {"time": resumed.best["time"], "seconds": resumed.best["seconds"]}
    assert resumed.unstarted == 0 and resumed.best == whole.best | same
    assert table(tmp_path / "s") == table(tmp_path / "whole")
    assert set(starts(tmp_path / "s").values()) == {1}
    assert load_plan(tmp_path / "s").timeout == 60  # a resumed search may change it


def test_a_trial_over_its_time_limit_is_stopped_and_recorded_as_timeout(images,  # noqa: F811
                                                                        tmp_path):
    # 200 cycles of 60 steps: seconds of training, stopped at the first segment after 10 ms
    plan = plan_of(images, stages=["2:200cycles"], trial_timeout=0.01)

    with pytest.raises(SearchFailed, match=r"no trial of the search ended ok \(2 timeout\); "
                                           r"stage 0 trial 0: stopped at its time limit of "
                                           r"0.01 s"):
        run_search(plan, tmp_path / "s")

    records = list(Journal(tmp_path / "s").finished().values())
    assert [r["status"] for r in records] == ["timeout", "timeout"]
    assert all(len(r["points"]) < 200 and r["train_acc"] is None for r in records)
    assert [row["status"] for row in table(tmp_path / "s")] == ["timeout", "timeout"]
    assert load_plan(tmp_path / "s").trial_timeout == 0.01


def test_a_trial_that_timed_out_is_never_the_best_whatever_its_accuracy():
    ok = {"status": "ok", "val_acc": 0.3, "stage": 0, "trial": 0}
    late = {"status": "timeout", "val_acc": 0.9, "stage": 0, "trial": 1}
    assert best_trial([ok, late]) == ok and best_trial([late]) is None


def test_a_stage_added_on_resume_runs_alone_and_leaves_the_earlier_ones_as_they_were(
        images, tmp_path):  # noqa: F811
    two = plan_of(images, stages=["4:1cycles", "2:1cycles"])
    run_search(two, tmp_path / "whole")
    one = replace(two, stages=two.stages[:1])
    run_search(one, tmp_path / "s")
    journal, rows = (tmp_path / "s" / "search.jsonl").read_bytes(), table(tmp_path / "s")

    result = run_search(two, tmp_path / "s", resume=True)

    assert (tmp_path / "s" / "search.jsonl").read_bytes().startswith(journal)
    added = Journal(tmp_path / "s").read()[journal.count(b"\n"):]
    assert {r["stage"] for r in added} == {1} and len(result.records) == 6
    assert table(tmp_path / "s")[:4] == rows  # the earlier stage's rows, byte for byte
    assert table(tmp_path / "s") == table(tmp_path / "whole")
    assert json.loads((tmp_path / "s" / "search.json").read_text())["stages"] == \
        ["4:1cycles", "2:1cycles"]


@pytest.mark.parametrize("stages", [["3:1cycles", "2:1cycles"], ["2:1cycles"]])
def test_stages_that_change_the_earlier_ones_are_refused_on_resume(images, tmp_path,  # noqa: F811
                                                                   stages):
    one = plan_of(images, stages=["4:1cycles"])
    run_search(one, tmp_path / "s")
    plan = replace(one, stages=tuple(map(parse_stage, stages)))
    with pytest.raises(SettingError) as err:
        run_search(plan, tmp_path / "s", resume=True)
    assert err.value.setting == "stage"
    assert str(err.value) == (f"stage cannot change when resuming: the search in "
                              f"{tmp_path / 's'} has the stages 4:1cycles; more can only "
                              f"follow them")
