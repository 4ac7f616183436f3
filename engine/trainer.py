"""The training loop: epochs, shuffles, schedule, evaluations, checkpoints, divergence.

Python decides what happens between evaluations; the steps themselves run in one compiled
call per segment (`Network.run_steps`), so the loop adds no Python work per step. Every
random choice is a function of the seed and the step or epoch (the shuffle of epoch e is
`default_rng([seed, e]).permutation`), so a run resumed from a checkpoint continues exactly
as the uninterrupted run would have.

Training figures are measured on a fixed subset of the training part: its first
TRAIN_EVAL_SIZE images (all of batch 1 under --split batch1).
"""
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import UserError
from .kernels.batch import Augment
from .network import Network
from .schedules import eta_schedule

TRAIN_EVAL_SIZE = 10_000
MAX_SEGMENT = 200  # steps per compiled call at most, so Ctrl-C is answered within ~0.2 s
EVAL_CHUNK = 1000  # rows per inference chunk
METRIC_COLUMNS = ("step", "epoch", "eta", "train_cost", "train_loss", "train_acc",
                  "val_cost", "val_loss", "val_acc")


class Diverged(Exception):
    """The loss became NaN or Inf at `step` with learning rate `eta`."""

    def __init__(self, step, eta):
        super().__init__(f"the loss is not finite at step {step} (eta {eta:.3g}): the run "
                         f"diverged; lower --eta / --eta-max")
        self.step, self.eta = step, eta


class Interrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM); the state at `step` was checkpointed."""

    def __init__(self, step, reason):
        super().__init__(f"{reason} at step {step}")
        self.step, self.reason = step, reason


@dataclass
class Plan:
    """The shape of a run, known before any training."""

    steps_per_epoch: int
    total_steps: int
    n_s: int
    eval_every: int
    etas: np.ndarray = field(repr=False)

    @property
    def epochs(self):
        return self.total_steps / self.steps_per_epoch

    @property
    def evaluations(self):
        return len(evaluation_steps(self))


def make_plan(config, n_train):
    """Steps per epoch, total steps, n_s, evaluation spacing and every step's eta."""
    if config.batch_size > n_train:
        raise UserError(f"--batch-size {config.batch_size} is larger than the training "
                        f"split ({n_train} images)")
    steps_per_epoch = n_train // config.batch_size
    total = config.total_steps(steps_per_epoch)
    n_s = config.half_cycle(steps_per_epoch)
    eval_every = config.eval_every or max(1, total // 50)
    etas = eta_schedule(np.arange(total), config.schedule, config.eta, config.eta_min,
                        config.eta_max, n_s, config.gamma)
    return Plan(steps_per_epoch, total, n_s, eval_every, etas)


def evaluation_steps(plan):
    """The steps after which the run evaluates: every eval_every, and the last one."""
    steps = list(range(plan.eval_every, plan.total_steps, plan.eval_every))
    return steps + [plan.total_steps]


class Trainer:
    """Trains `net` on `split` as `config` says; `run()` goes to the end of the plan.

    State that a checkpoint must carry: the network (parameters, velocity, running
    statistics), `step`, and `history` (one row of METRIC_COLUMNS per evaluation); a
    resumed run passes the last two to the constructor.
    """

    def __init__(self, config, split, net, plan, step=0, history=()):
        self.config, self.split, self.net, self.plan = config, split, net, plan
        self.step = step
        self.history = list(history)
        self.stop_reason = None  # set (e.g. by a signal handler) to stop at the next segment
        self.source = net.batch_source(split.train.images, split.train.labels)
        self.augment = Augment(bool(config.flip), int(config.translate),
                               float(config.noise), float(config.noise_fraction))
        self._losses = np.zeros(MAX_SEGMENT, dtype=net.dtype)
        self._order_epoch, self._order = -1, None
        self.last_loss = float("nan")
        self.seconds = 0.0

    def run(self, on_segment=None, on_evaluation=None, on_checkpoint=None):
        """Train to the end of the plan.

        on_segment(trainer, n_steps): after each compiled call; on_evaluation(trainer, row):
        after each evaluation; on_checkpoint(trainer): when a checkpoint is due (every
        config.checkpoint_every steps, on an interruption, and at the end).
        """
        evals = [s for s in evaluation_steps(self.plan) if s > self.step]
        every = self.config.checkpoint_every
        while self.step < self.plan.total_steps:
            if self.stop_reason:
                if on_checkpoint:
                    on_checkpoint(self)
                raise Interrupted(self.step, self.stop_reason)
            n_steps = min(evals[0], (self.step // every + 1) * every,
                          self._epoch_end(), self.step + MAX_SEGMENT) - self.step
            self._train_segment(n_steps)
            if on_segment:
                on_segment(self, n_steps)
            if self.step == evals[0]:
                evals.pop(0)
                row = self.evaluate_row()
                self.history.append(row)
                if on_evaluation:
                    on_evaluation(self, row)
            if on_checkpoint and (self.step % every == 0 or self.step == self.plan.total_steps):
                on_checkpoint(self)

    def _epoch_end(self):
        spe = self.plan.steps_per_epoch
        return (self.step // spe + 1) * spe

    def _epoch_order(self, epoch):
        if epoch != self._order_epoch:
            rng = np.random.default_rng([self.config.seed, epoch])
            self._order = np.ascontiguousarray(rng.permutation(self.split.train.index))
            self._order_epoch = epoch
        return self._order

    def _train_segment(self, n_steps):
        spe, batch = self.plan.steps_per_epoch, self.config.batch_size
        order = self._epoch_order(self.step // spe)
        etas = self.plan.etas[self.step:self.step + n_steps]
        start = time.perf_counter()
        done = self.net.run_steps(self.source, order, (self.step % spe) * batch, batch,
                                  self.step, etas, self._losses, self.augment)
        self.seconds += time.perf_counter() - start
        if done < n_steps:
            self.step += done  # the steps before the failing one were applied
            raise Diverged(self.step, float(etas[done]))
        self.last_loss = float(self._losses[n_steps - 1])
        self.step += n_steps

    def evaluate_row(self):
        """One row of METRIC_COLUMNS at the current step."""
        train, val = self.split.train, self.split.val
        tr = self.net.evaluate(train.images, train.labels, train.index[:TRAIN_EVAL_SIZE])
        va = self.net.evaluate(val.images, val.labels, val.index)
        eta = float(self.plan.etas[max(self.step - 1, 0)])
        return (self.step, self.step / self.plan.steps_per_epoch, eta,
                tr["cost"], tr["loss"], tr["accuracy"], va["cost"], va["loss"], va["accuracy"])

    def final_accuracies(self):
        """{'train_acc', 'val_acc', 'test_acc'}: train on the whole train part."""
        out = {}
        for name in ("train", "val", "test"):
            part = getattr(self.split, name)
            out[f"{name}_acc"] = self.net.evaluate(part.images, part.labels,
                                                   part.index)["accuracy"]
        return out


def build_network(config, split, image_shape, class_names):
    """The run's network, standardised with the split's training mean and std."""
    spec = config.network_spec(split.mean.size, len(class_names))
    net = Network(spec, seed=config.seed, max_batch=max(config.batch_size, EVAL_CHUNK),
                  momentum=config.momentum, nesterov=config.nesterov)
    net.set_standardisation(split.mean, split.std, class_names, image_shape)
    return net
