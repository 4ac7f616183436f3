"""The Optuna mirror of a search (`search --optuna-journal PATH`): the study Optuna loads
from the file holds the native journal's finished trials, states, values, pruning points
and best parameters; a resumed search adds only what the study lacks; a file that is not
the search's to write is one line, and left as it was."""
import json
import math
import shutil
import sys
from dataclasses import replace

import pytest

from cifar_engine.cli.main import main
from cifar_engine.errors import SettingError
from cifar_engine.tune.search.journal import Journal
from cifar_engine.tune.search.optuna_mirror import open_mirror
from cifar_engine.tune.search.pruning import MedianPruner
from cifar_engine.tune.search.runner import best_trial, load_plan, plan_search, run_search
from cifar_engine.tune.search.space import format_value
from fakes import write_image_tree
from test_runner import learnable  # noqa: F401 (a fixture)

optuna = pytest.importorskip("optuna")
from optuna.distributions import (CategoricalDistribution, FloatDistribution,  # noqa: E402
                                  IntDistribution)
from optuna.storages import JournalStorage  # noqa: E402
from optuna.storages.journal import JournalFileBackend  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

STATE = {"ok": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
         "diverged": TrialState.FAIL, "failed": TrialState.FAIL}
# eta 1e-7 learns little (pruned, once 2 trials are in), 1e6 diverges (failed in Optuna)
PARAMS = ["eta=1e-7,0.05,1e6", "lam=1e-5:1e-2:log", "hidden=8,8x8"]
SETTINGS = {"batch_size": 8, "momentum": 0.9, "schedule": "constant"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "images"
    write_image_tree(root, per_class=(100, 20), size=(8, 8))
    return root


def plan_of(data, params=PARAMS, stages=("12:3epochs",), **options):
    return plan_search(params, list(stages), settings={"data": str(data), **SETTINGS},
                       pruner=MedianPruner(n_startup_trials=2), **options)


def study(path, name):
    """The study as optuna-dashboard reads it: Optuna's JournalStorage of the file."""
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(
        str(path))))


def shown(value):
    """A setting as the study holds it: hidden widths as their text."""
    return format_value(value) if isinstance(value, tuple) else value


@pytest.fixture(scope="module")
def searched(learnable, tmp_path_factory):  # noqa: F811 (the fixture imported)
    """(plan, folder, journal file) of a finished search mirrored into an Optuna journal."""
    root = tmp_path_factory.mktemp("mirrored")
    plan = plan_of(learnable, optuna_journal=root / "optuna.log")
    run_search(plan, root / "s")
    return plan, root / "s", root / "optuna.log"


def test_the_study_holds_each_finished_trial_of_the_journal(searched):
    plan, folder, path = searched
    records = list(Journal(folder).finished().values())
    assert {r["status"] for r in records} == {"ok", "pruned", "diverged"}  # what it covers
    trials = study(path, "s").trials
    assert len(trials) == len(records)
    by_id = {(t.user_attrs["stage"], t.user_attrs["trial"]): t for t in trials}
    for r in records:
        t = by_id[r["stage"], r["trial"]]
        assert t.state == STATE[r["status"]]
        assert t.params == {name: shown(value) for name, value in r["settings"].items()}
        assert t.value == (None if t.state == TrialState.FAIL else r["val_acc"])
        assert t.intermediate_values == dict(enumerate(r["points"]))
        assert (t.user_attrs["seed"], t.user_attrs["status"], t.user_attrs["test_acc"]) == \
            (r["seed"], r["status"], r["test_acc"])
        assert t.user_attrs["budget"] == "3epochs"
        assert math.isclose((t.datetime_complete - t.datetime_start).total_seconds(),
                            r["seconds"], abs_tol=1e-3)
    pruned = [by_id[r["stage"], r["trial"]] for r in records if r["status"] == "pruned"]
    assert all(t.value == t.intermediate_values[max(t.intermediate_values)] for t in pruned)


