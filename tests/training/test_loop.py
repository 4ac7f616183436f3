"""The training loop: plan, determinism, exact resume, divergence."""
import numpy as np
import pytest

from cifar_engine.data import load_dataset, make_split
from cifar_engine.data.preprocessing import fit_preprocessing
from cifar_engine.errors import UserError
from cifar_engine.training.config import TrainConfig
from cifar_engine.training.folder import RunFolder
from cifar_engine.training.loop import (Callbacks, Diverged, Interrupted, Trainer,
                                        build_network, make_plan)
from fakes import write_image_tree


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """300 training and 60 test 8x8 RGB images of 3 classes, as an image folder."""
    root = tmp_path_factory.mktemp("tiny") / "images"
    write_image_tree(root, per_class=(100, 20), size=(8, 8))
    return load_dataset(root, cache_dir=root.parent / "cache")


def _trainer(dataset, **settings):
    config = TrainConfig(**{"batch_size": 10, "hidden": (16,), "schedule": "triangular",
                            "n_s": "2ep", "eta_min": 1e-4, "eta_max": 5e-2, "eval_every": 7,
                            "checkpoint_every": 5, **settings})
    split = make_split(dataset, config.split, config.n_val)
    preprocessing = fit_preprocessing(config.zca, split.train.images, split.train.index,
                                      pca=config.pca)
    net = build_network(config, preprocessing, dataset.image_shape, dataset.class_names)
    return Trainer(config, split, net, make_plan(config, len(split.train)))


def _params(net):
    return np.concatenate([p.ravel() for p in net.parameters.values()])


def test_plan_counts_steps_of_cycles_epochs_and_steps(tiny_data):
    # batch1 trains on 60 images: 6 steps per epoch at batch 10
    assert _trainer(tiny_data, cycles=2).plan.total_steps == 2 * 2 * 12
    assert _trainer(tiny_data, epochs=3).plan.total_steps == 18
    assert _trainer(tiny_data, steps=17).plan.total_steps == 17
    plan = _trainer(tiny_data, steps=17).plan
    assert plan.n_s == 12 and plan.etas().shape == (17,)


def test_a_batch_larger_than_the_split_is_refused_before_training(tiny_data):
    with pytest.raises(UserError, match="batch_size 61 is larger than the training split"):
        _trainer(tiny_data, batch_size=61)


SETTINGS = [
    pytest.param({}, id="plain"),
    pytest.param({"batch_norm": True, "hidden": (16, 12), "dropout": 0.2, "momentum": 0.9,
                  "flip": True, "translate": 2, "noise": 0.1, "noise_fraction": 0.5},
                 id="bn-dropout-augment-momentum"),
    pytest.param({"zca": 0.1, "flip": True, "translate": 2, "noise": 0.1, "momentum": 0.9},
                 id="zca-augment-momentum"),
    pytest.param({"zca": 0.1, "pca": 20, "flip": True, "translate": 2, "momentum": 0.9},
                 id="pca-augment-momentum"),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_same_seed_gives_the_same_run(tiny_data, settings):
    runs = []
    for _ in range(2):
        trainer = _trainer(tiny_data, cycles=1, **settings)
        trainer.run()
        runs.append((_params(trainer.net), trainer.history))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other = _trainer(tiny_data, cycles=1, seed=1, **settings)
    other.run()
    assert not np.array_equal(runs[0][0], _params(other.net))


@pytest.mark.parametrize("settings", SETTINGS)
def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tiny_data, tmp_path, settings):
    whole = _trainer(tiny_data, cycles=1, **settings)
    whole.run()

    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir(parents=True)
    first = _trainer(tiny_data, cycles=1, **settings)

    def interrupt_at_step_13(trainer, n_steps):
        if trainer.step >= 13:
            trainer.stop.request("SIGTERM")

    with pytest.raises(Interrupted) as stopped:
        first.run([Callbacks(on_segment=interrupt_at_step_13,
                             on_checkpoint=lambda t: folder.save_checkpoint(
                                 t.net, t.step, t.history))])
    assert 13 <= stopped.value.step < whole.plan.total_steps

    second = _trainer(tiny_data, cycles=1, **settings)
    net, step, history = folder.load_checkpoint(second.net.max_batch, second.config.momentum,
                                                second.config.nesterov)
    assert step == stopped.value.step
    second = Trainer(second.config, second.split, net, second.plan, step, history)
    second.run()
    assert np.array_equal(_params(second.net), _params(whole.net))
    assert second.history == whole.history


