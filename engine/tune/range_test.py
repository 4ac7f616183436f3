"""The running half of a learning-rate range test: train a fresh network while eta rises
step by step, record each step, stop when the loss blows up, and suggest the bounds of a
cyclical schedule (the analysis is in `lr_range`).

The steps run in compiled segments exactly as a training run's do (`Trainer.train_segment`),
so a test adds no Python work per step. `run_range_test` returns a RangeResult and writes
nothing; `write_range_test` puts it in a folder it claims (lr_range.csv, .json, .png; see
`runs.RunFolder`), which `eta_from` reads back for `train --eta-from`.
"""
import csv
import io
import json
import math
from dataclasses import dataclass, replace

from ..errors import SettingError, require
from ..range_analysis import (BETA, RULES, SUMMARY, Curve, NoSuggestion, Smoother, lr_ramp,
                              median_curve, stop_index, suggest)
from ..settings import RANGE_TEST
from ..training.folder import KINDS, RunFolder
from ..training.loop import MAX_SEGMENT, Diverged
from ..training.run import prepare, start
from ..util.atomic import atomic_write
from ..util.optional import data_frame
from ..util.progress import notebook_bar, tqdm_class

KIND = "lr-range-test"  # of the folder it owns (runs.KINDS)
# lr_range.csv's columns, and to_frame's: a row per repeat and step
COLUMNS = ("repeat", "step", "lr", "loss", "smoothed_loss", "batch_acc", "val_loss", "val_acc")
FILES = KINDS[KIND][2]
MIN_STEPS = 2  # a ramp from lr_min to lr_max
DEFAULT_EPOCHS = 8  # the classic reports' test length, when the config gives no stop rule


_D = {name: s.default for name, s in RANGE_TEST.items()}


@dataclass(frozen=True)
class RangeTest:
    """How a range test ramps eta: from lr_min to lr_max, "linear" (Smith) or "exp" (the LR
    finders), over the config's steps or epochs; it stops when the smoothed loss exceeds
    stop_factor times its least value. repeats: tests with seeds seed, seed + 1, ...;
    rule: the suggestion rule used (every rule's pair is reported). Defaults and limits:
    `settings.RANGE_TEST`."""

    lr_min: float = _D["lr_min"]
    lr_max: float = _D["lr_max"]
    mode: str = _D["mode"]
    stop_factor: float = _D["stop_factor"]
    repeats: int = _D["repeats"]
    rule: str = _D["rule"]

    def __post_init__(self):
        for name, setting in RANGE_TEST.items():
            object.__setattr__(self, name, setting.check(getattr(self, name)))
        require(self.lr_min < self.lr_max, "lr_min",
                f"({self.lr_min:g}) must be < {{lr_max}} ({self.lr_max:g})")


@dataclass
class RangeResult:
    """curves: a lr_range.Curve per repeat; band: their median (lr_range.Band);
    suggestions: {rule: (eta_min, eta_max) or the reason it has none}; chosen: the pair of
    test.rule (None when it has none); seconds: training time over all repeats."""

    config: object
    test: RangeTest
    curves: list
    band: object
    suggestions: dict
    chosen: tuple
    seconds: float

    def rows(self):
        """A tuple of COLUMNS' values per repeat and step (val_loss and val_acc None at
        steps without a validation point)."""
        for repeat, c in enumerate(self.curves):
            val = {int(s): (float(l), float(a))
                   for s, l, a in zip(c.val_steps, c.val_loss, c.val_acc)}
            for step in range(len(c.lr)):
                yield (repeat, step, float(c.lr[step]), float(c.loss[step]),
                       float(c.smoothed[step]), float(c.acc[step]), *val.get(step, (None, None)))

    def to_frame(self):
        """lr_range.csv as a pandas DataFrame (COLUMNS; NaN where no validation point)."""
        return data_frame(self.rows(), COLUMNS).astype({"val_loss": float, "val_acc": float})

    def plot(self, path=None):
        """The test's figure (`plots.lr_range_figure`: the median of the repeats, every
        rule's suggested bounds): a Figure, saved to `path` first unless it is None."""
        from ..plots import lr_range_figure

        pairs = {k: v for k, v in self.suggestions.items() if isinstance(v, tuple)}
        return lr_range_figure(self.band, pairs, self.test.mode, path)

    def train_command(self, base="cifar-engine train"):
        """A ready command line that trains between the chosen bounds."""
        if self.chosen is None:
            return None
        eta_min, eta_max = self.chosen
        return f"{base} --eta-min {eta_min:.3g} --eta-max {eta_max:.3g}"


def range_config(config):
    """The config a test trains with: its stop rule in steps or epochs (DEFAULT_EPOCHS when
    it has none; cycles mean nothing here). Checks what it can without the data."""
    if config.cycles:
        raise SettingError("cycles", "has no meaning in a range test: give {epochs} or {steps}")
    require(not config.steps or config.steps >= MIN_STEPS, "steps",
            f"must be >= {MIN_STEPS} in a range test (its ramp has a first and a last step), "
            f"got {config.steps}")
    if not (config.steps or config.epochs):
        config = replace(config, epochs=DEFAULT_EPOCHS)
    return replace(config, schedule="constant")


