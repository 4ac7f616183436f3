"""`cifar-engine grad-check`: analytic gradients against finite differences."""
import json

import click

from cifar_engine.cli.options import (data_options, model_options, setting_option,
                                      spec_from_options)
from cifar_engine.settings import GRAD_CHECK


def _option(name, **overrides):
    return setting_option(name, GRAD_CHECK, **overrides)


@click.command("grad-check")
@model_options
@data_options
@click.option("--synthetic", is_flag=True,
              help="Check on standard-normal inputs and random labels instead of real images.")
@_option("samples")
@_option("features")
@_option("classes")
@click.option("--method", type=click.Choice(["centred", "forward", "both"]), default="centred",
              show_default=True, help="Finite-difference scheme.")
@_option("h")
@_option("eps")
@_option("tol")
@_option("entries")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def grad_check(synthetic, samples, features, classes, method, h, eps, tol, entries, as_json,
               src, labels, cache_dir, **model):
    """Check every gradient against finite differences.

    Every tensor (W, b, gamma, beta) is checked in float64.

    Dropout is off during a check and --dtype is ignored (always float64). Exits 1 when
    a tensor fails, or measured nothing (every entry below resolution or across a kink).
    """
    from cifar_engine.gradcheck import check_gradients, check_options, format_table, unmeasured
    from cifar_engine.model.network import Network

    check_options(samples=samples, features=features, classes=classes, h=h, eps=eps, tol=tol,
                  entries=entries)
    X, y, spec = _problem(synthetic, samples, features, classes, entries, src, labels,
                          cache_dir, model)
    methods = ["centred", "forward"] if method == "both" else [method]
    report = {}
    for m in methods:
        net = Network(spec, seed=model["seed"], max_batch=X.shape[0])
        report[m] = check_gradients(net, X, y, method=m, h=h, eps=eps, tol=tol,
                                    entries=entries, seed=model["seed"])
    if as_json:
        click.echo(json.dumps({m: [r.to_dict() for r in rs] for m, rs in report.items()},
                              indent=2))
    else:
        click.echo(f"{'synthetic' if synthetic else 'real'} data: {X.shape[0]} samples x "
                   f"{X.shape[1]} features, {spec.n_classes} classes; net {list(spec.dims)}"
                   f"{' with BN' if spec.batch_norm else ''}, loss {spec.loss}, lam {spec.lam}, "
                   f"h {h:g}")
        for m, rs in report.items():
            click.echo(f"\n{m} differences\n{format_table(rs)}")
    for m, rs in report.items():
        if unmeasured(rs):
            click.echo(f"cifar-engine: grad-check: {', '.join(unmeasured(rs))} measured nothing "
                       f"by {m} differences (every entry below resolution or across a kink: "
                       f"try a larger --h or --tol)", err=True)
    if not all(r.passed for rs in report.values() for r in rs):
        raise click.exceptions.Exit(1)


def _problem(synthetic, samples, features, classes, entries, src, labels, cache_dir, model):
    """X, y and the float64 spec of the check; its memory is checked before X is drawn."""
    from cifar_engine.data import load_dataset
    from cifar_engine.errors import UserError
    from cifar_engine.gradcheck import check_size, problem_from_images, synthetic_problem

    def spec(n_features, n_classes):
        s = spec_from_options(model, n_features, n_classes, dtype="float64", dropout=0.0)
        check_size(s, samples, entries)
        return s

    if synthetic:
        s = spec(features, classes)
        return (*synthetic_problem(samples, features, classes, seed=model["seed"]), s)
    dataset = load_dataset(src, labels=labels, cache_dir=cache_dir)
    n_train, n_features = dataset.train_images.shape
    if samples > n_train or features > n_features:
        raise UserError(f"--samples/--features: the data has {n_train} images of "
                        f"{n_features} features")
    s = spec(features, len(dataset.class_names))
    return (*problem_from_images(dataset.train_images, dataset.train_labels, samples,
                                 features), s)