def test_the_distributions_are_the_search_space_and_the_best_is_the_search_s(searched):
    plan, folder, path = searched
    mirrored = study(path, "s")
    assert mirrored.trials[0].distributions == {
        "eta": CategoricalDistribution([1e-7, 0.05, 1e6]),
        "lam": FloatDistribution(1e-5, 1e-2, log=True),
        "hidden": CategoricalDistribution(["8", "8x8"])}
    best = best_trial(Journal(folder).finished().values())
    assert mirrored.best_params == {k: shown(v) for k, v in best["settings"].items()}
    assert mirrored.best_value == best["val_acc"]
    assert mirrored.direction == optuna.study.StudyDirection.MAXIMIZE
    assert mirrored.user_attrs["search"] == str(folder)


def test_an_int_range_is_an_int_distribution(images, tmp_path):
    plan = plan_search(["batch_size=5:40:log"], ["2:1epochs"],
                       settings={"data": str(images), "schedule": "constant"},
                       optuna_journal=tmp_path / "j.log")
    result = run_search(plan, tmp_path / "s")
    trials = study(tmp_path / "j.log", "s").trials
    assert trials[0].distributions == {"batch_size": IntDistribution(5, 40, log=True)}
    assert [t.params for t in trials] == [r["settings"] for r in result.records]


def _crashed_copy(whole, crashed, keep):
    """The search folder `whole` as its driver left it when killed after `keep` trials of
    stage 0 had finished."""
    records = [r for r in Journal(whole).read()
               if r["stage"] == 0 and r["trial"] < keep and r["event"] != "point"]
    crashed.mkdir()
    shutil.copy(whole / "search.json", crashed / "search.json")
    (crashed / "search.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_a_resumed_search_adds_only_the_trials_the_study_lacks(images, tmp_path):
    plan = plan_search(["lam=1e-5:1e-1:log", "hidden=8,16"], ["4:1cycles", "2:1cycles"],
                       settings={"data": str(images), "batch_size": 10, "n_s": "2ep"})
    run_search(plan, tmp_path / "whole")
    _crashed_copy(tmp_path / "whole", tmp_path / "s", keep=3)
    # the mirror given on resume: the 3 trials finished before it are added too
    mirrored = replace(plan, optuna_journal=str(tmp_path / "j.log"))
    run_search(mirrored, tmp_path / "s", resume=True)
    assert load_plan(tmp_path / "s").optuna_journal == str(tmp_path / "j.log")
    run_search(load_plan(tmp_path / "s"), tmp_path / "s", resume=True)

    trials = study(tmp_path / "j.log", "s").trials
    keys = [(t.user_attrs["stage"], t.user_attrs["trial"]) for t in trials]
    assert sorted(keys) == sorted(Journal(tmp_path / "s").finished()) and len(set(keys)) == 6
    whole = {key: r["val_acc"] for key, r in Journal(tmp_path / "whole").finished().items()}
    assert {key: t.value for key, t in zip(keys, trials)} == whole


def test_a_study_of_another_name_in_the_file_is_left_alone(images, tmp_path):
    path = tmp_path / "j.log"
    other = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(path))),
                                study_name="other")
    other.add_trial(optuna.trial.create_trial(value=1.0))
    plan = plan_search(["lam=1e-5:1e-1:log"], ["2:1cycles"],
                       settings={"data": str(images), "batch_size": 10, "n_s": "2ep"},
                       optuna_journal=path)
    run_search(plan, tmp_path / "s")
    assert [t.value for t in study(path, "other").trials] == [1.0]
    assert len(study(path, "s").trials) == 2


def test_a_study_is_the_search_s_with_more_stages_and_no_other_s(images, tmp_path):
    path = tmp_path / "j.log"
    plan = plan_search(["lam=1e-5:1e-1:log"], ["2:1cycles"], settings={"data": str(images)},
                       optuna_journal=path)
    open_mirror(plan, tmp_path / "s").sync(())
    longer = replace(plan, stages=plan.stages + plan.stages)
    open_mirror(longer, tmp_path / "s").sync(())  # a resumed search that adds a stage
    assert study(path, "s").user_attrs["plan"]["stages"] == ["2:1cycles", "2:1cycles"]
    for other in (replace(plan, seed=1), replace(longer, top_k=3), plan):  # plan: fewer
        with pytest.raises(SettingError, match="its study 's' is another search's"):
            open_mirror(other, tmp_path / "s")
    assert len(optuna.get_all_study_names(JournalStorage(JournalFileBackend(str(path))))) == 1