def test_a_diverging_run_stops_at_the_first_non_finite_loss(tiny_data):
    trainer = _trainer(tiny_data, schedule="constant", eta=1e8, epochs=5)
    before = None

    def remember(t, n):
        nonlocal before
        before = _params(t.net)

    with pytest.raises(Diverged) as err:
        trainer.run([Callbacks(on_segment=remember)])
    assert "not finite at step" in str(err.value) and err.value.eta == 1e8
    assert err.value.step == trainer.step  # the failing step was not applied
    assert before is None or np.all(np.isfinite(before))


def test_segments_report_the_steps_they_ran(tiny_data):
    trainer = _trainer(tiny_data, steps=40)
    reported = []
    trainer.run([Callbacks(on_segment=lambda t, n: reported.append((t.step, n)))])
    assert sum(n for _, n in reported) == 40 and all(n > 0 for _, n in reported)
    assert all(step - n == previous for (step, n), (previous, _) in
               zip(reported[1:], reported[:-1]))


def test_history_rows_hold_the_metric_columns(tiny_data):
    trainer = _trainer(tiny_data, steps=21)
    trainer.run()
    steps = [row[0] for row in trainer.history]
    assert steps == [7, 14, 21]
    for row in trainer.history:
        assert len(row) == 9 and 0 <= row[5] <= 1 and 0 <= row[8] <= 1
        assert row[3] >= row[4]  # cost = loss + lam * |W|^2 >= loss
        assert row.step == row[0] and row.val_acc == row[8]


def test_every_steps_batch_loss_is_kept(tiny_data):
    trainer = _trainer(tiny_data, steps=21, lam=0.01)
    trainer.run()
    assert trainer.losses.shape == (21,) and trainer.losses.dtype == np.float32
    assert np.all(np.isfinite(trainer.losses)) and trainer.last_loss == trainer.losses[-1]


def test_a_translation_beyond_the_image_is_refused(tiny_data):
    from cifar_engine.training.run import prepare

    with pytest.raises(UserError, match="translate must be less than"):
        prepare(TrainConfig(translate=8, batch_size=10), tiny_data)
    prepare(TrainConfig(translate=7, batch_size=10), tiny_data)


def test_a_plan_of_any_length_costs_nothing(tiny_data):
    plan = _trainer(tiny_data, steps=10**9, schedule="triangular").plan
    steps, etas = plan.sampled(100)
    assert plan.total_steps == 10**9 and len(steps) == len(etas) <= 100
    assert plan.etas(10**9 - 3).shape == (3,)


def test_an_ended_run_stops_at_its_segment_with_its_result(tiny_data):
    trainer = _trainer(tiny_data, epochs=5)
    ends = []

    def end_after_two_epochs(t, n):
        ends.append((t.step, t.at_epoch_end))
        if t.step >= 12:
            t.stop.end("enough")

    trainer.run([Callbacks(on_segment=end_after_two_epochs)])
    assert trainer.step == 12 and trainer.stop.ended == "enough" and trainer.stop.reason is None
    # 6 steps an epoch at batch 10 on 60 images; evaluations and checkpoints cut segments too
    assert [step for step, _ in ends] == [5, 6, 7, 10, 12]
    assert all(at_end == (step % 6 == 0) for step, at_end in ends)


def test_a_plan_without_evaluations_evaluates_nothing(tiny_data):
    trainer = _trainer(tiny_data, epochs=2)
    trainer.plan.eval_every = 0
    trainer.run()
    assert trainer.history == [] and trainer.step == 12
    assert all(np.isnan(v) for v in trainer.final_accuracies().values())


def test_a_continued_plan_trains_as_the_whole_run_from_its_step(tiny_data):
    """A run continuing a network at step 12, epoch 2, with its schedule counted from step
    6, makes the same updates as the steps 12 .. 23 of one run whose schedule started at 6:
    the same shuffles, etas, dropout masks and augmentations."""
    settings = {"epochs": 2, "dropout": 0.2, "flip": True, "momentum": 0.9}
    whole = _trainer(tiny_data, **{**settings, "epochs": 4})
    whole.plan = whole.plan.continuing(0, 0, -6)  # the schedule of step s is that of s + 6
    whole.run()

    first = _trainer(tiny_data, **settings)
    first.plan = first.plan.continuing(0, 0, -6)
    first.run()
    second = _trainer(tiny_data, **settings)
    second.plan = second.plan.continuing(12, 2, -6)
    assert second.plan.total_steps == 24 and second.plan.epoch_of(12) == 2
    second = Trainer(second.config, second.split, first.net, second.plan, 12)
    second.run()
    assert np.array_equal(_params(second.net), _params(whole.net))
    np.testing.assert_array_equal(second.plan.etas(12, 24), whole.plan.etas(12, 24))