def run_range_test(config, test=RangeTest(), dataset=None, split=None, cache_dir=None,
                   on_segment=None, progress=False):
    """Run `test.repeats` range tests of `config` (a TrainConfig: model, data, batch size,
    length) and suggest bounds. on_segment(repeat, step, total): after each compiled call;
    progress: a tqdm.auto bar of the steps of every repeat."""
    if progress:
        tqdm_class()  # a missing tqdm is said before anything trains
    config = range_config(config)
    prepared = prepare(config, dataset, split, cache_dir)
    total = prepared.plan.total_steps
    require(total >= MIN_STEPS, "steps" if config.steps else "epochs",
            f"gives {total} step, fewer than a range test's {MIN_STEPS} "
            f"(its ramp has a first and a last step)")
    curves, seconds = [], 0.0
    bar = notebook_bar(test.repeats * total, "range test", "step") if progress else None
    try:
        for repeat in range(test.repeats):
            run = replace(prepared, config=replace(config, seed=config.seed + repeat))
            curve, spent = _one_test(start(run), test, _segment_hook(on_segment, bar, repeat))
            curves.append(curve)
            seconds += spent
            if bar is not None:  # a test that blew up ends early: its bar skips the rest
                bar.update((repeat + 1) * total - bar.n)
    finally:
        if bar is not None:
            bar.close()
    band = median_curve(curves, BETA, stop_factor=test.stop_factor)
    suggestions = {}
    for name in RULES:
        try:
            suggestions[name] = suggest(band.curve, name)
        except NoSuggestion as err:
            suggestions[name] = str(err)
    chosen = suggestions[test.rule]
    return RangeResult(config, test, curves, band, suggestions,
                       chosen if isinstance(chosen, tuple) else None, seconds)


def _segment_hook(on_segment, bar, repeat):
    """on_segment(step, total) of one repeat: calls the caller's and advances the bar."""
    if on_segment is None and bar is None:
        return None

    def hook(step, total):
        if bar is not None:
            bar.update(repeat * total + step - bar.n)
        if on_segment is not None:
            on_segment(repeat, step, total)
    return hook


def _one_test(trainer, test, on_segment):
    """One test on a fresh trainer: (Curve, seconds of training)."""
    plan = trainer.plan
    total = plan.total_steps
    etas = lr_ramp(test.lr_min, test.lr_max, total, test.mode)
    val_steps, val_loss, val_acc = [], [], []
    smoother, least = Smoother(BETA), math.inf  # the stop rule, a segment at a time
    trainer.compile()
    while trainer.step < total:
        step = trainer.step
        n = min(MAX_SEGMENT, total - step, plan.steps_per_epoch - step % plan.steps_per_epoch,
                plan.eval_every - step % plan.eval_every)
        try:
            trainer.train_segment(n, etas[step:step + n])
        except Diverged:
            break  # a non-finite loss ends the test; it is not an error
        if on_segment:
            on_segment(trainer.step, total)
        if trainer.step % plan.eval_every == 0:
            scores = trainer.evaluate("val")
            val_steps.append(trainer.step - 1)
            val_loss.append(scores["loss"])
            val_acc.append(scores["accuracy"])
        smoothed = smoother.add(trainer.losses[step - trainer.first_step:])
        if stop_index(smoothed, test.stop_factor, least) is not None:
            break
        least = min(least, float(smoothed.min()))
    n = trainer.step
    curve = Curve.build(etas[:n], trainer.losses[:n], trainer.batch_accuracies[:n], val_steps,
                        val_loss, val_acc, BETA, stop_factor=test.stop_factor)
    return curve, trainer.seconds


# -- the folder of a test ---------------------------------------------------------------------

def write_range_test(result, folder, figure=True, overwrite=False):
    """lr_range.csv (a row per repeat and step), lr_range.json (settings, every rule's
    suggestion, the chosen pair and the train command) and lr_range.png into folder.

    folder: a RunFolder of KIND that the caller claimed (for the whole test), or a path,
    claimed here for the writing: a folder holding another run, or another test unless
    `overwrite`, is refused (`RunFolder.claim_new`).
    """
    if not (isinstance(folder, RunFolder) and folder.claimed):
        with RunFolder(folder, KIND).claim_new(overwrite=overwrite) as claimed:
            return write_range_test(result, claimed, figure)
    _write_files(result, folder.path, figure)


def _write_files(result, folder, figure):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in result.rows():
        writer.writerow([*row[:2], *("" if v is None else repr(v) for v in row[2:])])
    with atomic_write(folder / "lr_range.csv", "w") as file:
        file.write(buffer.getvalue())
    with atomic_write(folder / SUMMARY, "w") as file:
        json.dump(_summary(result), file, indent=2)
        file.write("\n")
    if figure:
        result.plot(folder / "lr_range.png")


def _summary(result):
    test, config = result.test, result.config
    return {
        "test": {"lr_min": test.lr_min, "lr_max": test.lr_max, "mode": test.mode,
                 "stop_factor": test.stop_factor, "repeats": test.repeats, "rule": test.rule},
        "config": config.to_dict(),
        "steps": [int(c.stop) for c in result.curves],
        "suggestions": {k: (list(v) if isinstance(v, tuple) else {"none": v})
                        for k, v in result.suggestions.items()},
        "rule": test.rule,
        "eta_min": result.chosen[0] if result.chosen else None,
        "eta_max": result.chosen[1] if result.chosen else None,
        "seconds": round(result.seconds, 3),
    }
