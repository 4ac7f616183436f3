"""Median pruning: the rule, the reference trials, and decisions that do not depend on timing."""
import math

import numpy as np
import pytest

from cifar_engine.errors import SettingError
from cifar_engine.tune.search.journal import Journal
from cifar_engine.tune.search.pruning import MedianPruner, reference_points


def previous_of(*trials, stage=1):
    return {(stage, t): list(points) for t, points in enumerate(trials)}


def test_a_value_below_the_median_of_the_earlier_trials_at_that_point_is_pruned():
    pruner = MedianPruner(n_startup_trials=3)
    previous = previous_of([0.2, 0.30], [0.3, 0.40], [0.1, 0.45], [0.5, 0.50])

    # at point 1 the values are 0.30, 0.40, 0.45, 0.50: median 0.425
    assert pruner.should_prune(1, 1, 0.42, previous)
    assert not pruner.should_prune(1, 1, 0.43, previous)
    assert not pruner.should_prune(1, 1, 0.6, previous)
    # at point 0: 0.1, 0.2, 0.3, 0.5, median 0.25
    assert pruner.should_prune(1, 0, 0.24, previous) and not pruner.should_prune(1, 0, 0.26,
                                                                                   previous)


def test_the_median_agrees_with_numpy_on_random_values():
    rng = np.random.default_rng(0)
    pruner = MedianPruner(n_startup_trials=1)
    for _ in range(100):
        values = rng.random(rng.integers(1, 9))
        value = float(rng.random())
        previous = previous_of(*[[v] for v in values])
        assert pruner.should_prune(1, 0, value, previous) == (value < np.median(values))


def test_no_pruning_before_enough_reference_values_or_during_the_warm_up():
    previous = previous_of([0.5, 0.5], [0.5], [0.5, math.nan], [0.5, None])

    # at point 1 only trial 0 has a finite value
    assert not MedianPruner(n_startup_trials=2).should_prune(1, 1, 0.1, previous)
    assert MedianPruner(n_startup_trials=1).should_prune(1, 1, 0.1, previous)
    assert MedianPruner(n_startup_trials=4).should_prune(1, 0, 0.1, previous)
    assert not MedianPruner(n_startup_trials=4, n_warmup_points=1).should_prune(
        1, 0, 0.1, previous)


def test_other_stages_do_not_count():
    previous = {**previous_of([0.5], [0.5]), **previous_of([0.01], [0.01], [0.01], stage=2)}

    assert MedianPruner(n_startup_trials=2).should_prune(1, 0, 0.4, previous)
    assert not MedianPruner(n_startup_trials=3).should_prune(1, 0, 0.4, previous)


@pytest.mark.parametrize("value", [None, math.nan])
def test_a_diverged_value_is_pruned_once_there_is_a_reference(value):
    previous = previous_of([0.1], [0.1])

    assert MedianPruner(n_startup_trials=2).should_prune(1, 0, value, previous)
    assert not MedianPruner(n_startup_trials=3).should_prune(1, 0, value, previous)


def test_settings_are_checked():
    with pytest.raises(SettingError, match="n_startup_trials must be >= 1"):
        MedianPruner(n_startup_trials=0)


def test_reference_points_come_from_the_journal_and_say_when_they_are_settled(tmp_path):
    journal = Journal(tmp_path)
    for trial in range(4):
        journal.start(1, trial, {}, trial)
    journal.finish(1, 0, {}, 0, "ok", val_acc=0.5, points=[0.3, 0.5])
    journal.point(1, 1, 0, 0.2)
    journal.finish(1, 1, {}, 1, "pruned", val_acc=0.2, points=[0.2])
    journal.point(1, 2, 0, 0.4)
    journal.point(2, 0, 1, 0.9)  # another stage

    previous, settled = reference_points(journal.read(), 1, 3, 1)
    assert not settled  # trial 2 has not reached point 1 yet
    assert previous == {(1, 0): [0.3, 0.5], (1, 1): [0.2], (1, 2): [0.4]}

    journal.point(1, 2, 1, 0.45)
    previous, settled = reference_points(journal.read(), 1, 3, 1)
    assert settled and previous[(1, 2)] == [0.4, 0.45]
    assert reference_points(journal.read(), 1, 0, 0) == ({}, True)
    # trial 3 waits for trial 2, but trial 2 never waits on trial 3
    assert reference_points(journal.read(), 1, 2, 1)[1]


def run_stage(values, n_workers, rng, pruner):
    """A stage of len(values) trials on n_workers, each step taken by a random ready worker.

    values[t][i]: trial t's validation accuracy at point i. Returns {trial: (status, points)}.
    """
    records, next_trial, outcome = [], 0, {}
    workers = [None] * n_workers  # [trial, point index] or None

    def ready(w):
        if workers[w] is None:
            return next_trial < len(values)
        trial, index = workers[w]
        return index < 0 or reference_points(records, 1, trial, index)[1]

    while len(outcome) < len(values):
        candidates = [w for w in range(n_workers) if ready(w)]
        assert candidates, "deadlock"
        w = int(rng.choice(candidates))
        if workers[w] is None:
            workers[w] = [next_trial, -1]
            next_trial += 1
            continue
        trial, index = workers[w]
        if index >= 0:
            value = values[trial][index]
            previous, _ = reference_points(records, 1, trial, index)
            last = index == len(values[trial]) - 1
            if pruner.should_prune(1, index, value, previous) or last:
                status = "ok" if last else "pruned"
                outcome[trial] = (status, index)
                records.append({"event": "finish", "stage": 1, "trial": trial,
                                "points": list(values[trial][:index + 1])})
                workers[w] = None
                continue
        index += 1
        records.append({"event": "point", "stage": 1, "trial": trial, "index": index,
                        "val_acc": values[trial][index]})
        workers[w] = [trial, index]
    return outcome


def test_which_trials_are_pruned_does_not_depend_on_timing_or_on_the_number_of_workers():
    values = np.random.default_rng(1).random((24, 4)).cumsum(axis=1).tolist()
    pruner = MedianPruner(n_startup_trials=3)

    sequential = run_stage(values, 1, np.random.default_rng(0), pruner)
    assert any(s == "pruned" for s, _ in sequential.values())
    assert any(s == "ok" for s, _ in sequential.values())
    for seed in range(12):  # without the waiting, about 1 run in 6 differs
        for n_workers in (2, 3, 5):
            assert run_stage(values, n_workers, np.random.default_rng(seed), pruner) == \
                sequential
