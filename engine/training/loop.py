"""The training loop: epochs, shuffles, schedule, evaluations, checkpoints, divergence.

Python decides what happens between evaluations; the steps themselves run in one compiled
call per segment (`Network.run_steps`), so the loop adds no Python work per step. Every
random choice is a function of the seed and the step or epoch (the shuffle of epoch e is
`default_rng([seed, e]).permutation`), so a run resumed from a checkpoint continues exactly
as the uninterrupted run would have.

Training figures are measured on a fixed subset of the training part: its first
TRAIN_EVAL_SIZE images (all of batch 1 under --split batch1).
"""
import threading
import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from ..errors import SettingError
from ..kernels.batch import Augment
from ..model.network import EVAL_CHUNK, Network
from ..schedules import eta_schedule
from ..settings import MAX_STEPS

TRAIN_EVAL_SIZE = 10_000
MAX_SEGMENT = 200  # steps per compiled call at most, so Ctrl-C is answered within ~0.2 s
PARTS = ("train", "val", "test")
COMPILE_NOTICE_AFTER = 1.0  # seconds of warm-up after which it is said to be compiling


class MetricRow(NamedTuple):
    """One evaluation: the step, epoch and eta, and cost, loss and accuracy on a fixed
    subset of the training part and on the validation part."""

    step: int
    epoch: float
    eta: float
    train_cost: float
    train_loss: float
    train_acc: float
    val_cost: float
    val_loss: float
    val_acc: float


METRIC_COLUMNS = MetricRow._fields


class Diverged(Exception):
    """The loss became NaN or Inf at `step` with learning rate `eta`."""

    def __init__(self, step, eta):
        super().__init__(f"the loss is not finite at step {step} (eta {eta:.3g}): the run "
                         f"diverged; lower eta or eta_max")
        self.step, self.eta = step, eta


class Interrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM); the state at `step` was checkpointed."""

    def __init__(self, step, reason):
        super().__init__(f"{reason} at step {step}")
        self.step, self.reason = step, reason


class Stop:
    """A request to end a run at its next segment: `request(reason)` (a signal handler,
    another thread) interrupts it, with a checkpoint (`Interrupted`); `end(reason)` (an
    Observer's stopping rule) ends it there as if its plan ended, with its result."""

    def __init__(self):
        self.reason = None
        self.ended = None

    def request(self, reason):
        self.reason = reason

    def end(self, reason):
        self.ended = reason


class Observer:
    """Watches a run: a run folder, a progress display, a search's pruner. Each method is
    called by `Trainer.run` at its moment; the defaults do nothing."""

    def started(self, trainer, folder, notes):
        """A run starts (before its kernels load): its Trainer, its RunFolder (or None) and
        the notes on how its settings were resolved."""

    def compiling(self, trainer):
        """The warm-up is taking long: the kernels are being compiled (once per install)."""

    def compiled(self, trainer):
        """The kernels are loaded or compiled (trainer.compile_seconds); training starts."""

    def segment(self, trainer, n_steps):
        """After each compiled call of n_steps steps."""

    def evaluation(self, trainer, row):
        """After each evaluation, with its MetricRow (already in trainer.history)."""

    def checkpoint(self, trainer):
        """When a checkpoint is due: every checkpoint_every steps, on a stop, at the end."""

    def finished(self, trainer, result):
        """The run ended (called by `run.run`, once, after its run folder's files are
        written): result is its RunResult, with the final accuracies, or None when it ended
        by an exception (Diverged, Interrupted, an Observer's), which then propagates."""


@dataclass
class Callbacks(Observer):
    """An Observer made of plain functions (any of them None)."""

    on_segment: object = None
    on_evaluation: object = None
    on_checkpoint: object = None

    def segment(self, trainer, n_steps):
        if self.on_segment:
            self.on_segment(trainer, n_steps)

    def evaluation(self, trainer, row):
        if self.on_evaluation:
            self.on_evaluation(trainer, row)

    def checkpoint(self, trainer):
        if self.on_checkpoint:
            self.on_checkpoint(trainer)


@dataclass
class Plan:
    """The shape of a run, known before any training; etas are computed per segment, so a
    plan of any length costs nothing.

    Steps are numbered from the network's first step: a run that continues a trained
    network (the estimator's warm start and partial_fit) starts at first_step, in its
    first_epoch-th shuffle, and its epochs are counted from there. eval_every 0: no
    evaluation at all (the run's accuracies are NaN; its observers measure what they need).
    """

    steps_per_epoch: int
    total_steps: int
    n_s: int
    eval_every: int
    eta_of: object = field(repr=False)  # int64[k] step numbers -> float64[k] etas
    first_step: int = 0
    first_epoch: int = 0

    @property
    def epochs(self):
        return (self.total_steps - self.first_step) / self.steps_per_epoch

    def continuing(self, first_step, first_epoch, schedule_start):
        """This plan run on a network that has trained first_step steps in first_epoch
        epochs, its schedule counted from step schedule_start."""
        def eta_of(steps):
            return self.eta_of(steps - schedule_start)
        return replace(self, total_steps=first_step + self.total_steps, eta_of=eta_of,
                       first_step=first_step, first_epoch=first_epoch)

    def epoch_of(self, step):
        """The number of the epoch (the shuffle) that step `step` belongs to."""
        return self.first_epoch + (step - self.first_step) // self.steps_per_epoch

    def epoch_step(self, step):
        """Where step `step` falls in its epoch: 0 .. steps_per_epoch - 1."""
        return (step - self.first_step) % self.steps_per_epoch

    @property
    def evaluations(self):
        return len(evaluation_steps(self))

    def etas(self, start=0, stop=None):
        """eta of the steps start, ..., stop - 1: float64[stop - start]."""
        stop = self.total_steps if stop is None else stop
        return self.eta_of(np.arange(start, stop, dtype=np.int64))

    def sampled(self, points=4000):
        """(steps, etas) at most `points` steps spread over the run, for figures."""
        steps = np.unique(np.linspace(0, self.total_steps - 1, points).astype(np.int64))
        return steps, self.eta_of(steps)


def make_plan(config, n_train):
    """Steps per epoch, total steps, n_s, evaluation spacing and every step's eta."""
    if config.batch_size > n_train:
        raise SettingError("batch_size", f"{config.batch_size} is larger than the training "
                                         f"split ({n_train} images)")
    steps_per_epoch = n_train // config.batch_size
    total = config.total_steps(steps_per_epoch)
    if total > MAX_STEPS:
        stop = next((name for name in ("steps", "epochs", "cycles") if getattr(config, name)),
                    "n_s")
        raise SettingError(stop, f"gives a run of {total} steps; at most {MAX_STEPS} can run")
    n_s = config.half_cycle(steps_per_epoch)
    eval_every = config.eval_every or max(1, total // 50)

    def eta_of(steps):
        return eta_schedule(steps, config.schedule, eta=config.eta, eta_min=config.eta_min,
                            eta_max=config.eta_max, n_s=n_s, gamma=config.gamma, total=total,
                            warmup=config.warmup, anneal=config.anneal)
    return Plan(steps_per_epoch, total, n_s, eval_every, eta_of)


def evaluation_steps(plan):
    """The steps after which the run evaluates: every eval_every, and the last one."""
    if not plan.eval_every:
        return []
    first = plan.first_step + plan.eval_every
    return list(range(first, plan.total_steps, plan.eval_every)) + [plan.total_steps]


class Trainer:
    """Trains `net` on `split` as `config` says; `run()` goes to the end of the plan.

    State that a checkpoint must carry: the network (parameters, velocity, running
    statistics), `step`, and `history` (a MetricRow per evaluation); a resumed run passes
    the last two to the constructor. `losses` holds the batch loss of every step this
    Trainer ran (float32, from step `first_step`), `batch_accuracies` their batches'
    accuracies. The images of the split are preprocessed once, into one source per image
    array (train and val share theirs), when the Trainer is made. `stop` (a Stop) ends
    `run()` at the next segment.
    """

    def __init__(self, config, split, net, plan, step=0, history=(), stop=None):
        self.config, self.split, self.net, self.plan = config, split, net, plan
        self.step = self.first_step = step
        self.history = [MetricRow(*row) for row in history]
        self.stop = Stop() if stop is None else stop
        self._sources = part_sources(net, split)
        self.source = self._sources["train"]
        self.augment = Augment(bool(config.flip), int(config.translate),
                               float(config.noise), float(config.noise_fraction))
        self._losses = [np.zeros(0, dtype=np.float32)]
        self._correct = [np.zeros(0, dtype=np.int64)]
        self._order_epoch, self._order = -1, None
        self.seconds = 0.0
        self.compile_seconds = 0.0

    @property
    def losses(self):
        """Batch loss of each step run by this Trainer: float32[step - first_step]."""
        if len(self._losses) > 1:
            self._losses = [np.concatenate(self._losses)]
        return self._losses[0]

    @property
    def batch_accuracies(self):
        """Accuracy of each step's batch, by its scores before the step's update: float64."""
        if len(self._correct) > 1:
            self._correct = [np.concatenate(self._correct)]
        return self._correct[0] / self.config.batch_size

    @property
    def last_loss(self):
        last = next((a for a in reversed(self._losses) if a.size), None)
        return float(last[-1]) if last is not None else float("nan")

    def compile(self, observers=()):
        """Load or compile the kernels a run calls, timed apart from training.

        Observers hear `compiling` when this takes longer than COMPILE_NOTICE_AFTER
        seconds, which means Numba is compiling (a warm cache loads in a fraction of that).
        """
        notice = threading.Timer(COMPILE_NOTICE_AFTER,
                                 lambda: [o.compiling(self) for o in observers])
        start = time.perf_counter()
        notice.start()
        try:
            order = self._epoch_order(self.plan.epoch_of(self.step))
            no_steps = np.zeros(0, dtype=np.float64)
            self.net.run_steps(self.source, order, 0, self.config.batch_size, self.step,
                               no_steps, np.zeros(1, self.net.dtype), self.augment)
            self.evaluate("train", 1)
        finally:
            notice.cancel()
        self.compile_seconds = time.perf_counter() - start
        return self.compile_seconds

    def run(self, observers=()):
        """Train to the end of the plan, telling each Observer of its moments."""
        evals = [s for s in evaluation_steps(self.plan) if s > self.step]
        every = self.config.checkpoint_every
        while self.step < self.plan.total_steps and not self.stop.ended:
            if self.stop.reason:
                tell(observers, "checkpoint", self)
                raise Interrupted(self.step, self.stop.reason)
            n_steps = min(*evals[:1], (self.step // every + 1) * every, self._epoch_end(),
                          self.step + MAX_SEGMENT, self.plan.total_steps) - self.step
            self.train_segment(n_steps)
            tell(observers, "segment", self, n_steps)
            if evals and self.step == evals[0]:
                evals.pop(0)
                row = self.evaluate_row()
                self.history.append(row)
                tell(observers, "evaluation", self, row)
            if self.step % every == 0 or self.step == self.plan.total_steps or self.stop.ended:
                tell(observers, "checkpoint", self)

    def _epoch_end(self):
        return self.step + self.plan.steps_per_epoch - self.plan.epoch_step(self.step)

    @property
    def at_epoch_end(self):
        """Whether the last segment ended an epoch."""
        return self.step > self.first_step and self.plan.epoch_step(self.step) == 0

    def _epoch_order(self, epoch):
        if epoch != self._order_epoch:
            rng = np.random.default_rng([self.config.seed, epoch])
            self._order = np.ascontiguousarray(rng.permutation(self.split.train.index))
            self._order_epoch = epoch
        return self._order

    def train_segment(self, n_steps, etas=None):
        """n_steps steps in one compiled call, within one epoch; etas default to the plan's.

        Raises Diverged at a non-finite loss (the steps before it are applied).
        """
        batch = self.config.batch_size
        order = self._epoch_order(self.plan.epoch_of(self.step))
        if etas is None:
            etas = self.plan.etas(self.step, self.step + n_steps)
        losses = np.zeros(n_steps, dtype=self.net.dtype)
        correct = np.zeros(n_steps, dtype=np.int64)
        start = time.perf_counter()
        done = self.net.run_steps(self.source, order, self.plan.epoch_step(self.step) * batch,
                                  batch, self.step, etas, losses, self.augment, correct)
        self.seconds += time.perf_counter() - start
        self._losses.append(losses[:done].astype(np.float32))
        self._correct.append(correct[:done])
        self.step += done
        if done < n_steps:
            raise Diverged(self.step, float(etas[done]))

    def evaluate(self, part, count=None):
        """`Network.evaluate` of the first `count` images (default: all) of the split's
        part "train", "val" or "test"."""
        return self.net.evaluate_source(self._sources[part],
                                        getattr(self.split, part).index[:count])

    def evaluate_row(self):
        """The MetricRow of the current step."""
        tr = self.evaluate("train", TRAIN_EVAL_SIZE)
        va = self.evaluate("val")
        eta = float(self.plan.etas(max(self.step - 1, 0), max(self.step, 1))[0])
        return MetricRow(self.step, self.step / self.plan.steps_per_epoch, eta,
                         tr["cost"], tr["loss"], tr["accuracy"], va["cost"], va["loss"],
                         va["accuracy"])

    def final_accuracies(self):
        """{'train_acc', 'val_acc', 'test_acc'}, each on its whole part. Under the tta
        setting, validation and test are test-time augmented and 'without_tta' holds their
        plain accuracies; train_acc is always plain (it measures the fit)."""
        if not self.plan.eval_every:
            return {f"{name}_acc": float("nan") for name in PARTS}
        plain = {f"{name}_acc": self.evaluate(name)["accuracy"] for name in PARTS}
        if self.config.tta == "none":
            return plain
        augmented = {f"{name}_acc": self.evaluate_tta(name) for name in PARTS[1:]}
        return {**plain, **augmented, "without_tta": {key: plain[key] for key in augmented}}

    def evaluate_tta(self, part):
        """The accuracy on a part ("val", "test") under the tta setting: the part's
        preprocessed source is reused; only the augmented views are preprocessed."""
        source, part = self._sources[part], getattr(self.split, part)
        return self.net.evaluate_tta(part.images, part.labels, part.index, self.config.tta,
                                     source)["accuracy"]


def check_translate(translate, image_shape):
    """SettingError unless translate (pixels) is less than the images' height and width."""
    smallest = min(image_shape[1:])
    if translate >= smallest:
        raise SettingError("translate", f"must be less than the images' height and width "
                                        f"({smallest} pixels), got {translate}")


def tell(observers, moment, *args):
    """Call each observer's method `moment` with args."""
    for observer in observers:
        getattr(observer, moment)(*args)


def build_network(config, preprocessing, image_shape, class_names, state=None):
    """The run's network, with the preprocessing fitted on its split's train part; state:
    a `state_dict` to start from (a network continued) instead of the initialisation."""
    spec = config.network_spec(preprocessing.n_inputs, len(class_names))
    net = Network(spec, seed=config.seed, max_batch=max(config.batch_size, EVAL_CHUNK),
                  momentum=config.momentum, nesterov=config.nesterov, state=state)
    net.set_preprocessing(preprocessing, class_names, image_shape)
    return net


def part_sources(net, split):
    """{"train", "val", "test": the net's source of that part's images}, one source (one
    preprocessing of the images) per image array: train and val share theirs."""
    by_arrays, sources = {}, {}
    for name in PARTS:
        part = getattr(split, name)
        key = id(part.images), id(part.labels)
        if key not in by_arrays:
            by_arrays[key] = net.source(part.images, part.labels)
        sources[name] = by_arrays[key]
    return sources
