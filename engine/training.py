"""A whole training run, from a TrainConfig to a finished run folder.

`train(config, out)` is the Python API: it loads the data, builds (or resumes) the network,
trains and writes the run folder. The command line uses the same three stages, `prepare`,
`start` and `finish`, adding its progress display and signal handling around
`Trainer.run`.
"""
from dataclasses import dataclass

import numba

from .data import load_dataset, make_split
from .model_file import save_network
from .plots import curves_figure, templates_figure
from .runs import RunFolder, environment
from .trainer import EVAL_CHUNK, Trainer, build_network, make_plan


@dataclass
class Prepared:
    """A run's data and plan, checked before any training (what --dry-run shows)."""

    config: object
    dataset: object
    split: object
    plan: object


def prepare(config, cache_dir=None):
    """Load and split the data and plan the run; every mistake is a UserError here."""
    dataset = load_dataset(config.data or None, labels=config.labels, cache_dir=cache_dir)
    split = make_split(dataset, config.split, config.n_val)
    return Prepared(config, dataset, split, make_plan(config, len(split.train)))


def start(prepared, folder, resume=False):
    """A Trainer at step 0 (config.toml written) or at the folder's checkpoint."""
    config = prepared.config
    if resume:
        net, step, history = folder.load_checkpoint(max(config.batch_size, EVAL_CHUNK),
                                                    config.momentum, config.nesterov)
    else:
        dataset = prepared.dataset
        net = build_network(config, prepared.split, dataset.image_shape, dataset.class_names)
        step, history = 0, []
        folder.write_text(folder.config, config.to_toml())
    threads = config.threads or net.step_threads(config.batch_size)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return Trainer(config, prepared.split, net, prepared.plan, step, history)


def run(trainer, folder, on_segment=None, on_evaluation=None):
    """Trainer.run with metrics.csv rewritten at each evaluation and checkpoints saved."""
    def evaluated(t, row):
        folder.write_metrics(t.history)
        if on_evaluation:
            on_evaluation(t, row)

    trainer.run(on_segment=on_segment, on_evaluation=evaluated,
                on_checkpoint=folder.save_checkpoint)


def finish(trainer, folder, prepared):
    """Write model.npz, summary.json and the figures; returns the summary."""
    net, config = trainer.net, trainer.config
    summary = {**trainer.final_accuracies(), "steps": trainer.step,
               "epochs": trainer.step / trainer.plan.steps_per_epoch,
               "seconds": round(trainer.seconds, 3), "seed": config.seed,
               "data": prepared.dataset.source, "environment": environment()}
    save_network(folder.model, net)
    folder.write_summary(summary)
    curves_figure(folder.read_metrics(), folder.curves)
    single_layer = net.spec.n_layers == 1
    templates_figure(net.parameters["W1"], net.image_shape,
                     net.class_names if single_layer else None, folder.templates)
    return summary


def train(config, out=None, cache_dir=None, resume=False, on_evaluation=None):
    """Train as `config` says into the run folder `out`; returns (trainer, summary).

    config: a TrainConfig. out: the run folder (default runs/<timestamp>). resume: continue
    from out's checkpoint. on_evaluation(trainer, row): called after each evaluation.
    """
    folder = RunFolder(out or RunFolder.fresh_name())
    folder.create()
    prepared = prepare(config, cache_dir)
    trainer = start(prepared, folder, resume)
    run(trainer, folder, on_evaluation=on_evaluation)
    return trainer, finish(trainer, folder, prepared)
