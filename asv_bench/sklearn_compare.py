"""Fit time and test accuracy: cifar_engine.MLPClassifier against scikit-learn's
MLPClassifier(solver="sgd") on CIFAR-10, in one run on this machine.

Both fit a 3072-50-10 ReLU network to the same training images (the 45,000 of
`make_split(data, "all", 5000)`, flattened to float32 pixels; with --pixels uint8, the raw
pixels, which the engine gathers as they are and scikit-learn's StandardScaler turns into
float64, as it would for any scikit-learn user) for the same number of epochs,
with the same batch size, constant learning rate, Nesterov momentum and L2 alpha (alpha
means the same in both: the engine turns it into lam = alpha / (2 * batch_size)), and
neither stops before the last epoch. The engine standardises the pixels inside fit, in its
timing; scikit-learn, which does not standardise, is given the pixels standardised by a
StandardScaler fitted outside its timing. So the speed-up is if anything understated.

The fits are interleaved (engine first in even runs, scikit-learn first in odd ones), run r
with random_state=r for both; the table shows the median over --runs fits of each. A tiny
engine fit first loads (or compiles) its Numba code, which no timing includes.

Usage: python asv_bench/sklearn_compare.py [--epochs 10] [--runs 3] [--n-train 45000]
    [--batch-size 100] [--pixels float32|uint8] [--threads N]
(a quick check that it runs: --epochs 1 --runs 1 --n-train 2000)
"""
import argparse
import statistics
import time
import warnings

DATA = "../shared/data/cifar-10-jpeg.tar.gz"


def load(path, n_train, pixels):
    """(X_train, y_train, X_test, y_test): pixels (n, 3072) of dtype `pixels`, int labels."""
    import cifar_engine as ce

    split = ce.make_split(ce.load_dataset(path), "all", 5000)
    rows = split.train.index[:n_train]
    X = split.train.images[rows].astype(pixels)
    X_test = split.test.images[split.test.index].astype(pixels)
    return X, split.train.labels[rows], X_test, split.test.labels[split.test.index]


def settings(args):
    return dict(hidden_layer_sizes=(args.hidden,), batch_size=args.batch_size,
                learning_rate_init=args.lr, momentum=args.momentum, nesterovs_momentum=True,
                alpha=args.alpha, max_iter=args.epochs, n_iter_no_change=args.epochs + 1)


def engine_fit(args, run, X, y):
    from cifar_engine import MLPClassifier

    clf = MLPClassifier(random_state=run, n_threads=args.threads, **settings(args))
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start, clf


def sklearn_fit(args, run, X, y):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(solver="sgd", learning_rate="constant", shuffle=True, random_state=run,
                        **settings(args))
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start, clf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA, help="the CIFAR-10 source  [default: %(default)s]")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="fits of each implementation")
    parser.add_argument("--n-train", type=int, default=45_000, help="training images used")
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.005, help="constant learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--alpha", type=float, default=1.0, help="L2, scikit-learn's alpha")
    parser.add_argument("--pixels", choices=("float32", "uint8"), default="float32",
                        help="what both are given: float32 pixels, or the uint8 ones, which "
                             "scikit-learn's StandardScaler turns into float64 (so it trains "
                             "in float64) and the engine gathers as they are")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for both (and the engine's n_threads)  "
                             "[default: each library's own choice]")
    args = parser.parse_args()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads, user_api="blas")

    from sklearn.preprocessing import StandardScaler

    X, y, X_test, y_test = load(args.data, args.n_train, args.pixels)
    scaler = StandardScaler().fit(X)
    X_scaled, X_test_scaled = scaler.transform(X), scaler.transform(X_test)
    warnings.simplefilter("ignore")  # both warn that max_iter ended the fit: it is meant to

    engine_fit(args, 0, X[:500], y[:500])  # Numba's code loaded (or compiled) untimed
    figures = {"cifar-engine": ([], []), "scikit-learn": ([], [])}
    for run in range(args.runs):
        pair = [("cifar-engine", engine_fit, X, X_test), ("scikit-learn", sklearn_fit, X_scaled,
                                                          X_test_scaled)]
        for name, fit, train, test in (pair if run % 2 == 0 else pair[::-1]):
            seconds, clf = fit(args, run, train, y)
            accuracy = clf.score(test, y_test)
            figures[name][0].append(seconds)
            figures[name][1].append(accuracy)
            print(f"run {run}: {name:12s} {seconds:7.2f} s  test accuracy {accuracy:.2%}",
                  flush=True)

    med = {name: (statistics.median(s), statistics.median(a))
           for name, (s, a) in figures.items()}
    print(f"\n{len(X)} training images ({args.pixels} pixels; scikit-learn trains in "
          f"{X_scaled.dtype}), {args.epochs} epochs, 3072-{args.hidden}-10, batch "
          f"{args.batch_size}, lr {args.lr:g}, momentum {args.momentum:g} (Nesterov), alpha "
          f"{args.alpha:g}; median of {args.runs} fits each\n")
    print("| implementation | fit seconds | test accuracy | fits (s) |")
    print("|---|---|---|---|")
    for name, (seconds, accuracy) in med.items():
        fits = ", ".join(f"{s:.2f}" for s in figures[name][0])
        print(f"| {name} | {seconds:.2f} | {accuracy:.2%} | {fits} |")
    speedup = med["scikit-learn"][0] / med["cifar-engine"][0]
    gain = med["cifar-engine"][1] - med["scikit-learn"][1]
    print(f"\nspeed-up: {speedup:.2f}x; accuracy: {gain:+.2%} points for cifar-engine")


if __name__ == "__main__":
    main()
