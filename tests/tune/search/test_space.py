"""Search spaces: parsing, seeded draws, narrowing around the best trials, stages."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cifar_engine.errors import SettingError
from cifar_engine.settings import MAX_STEPS
from cifar_engine.tune.search.space import (MAX_TRIALS, Budget, Param, Space, check_stage,
                                            narrow, parse_budget, parse_param, parse_space,
                                            parse_stage, sample, top_trials, trial_seed)

KNOWN = {"lam": float, "eta_max": float, "batch_size": int, "hidden": tuple,
         "batch_norm": bool, "init": str}


@pytest.mark.parametrize("text, expected", [
    ("lam=1e-5:1e-1:log", Param("lam", float, "log", low=1e-5, high=1e-1)),
    ("eta_max=0.01:0.2", Param("eta_max", float, "lin", low=0.01, high=0.2)),
    ("eta_max = 0.01 : 0.2 : LIN", Param("eta_max", float, "lin", low=0.01, high=0.2)),
    ("batch_size=50:5e2:log", Param("batch_size", int, "log", low=50, high=500)),
    ("batch_size=100,200", Param("batch_size", int, "choice", choices=(100, 200))),
    ("lam=0.001,0.01", Param("lam", float, "choice", choices=(0.001, 0.01))),
    ("hidden=50,100,200", Param("hidden", tuple, "choice", choices=((50,), (100,), (200,)))),
    ("hidden=50x50,100,none", Param("hidden", tuple, "choice", choices=((50, 50), (100,), ()))),
    ("batch_norm=true,off", Param("batch_norm", bool, "choice", choices=(True, False))),
    ("init=he,xavier", Param("init", str, "choice", choices=("he", "xavier"))),
])
def test_parse_param_reads_ranges_and_choices_typed_like_the_setting(text, expected):
    param = parse_param(text, KNOWN)

    assert param == expected
    assert all(type(v) is expected.type for v in (param.low, param.high) if v is not None)
    assert all(type(c) is expected.type for c in param.choices)


@pytest.mark.parametrize("text", ["lam=1e-05:0.1:log", "eta_max=0.01:0.2:lin",
                                  "hidden=50x50,100,none", "batch_norm=true,false",
                                  "batch_size=50:500:log", "init=he,xavier"])
def test_a_param_is_written_as_it_is_read(text):
    assert str(parse_param(text, KNOWN)) == text
    assert parse_param(str(parse_param(text, KNOWN)), KNOWN) == parse_param(text, KNOWN)


@pytest.mark.parametrize("text, message", [
    ("momentum=0.1:0.9", "'momentum' is not a setting to search; known: batch_norm, "),
    ("lam=0.1:0.01", "low (0.1) must be < high (0.01)"),
    ("lam=0.1:0.1", "must be < high"),
    ("lam=0:0.1:log", "a log range must stay above 0"),
    ("eta_max=-1:1:log", "a log range must stay above 0"),
    ("lam=a:1", "'a' is not a finite number"),
    ("lam=1e-5:inf", "'inf' is not a finite number"),
    ("batch_size=1.5:10", "'1.5' is not an integer"),
    ("lam=1:2:cubic", "a range is LOW:HIGH"),
    ("lam=1:2:log:x", "a range is LOW:HIGH"),
    ("hidden=", "an empty choice"),
    ("hidden=50,,100", "an empty choice"),
    ("hidden=50x0", "is not widths"),
    ("hidden=50:100", "hidden is not a number"),
    ("batch_norm=maybe", "is not true or false"),
    ("lam", "write NAME=LOW:HIGH"),
    ("batch_size=100,100", "a choice is repeated"),
    ("init={oops},{oops}", "a choice is repeated in {oops},{oops}"),
])
def test_parse_param_errors_name_the_param_setting_in_one_line(text, message):
    with pytest.raises(SettingError) as caught:
        parse_param(text, KNOWN)

    assert caught.value.setting == "param"
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.render(lambda name: "--" + name).startswith("--param ")


def test_a_setting_given_twice_is_an_error():
    with pytest.raises(SettingError, match="lam is given twice"):
        parse_space(["lam=0.1:1", "lam=1,2"], KNOWN)


SPACE = parse_space(["lam=1e-5:1e-1:log", "eta_max=0.01:0.2", "batch_size=20:500:log",
                     "hidden=50,100x100,none", "batch_norm=true,false"], KNOWN)


def test_sample_is_a_pure_function_of_seed_stage_and_trial():
    draws = [sample(SPACE, 7, 1, t) for t in range(20)]

    # in any order and in any process: the same settings for the same ids
    assert [sample(SPACE, 7, 1, t) for t in reversed(range(20))][::-1] == draws
    assert sample(SPACE, 7, 2, 3) != draws[3] and sample(SPACE, 8, 1, 3) != draws[3]
    assert len({tuple(d.items()) for d in draws}) == 20
    assert list(draws[0]) == list(SPACE.names)


def test_sample_does_not_depend_on_the_order_params_are_given_in():
    shuffled = Space(tuple(reversed(SPACE.params)))

    for trial in range(5):
        assert sample(shuffled, 0, 1, trial) == sample(SPACE, 0, 1, trial)


def test_draws_have_the_settings_types_and_stay_in_their_ranges():
    for trial in range(200):
        d = sample(SPACE, 0, 1, trial)
        assert 1e-5 <= d["lam"] <= 1e-1 and type(d["lam"]) is float
        assert 0.01 <= d["eta_max"] <= 0.2
        assert 20 <= d["batch_size"] <= 500 and type(d["batch_size"]) is int
        assert d["hidden"] in ((50,), (100, 100), ())
        assert type(d["batch_norm"]) is bool


def test_log_uniform_draws_spread_evenly_over_the_decades():
    lam = np.array([sample(SPACE, 3, 1, t)["lam"] for t in range(4000)])

    counts = np.histogram(np.log10(lam), bins=4, range=(-5, -1))[0]
    assert np.all(np.abs(counts - 1000) < 120), counts


def test_uniform_int_draws_give_every_value_including_the_ends():
    space = parse_space(["batch_size=1:4"], KNOWN)

    counts = np.bincount([sample(space, 0, 0, t)["batch_size"] for t in range(4000)])
    assert counts[0] == 0 and np.all(np.abs(counts[1:] - 1000) < 120), counts


def test_choices_are_equally_likely():
    counts = {}
    for t in range(3000):
        h = sample(SPACE, 1, 1, t)["hidden"]
        counts[h] = counts.get(h, 0) + 1
    assert sorted(counts) == sorted([(50,), (100, 100), ()])
    assert all(abs(c - 1000) < 110 for c in counts.values()), counts


def test_trial_seeds_are_pure_distinct_and_fit_31_bits():
    seeds = [trial_seed(0, s, t) for s in (1, 2) for t in range(500)]

    assert seeds == [trial_seed(0, s, t) for s in (1, 2) for t in range(500)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2 ** 31 and type(s) is int for s in seeds)


def test_negative_ids_are_errors():
    with pytest.raises(SettingError, match="trial must be an integer >= 0"):
        sample(SPACE, 0, 1, -1)


# -- narrowing ----------------------------------------------------------------------------

def test_top_trials_keep_ties_with_the_kth_and_drop_diverged():
    results = [({"i": 0}, 0.4), ({"i": 1}, None), ({"i": 2}, 0.5), ({"i": 3}, 0.4),
               ({"i": 4}, math.nan), ({"i": 5}, 0.3)]

    assert [s["i"] for s in top_trials(results, 2)] == [0, 2, 3]
    assert [s["i"] for s in top_trials(results, 1)] == [2]
    assert top_trials([({"i": 0}, None)], 2) == []


def test_narrow_a_log_range_around_the_best_two_widened_by_half_their_span():
    space = parse_space(["lam=1e-6:1e-1:log"], KNOWN)
    results = [({"lam": 1e-4}, 0.50), ({"lam": 1e-3}, 0.52), ({"lam": 1e-2}, 0.30),
               ({"lam": 1e-6}, None)]

    (lam,) = narrow(space, results, top_k=2, margin=0.5, min_width=0.1)

    # top two span 1e-4..1e-3 (one decade in log); half a decade on each side
    assert lam.scale == "log"
    assert lam.low == pytest.approx(10 ** -4.5) and lam.high == pytest.approx(10 ** -2.5)


def test_narrow_a_linear_range_to_a_minimum_width_and_moves_it_inside():
    space = parse_space(["eta_max=0:1"], KNOWN)

    (eta,) = narrow(space, [({"eta_max": 0.5}, 0.5), ({"eta_max": 0.5}, 0.5)], min_width=0.2)
    assert (eta.low, eta.high) == pytest.approx((0.4, 0.6))

    # at the edge: the 0.2-wide window is moved inside, not cut
    (eta,) = narrow(space, [({"eta_max": 0.01}, 0.5), ({"eta_max": 0.03}, 0.4)],
                    margin=0.5, min_width=0.2)
    assert (eta.low, eta.high) == pytest.approx((0.0, 0.2))


def test_narrow_keeps_the_given_range_when_the_window_is_wider():
    space = parse_space(["eta_max=0:1"], KNOWN)

    (eta,) = narrow(space, [({"eta_max": 0.1}, 0.5), ({"eta_max": 0.9}, 0.5)], margin=0.5)
    assert (eta.low, eta.high) == (0.0, 1.0)


def test_narrow_int_ranges_to_ints_and_never_to_a_single_one():
    space = parse_space(["batch_size=10:1000:log"], KNOWN)

    (b,) = narrow(space, [({"batch_size": 100}, 0.5), ({"batch_size": 200}, 0.4)], margin=0.5,
                  min_width=1e-3)
    assert (b.low, b.high) == (71, 282) and type(b.low) is int  # 100/sqrt(2), 200*sqrt(2)

    (b,) = narrow(space, [({"batch_size": 1000}, 0.5)], min_width=1e-4)
    assert (b.low, b.high) == (999, 1000)


def test_narrow_choices_keep_those_of_the_best_trials_in_their_order():
    space = parse_space(["hidden=50,100,200,50x50"], KNOWN)
    # lists: settings read back from JSON
    results = [({"hidden": [200]}, 0.5), ({"hidden": [50]}, 0.52), ({"hidden": [100]}, 0.2)]

    (h,) = narrow(space, results)
    assert h.choices == ((50,), (200,))


def test_narrow_with_nothing_learned_keeps_the_space():
    results = [({"lam": 1e-3}, None), ({"lam": 1e-2}, math.nan)]

    assert narrow(SPACE, results) == SPACE
    assert narrow(SPACE, [({"other": 1}, 0.5)]) == SPACE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-5, 1e-1), st.one_of(st.none(), st.floats(0, 1))),
                min_size=1, max_size=12),
       st.integers(1, 4), st.floats(0, 2), st.floats(1e-3, 1))
def test_narrowed_ranges_hold_the_best_trials_and_stay_inside(pairs, top_k, margin, min_width):
    space = parse_space(["lam=1e-5:1e-1:log", "eta_max=0.01:0.2"], KNOWN)
    results = [({"lam": lam, "eta_max": 0.01 + lam}, acc) for lam, acc in pairs]

    narrowed = narrow(space, results, top_k, margin, min_width)

    for old, new in zip(space, narrowed):
        assert old.low <= new.low < new.high <= old.high
        width = math.log(new.high / new.low) if new.scale == "log" else new.high - new.low
        full = math.log(old.high / old.low) if old.scale == "log" else old.high - old.low
        assert width >= min_width * full * (1 - 1e-9)
        for s in top_trials(results, top_k):
            assert new.low * (1 - 1e-12) <= s[new.name] <= new.high * (1 + 1e-12)


# -- stages -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("16:2cycles", (16, Budget("cycles", 2))),
    ("8:1cycle", (8, Budget("cycles", 1))),
    (" 4 : 3 epochs ", (4, Budget("epochs", 3))),
    ("4:2ep", (4, Budget("epochs", 2))),
    ("32:1000steps", (32, Budget("steps", 1000))),
])
def test_parse_stage(text, expected):
    assert parse_stage(text) == expected


@pytest.mark.parametrize("text, message", [
    ("0:2cycles", "N_TRIALS >= 1"),
    ("x:2cycles", "N_TRIALS >= 1"),
    ("2cycles", "N_TRIALS >= 1"),
    ("4:2", "a unit, one of cycles, epochs, steps"),
    ("4:2hours", "a unit, one of cycles, epochs, steps"),
    ("4:0cycles", "a whole number >= 1"),
    ("4:1.5epochs", "a whole number >= 1"),
    (f"{MAX_TRIALS + 1}:1steps", f"at most {MAX_TRIALS} trials a stage"),
    ("1000000000000:1steps", f"at most {MAX_TRIALS} trials a stage"),
    (f"4:{MAX_STEPS + 1}steps", f"the amount must be at most {MAX_STEPS}"),
])
def test_parse_stage_errors(text, message):
    with pytest.raises(SettingError, match=message) as caught:
        parse_stage(text)
    assert caught.value.setting == "stage"


def test_a_budget_gives_the_training_settings_and_reads_back():
    budget = parse_budget("3cycles")

    assert budget.settings() == {"cycles": 3, "epochs": 0, "steps": 0}
    assert parse_budget(str(budget)) == budget
    with pytest.raises(SettingError, match="budget"):
        parse_budget("soon")


def test_a_stage_is_a_latin_hypercube_of_its_trials():
    space = parse_space(["lam=1e-5:1e-1:log", "dropout=0:0.5"], {**KNOWN, "dropout": float})
    draws = [sample(space, 0, 0, t, n_trials=16) for t in range(16)]
    for name, low, high, log in (("lam", 1e-5, 1e-1, True), ("dropout", 0.0, 0.5, False)):
        u = np.array([d[name] for d in draws])
        u = (np.log(u / low) / np.log(high / low)) if log else (u - low) / (high - low)
        # one trial in each sixteenth of the range (rounding to 4 digits may cross an edge)
        strata = np.floor(np.clip(u, 0, 1 - 1e-12) * 16).astype(int)
        assert len(set(strata)) >= 15
    assert draws == [sample(space, 0, 0, t, n_trials=16) for t in range(16)]
    assert draws != [sample(space, 1, 0, t, n_trials=16) for t in range(16)]
    with pytest.raises(SettingError, match="trial must be in"):
        sample(space, 0, 0, 16, n_trials=16)


@pytest.mark.parametrize("stage", [(MAX_TRIALS + 1, Budget("steps", 1)), (0, Budget("steps", 1)),
                                   (2.5, Budget("steps", 1)), (4, "2cycles"), (4,)])
def test_a_stage_given_as_data_is_held_to_the_same_limits(stage):
    with pytest.raises(SettingError) as caught:
        check_stage(stage)
    assert caught.value.setting == "stage"


@pytest.mark.parametrize("amount", [0, MAX_STEPS + 1, 2.0, "3"])
def test_a_budget_is_a_whole_number_within_the_step_limit(amount):
    with pytest.raises(SettingError, match="budget"):
        Budget("steps", amount)


def test_a_stage_of_more_trials_than_the_limit_is_refused_before_it_is_planned():
    space = parse_space(["lam=1e-5:1e-1:log"], KNOWN)
    with pytest.raises(SettingError, match=f"n_trials must have a whole number of trials in "
                                           rf"\[1, {MAX_TRIALS}\]"):
        sample(space, 0, 0, 0, n_trials=10**12)  # a MemoryError before the limit

