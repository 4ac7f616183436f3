"""`cifar-engine grad-check`: analytic gradients against finite differences."""
import json

import click

from cifar_engine.cli.options import data_options, model_options, spec_from_options


@click.command("grad-check")
@model_options
@data_options
@click.option("--synthetic", is_flag=True,
              help="Check on standard-normal inputs and random labels instead of real images.")
@click.option("--samples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Images (rows) in the check's batch.")
@click.option("--features", type=click.IntRange(min=1), default=100, show_default=True,
              help="Keep only the first F features of each image (the classic reports' shrink).")
@click.option("--classes", type=click.IntRange(min=2), default=10, show_default=True,
              help="Classes of the synthetic problem.")
@click.option("--method", type=click.Choice(["centred", "forward", "both"]), default="centred",
              show_default=True, help="Finite-difference scheme.")
@click.option("--h", "h", type=click.FloatRange(min=0, min_open=True), default=1e-5,
              show_default=True, help="Difference step.")
@click.option("--eps", type=click.FloatRange(min=0, min_open=True), default=1e-12,
              show_default=True, help="Floor of the relative error's denominator.")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Largest relative error that passes.  [default: 1e-6 centred, 1e-2 forward (first order in h)]")
@click.option("--entries", type=click.IntRange(min=1), default=None,
              help="Check a seeded sample of K entries per tensor instead of all.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def grad_check(synthetic, samples, features, classes, method, h, eps, tol, entries, as_json,
               src, labels, cache_dir, **model):
    """Check every gradient against finite differences.

    Every tensor (W, b, gamma, beta) is checked in float64.

    Dropout is off during a check and --dtype is ignored (always float64). Exits 1 when
    a tensor fails.
    """
    from cifar_engine.gradcheck import check_gradients, format_table
    from cifar_engine.network import Network

    X, y, n_classes = _problem(synthetic, samples, features, classes, src, labels, cache_dir,
                               model["seed"])
    spec = spec_from_options(model, X.shape[1], n_classes, dtype="float64", dropout=0.0)
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
                   f"{X.shape[1]} features, {n_classes} classes; net {list(spec.dims)}"
                   f"{' with BN' if spec.batch_norm else ''}, loss {spec.loss}, lam {spec.lam}, "
                   f"h {h:g}")
        for m, rs in report.items():
            click.echo(f"\n{m} differences\n{format_table(rs)}")
    if not all(r.passed for rs in report.values() for r in rs):
        raise click.exceptions.Exit(1)


def _problem(synthetic, samples, features, classes, src, labels, cache_dir, seed):
    from cifar_engine.data import load_dataset
    from cifar_engine.errors import UserError
    from cifar_engine.gradcheck import problem_from_images, synthetic_problem

    if synthetic:
        X, y = synthetic_problem(samples, features, classes, seed=seed)
        return X, y, classes
    dataset = load_dataset(src, labels=labels, cache_dir=cache_dir)
    n_train, n_features = dataset.train_images.shape
    if samples > n_train or features > n_features:
        raise UserError(f"--samples/--features: the data has {n_train} images of "
                        f"{n_features} features")
    X, y = problem_from_images(dataset.train_images, dataset.train_labels, samples, features)
    return X, y, len(dataset.class_names)
