"""A scikit-learn GridSearchCV over the L2 strength of cifar_engine.MLPClassifier on
Fashion-MNIST (Debian's dataset-fashion-mnist), then the best estimator's test accuracy.

Usage: python asv_bench/fashion_grid.py [--epochs 12] [--hidden 100] [--jobs 2]
"""
import argparse
import time

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=FASHION_MNIST)
    parser.add_argument("--epochs", type=int, default=12, help="3 cycles of n_s 2ep")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--alphas", default="0.001,0.01,0.1,1",
                        help="scikit-learn's alpha (the engine's lam = alpha / (2 batch))")
    args = parser.parse_args()

    from sklearn.model_selection import GridSearchCV

    import cifar_engine as ce
    from cifar_engine import MLPClassifier

    data = ce.load_dataset(args.data)
    X, y = data.train_images, data.train_labels  # uint8 pixels, standardised inside fit
    estimator = MLPClassifier(hidden_layer_sizes=(args.hidden,), batch_size=100,
                              max_iter=args.epochs, schedule="triangular", eta_min=1e-4,
                              eta_max=0.1, n_s="2ep", random_state=0, n_threads=1)
    grid = {"alpha": [float(a) for a in args.alphas.split(",")]}
    start = time.perf_counter()
    search = GridSearchCV(estimator, grid, cv=3, n_jobs=args.jobs).fit(X, y)
    seconds = time.perf_counter() - start
    print("| alpha | mean CV accuracy |")
    print("|---|---|")
    for alpha, score in zip(search.cv_results_["param_alpha"],
                            search.cv_results_["mean_test_score"]):
        print(f"| {alpha:g} | {score:.4f} |")
    test = search.best_estimator_.score(data.test_images, data.test_labels)
    print(f"\nbest alpha {search.best_params_['alpha']:g}: test accuracy {test:.2%} "
          f"({len(X)} training images, {args.epochs} epochs, 784-{args.hidden}-10, "
          f"GridSearchCV(cv=3, n_jobs={args.jobs}) in {seconds:.0f} s)")


if __name__ == "__main__":
    main()