# -- one line, nothing written -----------------------------------------------------------------

def _run(capsys, *args):
    code = main(["search", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _refused(capsys, images, tmp_path, path, fragment):
    before = path.read_bytes() if path.is_file() else None
    code, _, err = _run(capsys, "--data", images, "--out", tmp_path / "s", "--param",
                        "lam=1e-5:1e-1:log", "--stage", "2:1cycles", "--optuna-journal", path)
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], err
    assert not (tmp_path / "s").exists()
    assert (path.read_bytes() if path.is_file() else None) == before


@pytest.mark.parametrize("content, fragment", [
    (b"hello\n", "not an Optuna journal (its last line is not JSON)"),
    (b"hello\n{}\n", "not an Optuna journal (JSONDecodeError"),
    (b"{}\n\n", "not an Optuna journal (its last line is not JSON)"),
    (b"hello", "not an Optuna journal (its last line does not end)"),
    (b'{"event": "start", "stage": 0}\n', "not an Optuna journal (KeyError"),
    (b"[1, 2]\n", "not an Optuna journal (TypeError"),
    (b'{"op_code": 99, "worker_id": "w"}\n', "not an Optuna journal"),
])
def test_a_file_that_is_no_optuna_journal_is_one_line_left_as_it_was(capsys, images, tmp_path,
                                                                     content, fragment):
    (tmp_path / "j.log").write_bytes(content)
    _refused(capsys, images, tmp_path, tmp_path / "j.log",
             f"--optuna-journal {tmp_path / 'j.log'}: {fragment}")


def test_a_missing_folder_or_a_folder_is_one_line(capsys, images, tmp_path):
    _refused(capsys, images, tmp_path, tmp_path / "nowhere" / "j.log",
             f"--optuna-journal {tmp_path / 'nowhere' / 'j.log'}: no folder ")
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "dir").mkdir()
    plan = plan_search(["lam=1e-5:1e-1:log"], ["2:1cycles"], settings={"data": str(images)},
                       optuna_journal=tmp_path / "dir")
    with pytest.raises(SettingError, match="dir: a folder, not a file"):
        run_search(plan, tmp_path / "s")
    assert not (tmp_path / "s").exists() and list((tmp_path / "dir").iterdir()) == []


def test_a_study_of_the_same_name_made_otherwise_is_one_line(capsys, images, tmp_path):
    path = tmp_path / "j.log"
    optuna.create_study(storage=JournalStorage(JournalFileBackend(str(path))), study_name="s")
    _refused(capsys, images, tmp_path, path, "its study 's' is another search's")


def test_without_optuna_it_is_one_line_naming_the_extra(capsys, images, tmp_path,
                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna: ImportError
    _refused(capsys, images, tmp_path, tmp_path / "j.log",
             "needs optuna: pip install 'cifar-engine[optuna]'")
    assert not (tmp_path / "j.log").exists()


def test_the_command_keeps_mirroring_when_resumed(capsys, images, tmp_path):
    path = tmp_path / "j.log"
    args = ["--data", images, "--batch-size", "10", "--n-s", "2ep", "--param",
            "lam=1e-5:1e-1:log", "--stage", "4:1cycles", "--optuna-journal", path]
    code, _, err = _run(capsys, *args, "--out", tmp_path / "whole")
    assert code == 0, err
    _crashed_copy(tmp_path / "whole", tmp_path / "s", keep=2)
    code, _, err = _run(capsys, "--resume", tmp_path / "s")  # the path from its search.json
    assert code == 0, err
    for name in ("whole", "s"):
        assert sorted(t.user_attrs["trial"] for t in study(path, name).trials) == [0, 1, 2, 3]
    assert study(path, "s").best_params == study(path, "whole").best_params
