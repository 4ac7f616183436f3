"""Race the engine against its peers on the same machine, in one run.

For each configuration A-E (see benchmarks/common.py), it times:
  engine      one training step as the trainer runs it (gather, forward, backward, update;
              STEPS_PER_CALL steps per call into the compiled code, as the trainer makes them)
  gemm[LIB]   the GEMM-only bound of each BLAS library found (see engine/kernels/
              blas_libraries.py): just the matrix products a step must do, back to back on
              hot buffers (X W^T and dW for every layer, dH for every layer but the first),
              through the engine's own gemm on that library; the engine runs on the library
              CIFAR_ENGINE_BLAS chooses (auto: the fastest here), and engine/gemm compares it
              with the bound of that same library
  gemm+data   the GEMM-only bound plus the data movement no step can skip: the batch gathered
              from the uint8 images into X, and the SGD-momentum update of every weight
              matrix (the engine's gather and update kernels, none of its other loops)
  numpy       a plain NumPy step, written independently below
  torch       PyTorch eager (torch.nn + torch.optim.SGD), and with --compile torch.compile
and per epoch (shuffle + gather + steps over 45,000 images) the engine, torch and, on A and
D, scikit-learn's MLPClassifier. Before timing anything it checks that the engine and the
NumPy step agree after 3 steps from the same weights.

Each measurement runs in --runs fresh processes, the implementations interleaved round-robin
within each; the table shows the median of the per-process medians, with min and max.
Usage: python asv_bench/compare.py [--configs A,B] [--runs 3] [--compile] [--json out.json]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks.common import CONFIGS, EPOCH_IMAGES, LAM, MOMENTUM, D, K, images  # noqa: E402

ETA = 1e-3
THREADS = 2
BN_EPS = 1e-5
STEPS_PER_CALL = 20


# -- the engine --------------------------------------------------------------------------------

class Engine:
    def __init__(self, config):
        from benchmarks.common import network, use_step_threads

        self.batch = CONFIGS[config]["batch_size"]
        self.net = network(config)
        use_step_threads(self.net, config)  # as the trainer does
        imgs, labels = images(EPOCH_IMAGES)
        self.source = self.net.batch_source(imgs, labels)
        self.steps = EPOCH_IMAGES // self.batch
        self.etas = np.full(self.steps, ETA)
        self.losses = np.zeros(self.steps, self.net.dtype)
        self.same_batch = np.tile(np.arange(self.batch), STEPS_PER_CALL)  # as the peers' steps
        self.step()

    def step(self):
        self.net.run_steps(self.source, self.same_batch, 0, self.batch, 0,
                           self.etas[:STEPS_PER_CALL], self.losses)

    def epoch(self):
        order = np.random.default_rng(0).permutation(EPOCH_IMAGES)
        self.net.run_steps(self.source, order, 0, self.batch, 0, self.etas, self.losses)


# -- the GEMM-only bound -------------------------------------------------------------------------

class Gemm:
    """The products of one step on hot float32 buffers, nothing else."""

    def __init__(self, config):
        c = CONFIGS[config]
        dims = (D, *c["hidden"], K)
        n = c["batch_size"]
        rng = np.random.default_rng(0)
        sizes = [m * d for d, m in zip(dims[:-1], dims[1:])]
        self.weights = rng.standard_normal(sum(sizes), dtype=np.float32)  # W of every layer
        self.weight_grads = np.empty_like(self.weights)
        offsets = np.cumsum([0, *sizes])
        self.layers = []
        for (d, m), lo in zip(zip(dims[:-1], dims[1:]), offsets):
            self.layers.append(dict(
                X=rng.standard_normal((n, d), dtype=np.float32),
                W=self.weights[lo:lo + m * d].reshape(m, d),
                S=np.empty((n, m), np.float32), G=rng.standard_normal((n, m), dtype=np.float32),
                dW=self.weight_grads[lo:lo + m * d].reshape(m, d),
                dX=np.empty((n, d), np.float32)))

        from cifar_engine.kernels.blas import gemm

        self.gemm = gemm

    def step(self):
        gemm = self.gemm
        for L in self.layers:
            gemm(L["S"], L["X"], L["W"], False, True)
        for i, L in enumerate(reversed(self.layers)):
            gemm(L["dW"], L["G"], L["X"], True, False)
            if i < len(self.layers) - 1:
                gemm(L["dX"], L["G"], L["W"], False, False)


class GemmData(Gemm):
    """The products of one step, plus gathering its batch and updating every weight matrix."""

    def __init__(self, config):
        from cifar_engine.kernels.batch import NO_AUGMENT, gather
        from cifar_engine.kernels.sgd import sgd_momentum

        self.gather, self.sgd_momentum, self.no_augment = gather, sgd_momentum, NO_AUGMENT
        self.images = images(EPOCH_IMAGES)[0]
        self.rows = np.arange(CONFIGS[config]["batch_size"])
        self.mean, self.inv_std = np.full(D, 120, np.float32), np.full(D, 1 / 64, np.float32)
        super().__init__(config)
        self.velocity = np.zeros_like(self.weights)

    def step(self):
        self.gather(self.layers[0]["X"], self.images, self.rows, self.mean, self.inv_std,
                    (3, 32, 32), self.no_augment, np.uint64(0))
        super().step()
        self.sgd_momentum(self.weights, self.velocity, self.weight_grads, ETA, MOMENTUM, False,
                          LAM, self.weights.size)


# -- a plain NumPy step, independent of the engine ----------------------------------------------

class NumpyStep:
    """Forward, backward and SGD-momentum update of the configuration's net in NumPy."""

    def __init__(self, config, params=None):
        c = CONFIGS[config]
        self.bn = c["batch_norm"]
        self.batch = c["batch_size"]
        dims = (D, *c["hidden"], K)
        rng = np.random.default_rng(0)
        self.p = params or {}
        if not params:
            for l, (d, m) in enumerate(zip(dims[:-1], dims[1:]), start=1):
                self.p[f"W{l}"] = (rng.standard_normal((m, d)) * np.sqrt(2 / d)).astype(np.float32)
                if self.bn and l < len(dims) - 1:
                    self.p[f"gamma{l}"] = np.ones(m, np.float32)
                    self.p[f"beta{l}"] = np.zeros(m, np.float32)
                else:
                    self.p[f"b{l}"] = np.zeros(m, np.float32)
        self.n_layers = len(dims) - 1
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        imgs, labels = images(EPOCH_IMAGES)
        self.images, self.labels = imgs, labels
        self.mean, self.inv_std = np.float32(120.0), np.float32(1 / 64.0)

    def batch_at(self, k):
        rows = np.arange(k * self.batch, (k + 1) * self.batch)
        return (self.images[rows].astype(np.float32) - self.mean) * self.inv_std, self.labels[rows]

    def step(self, k=0):
        X, y = self.batch_at(k)
        p, n = self.p, len(y)
        cache, h = [], X
        for l in range(1, self.n_layers + 1):
            s = h @ p[f"W{l}"].T
            if l == self.n_layers:
                s = s + p[f"b{l}"]
                cache.append((h, None))
                break
            if self.bn:
                mu, var = s.mean(0), s.var(0)
                s_hat = (s - mu) / np.sqrt(var + BN_EPS)
                cache.append((h, (s_hat, var)))
                h = np.maximum(p[f"gamma{l}"] * s_hat + p[f"beta{l}"], 0)
            else:
                cache.append((h, None))
                h = np.maximum(s + p[f"b{l}"], 0)
        z = np.exp(s - s.max(1, keepdims=True))
        P = z / z.sum(1, keepdims=True)
        loss = -np.log(P[np.arange(n), y]).mean()
        G = P
        G[np.arange(n), y] -= 1
        G /= n
        grads = {}
        for l in range(self.n_layers, 0, -1):
            h_in, bn = cache[l - 1]
            if bn is not None:
                s_hat, var = bn
                grads[f"gamma{l}"] = (G * s_hat).sum(0)
                grads[f"beta{l}"] = G.sum(0)
                G = (p[f"gamma{l}"] / (n * np.sqrt(var + BN_EPS))) * (
                    n * G - grads[f"beta{l}"] - s_hat * grads[f"gamma{l}"])
            else:
                grads[f"b{l}"] = G.sum(0)
            grads[f"W{l}"] = G.T @ h_in + 2 * LAM * p[f"W{l}"]
            if l > 1:
                G = (G @ p[f"W{l}"]) * (h_in > 0)
        for k_, g in grads.items():
            self.v[k_] = MOMENTUM * self.v[k_] - ETA * g
            p[k_] += self.v[k_]
        return loss


def check_agreement(config):
    """The engine and the NumPy step agree after 3 steps from the same weights."""
    from benchmarks.common import network

    net = network(config)
    start = {k: v.copy() for k, v in net.parameters.items()}
    ref = NumpyStep(config, params=start)
    imgs, labels = images(EPOCH_IMAGES)
    source = net.batch_source(imgs, labels)
    order = np.arange(EPOCH_IMAGES)
    batch = CONFIGS[config]["batch_size"]
    losses = np.zeros(3, np.float32)
    net.run_steps(source, order, 0, batch, 0, np.full(3, ETA), losses)
    for k in range(3):
        ref.step(k)
    worst = max(float(np.abs(net.parameters[k] - ref.p[k]).max() /
                      max(np.abs(ref.p[k]).max(), 1e-12)) for k in ref.p)
    if worst > 1e-3:
        raise SystemExit(f"config {config}: engine and NumPy disagree after 3 steps "
                         f"(max relative difference {worst:.2e})")
    return worst


# -- PyTorch and scikit-learn ------------------------------------------------------------------

class Torch:
    def __init__(self, config, compile_=False):
        import torch

        torch.set_num_threads(THREADS)
        torch.manual_seed(0)
        c = CONFIGS[config]
        dims = (D, *c["hidden"], K)
        layers = []
        for l, (d, m) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            last = l == len(dims) - 1
            layers.append(torch.nn.Linear(d, m, bias=last or not c["batch_norm"]))
            if not last:
                if c["batch_norm"]:
                    layers.append(torch.nn.BatchNorm1d(m, eps=BN_EPS, momentum=0.1))
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        weights = [p for name, p in self.model.named_parameters() if p.ndim == 2]
        others = [p for name, p in self.model.named_parameters() if p.ndim != 2]
        self.opt = torch.optim.SGD([{"params": weights, "weight_decay": 2 * LAM},
                                    {"params": others, "weight_decay": 0.0}],
                                   lr=ETA, momentum=MOMENTUM)
        self.loss = torch.nn.CrossEntropyLoss()
        imgs, labels = images(EPOCH_IMAGES)
        self.images = torch.from_numpy(imgs)
        self.labels = torch.from_numpy(labels)
        self.mean, self.inv_std = 120.0, 1 / 64.0
        self.batch = c["batch_size"]
        self.steps = EPOCH_IMAGES // self.batch
        self.torch = torch
        self.train_step = torch.compile(self._step) if compile_ else self._step
        self.step()

    def _step(self, X, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model(X), y)
        loss.backward()
        self.opt.step()
        return loss

    def _batch(self, rows):
        X = (self.images[rows].float() - self.mean) * self.inv_std
        return X, self.labels[rows]

    def step(self):
        self.train_step(*self._batch(self.torch.arange(self.batch)))

    def epoch(self):
        order = self.torch.randperm(EPOCH_IMAGES)
        for k in range(self.steps):
            self.train_step(*self._batch(order[k * self.batch:(k + 1) * self.batch]))


class Sklearn:
    def __init__(self, config):
        from sklearn.neural_network import MLPClassifier

        c = CONFIGS[config]
        imgs, labels = images(EPOCH_IMAGES)
        self.X = ((imgs.astype(np.float32) - 120.0) / 64.0).astype(np.float32)
        self.y = labels
        self.make = lambda: MLPClassifier(
            hidden_layer_sizes=c["hidden"], solver="sgd", batch_size=c["batch_size"],
            momentum=MOMENTUM, nesterovs_momentum=False, alpha=2 * LAM,
            learning_rate_init=ETA, max_iter=1, shuffle=True, random_state=0)

    def epoch(self):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.make().fit(self.X, self.y)


# -- measurement ----------------------------------------------------------------------------------

def _time(fn, number):
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def _gemm_bounds():
    """gemm[LIB] for every BLAS library found here (loading them needs no compiling)."""
    try:
        from cifar_engine.runtime.blas_libraries import installed
    except ImportError:  # an engine before the choice (asv's history): NumPy's OpenBLAS
        return ("gemm[openblas]",)
    # OPENBLAS_CORETYPE set: also OpenBLAS on the kernels this CPU would choose, so the
    # table says what the variable costs (the variables unset in that worker alone)
    native = ("gemm[openblas-native]",) if os.environ.get("OPENBLAS_CORETYPE") else ()
    return tuple(f"gemm[{name}]" for name in installed()) + native


IMPLEMENTATIONS = ("engine", *_gemm_bounds(), "gemm+data", "numpy", "torch", "torch.compile",
                   "sklearn")


def engine_library():
    """The library the engine's products run on in this process (auto or CIFAR_ENGINE_BLAS)."""
    from cifar_engine.runtime.blas import library_name

    return library_name()


def run_worker(config, impl, rounds, epochs=True, blas=None):
    """`worker` in a fresh process with THREADS threads everywhere: {name: seconds}.

    A gemm[LIB] worker runs the engine's gemm on LIB; the others on `blas` when given,
    else as CIFAR_ENGINE_BLAS chooses. Raises RuntimeError with the worker's stderr.
    """
    env = {**os.environ, "NUMBA_NUM_THREADS": str(THREADS), "OPENBLAS_NUM_THREADS": str(THREADS),
           "OMP_NUM_THREADS": str(THREADS)}
    if impl == "gemm[openblas-native]":
        blas = "openblas"
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            env.pop(name, None)
    elif impl.startswith("gemm["):
        blas = impl[len("gemm["):-1]
    if blas is not None:
        env["CIFAR_ENGINE_BLAS"] = blas
    cmd = [sys.executable, __file__, "--worker", f"{config}:{impl}", "--rounds", str(rounds),
           *([] if epochs else ["--no-epoch"])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{config}:{impl} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def available(impl, config, compile_):
    """Whether `impl` is measured on `config` here (peers only when importable)."""
    if impl == "torch.compile" and not compile_:
        return False
    if impl == "sklearn" and config not in ("A", "D"):
        return False
    module = {"torch": "torch", "torch.compile": "torch", "sklearn": "sklearn"}.get(impl)
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def worker(config, impl, rounds, epochs=True):
    """Medians (seconds) of one implementation's step and/or epoch, in a fresh process.

    Each implementation runs in its own processes, so that no library's threads (OpenMP
    pools, BLAS pools) share a process with another's.
    """
    per_call = 1
    if impl == "engine":
        subject = Engine(config)
        step, epoch, per_call = subject.step, subject.epoch, STEPS_PER_CALL
    elif impl.startswith("gemm["):
        step, epoch = Gemm(config).step, None
    elif impl == "gemm+data":
        step, epoch = GemmData(config).step, None
    elif impl == "numpy":
        step, epoch = NumpyStep(config).step, None
    elif impl in ("torch", "torch.compile"):
        subject = Torch(config, compile_=impl == "torch.compile")
        step, epoch = subject.step, subject.epoch
    else:
        step, epoch = None, Sklearn(config).epoch
    out = {}
    if step is not None:
        step()  # warm: compiled, buffers touched, thread pools started
        number = 5 if impl == "numpy" else max(1, 20 // per_call)
        out[f"{impl} step"] = statistics.median(_time(step, number) / per_call
                                                for _ in range(rounds))
    if epoch is not None and epochs:
        out[f"{impl} epoch"] = _time(epoch, 1)  # one per process: epochs are long
    return out


def environment():
    import numba

    from cifar_engine.runtime import blas, blas_libraries
    from cifar_engine.util.system import cpu_model

    info = {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
            "cpu": cpu_model(), "date": time.strftime("%Y-%m-%d"),
            "engine_blas": blas.describe(),
            "blas_auto_measurement": blas_libraries.measured_choice()}
    try:
        import threadpoolctl

        info["blas"] = [f"{p['internal_api']} {p['version']} ({p['filepath'].split('/')[-1]}, "
                        f"{p['num_threads']} threads)" for p in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = f"{torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        pass
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per configuration")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per process")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--json", default="compare.json", help="where the raw figures go")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--no-epoch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        config, impl = args.worker.split(":")
        print(json.dumps(worker(config, impl, args.rounds, epochs=not args.no_epoch)))
        return
    configs = args.configs.split(",")
    from cifar_engine.runtime.blas import describe

    if describe()["slowed"]:
        print(f"note: {describe()['slowed']}: gemm[openblas-native] is OpenBLAS without it")
    for c in configs:
        print(f"config {c}: engine vs NumPy after 3 steps, max relative difference "
              f"{check_agreement(c):.1e}", flush=True)
    raw = {}
    for c in configs:
        impls = [i for i in IMPLEMENTATIONS if available(i, c, args.compile)]
        raw[c] = {}
        for _ in range(args.runs):  # interleaved: every implementation once per run
            for impl in impls:
                try:
                    figures = run_worker(c, impl, args.rounds)
                except RuntimeError as err:
                    raise SystemExit(str(err))
                for name, seconds in figures.items():
                    raw[c].setdefault(name, []).append(seconds)
        print(f"config {c}: measured", flush=True)
    print_table(raw, engine_library())
    with open(args.json, "w") as f:
        json.dump({"environment": environment(), "seconds": raw}, f, indent=2)
    print(f"\nraw figures: {args.json}\nenvironment: {json.dumps(environment())}")


def print_table(raw, library):
    """The medians, then the ratios; the engine is held against its own library's bound
    (gemm[library]) and against the fastest library's."""
    med = lambda v: statistics.median(v)  # noqa: E731
    fmt = lambda v: f"{med(v) * 1e3:8.3f} [{min(v) * 1e3:.3f}-{max(v) * 1e3:.3f}]"  # noqa: E731
    print("\nmilliseconds: median of per-process medians [min-max]")
    names = sorted({n for r in raw.values() for n in r}, key=lambda n: (n.endswith("epoch"), n))
    print("cfg  " + "  ".join(f"{n:>30}" for n in names))
    for c, r in raw.items():
        print(f"{c:<4} " + "  ".join(f"{fmt(r[n]) if n in r else '-':>30}" for n in names))
    print("\nratios (medians)")
    for c, r in raw.items():
        bounds = {n[len("gemm["):-len("] step")]: med(v) for n, v in r.items()
                  if n.startswith("gemm[")}
        fastest = min(bounds, key=bounds.get)
        engine = med(r["engine step"])
        parts = [f"engine ({library})/gemm[{library}] {engine / bounds[library]:.2f}x",
                 f"engine/gemm[{fastest}] (fastest bound) {engine / bounds[fastest]:.2f}x",
                 f"engine/(gemm+data) {engine / med(r['gemm+data step']):.2f}x"]
        parts += [f"gemm[{name}]/gemm[{fastest}] {t / bounds[fastest]:.2f}x"
                  for name, t in bounds.items() if name != fastest]
        for peer in ("numpy step", "torch step", "torch.compile step"):
            if peer in r:
                parts.append(f"{peer}/engine {med(r[peer]) / med(r['engine step']):.2f}x")
        for peer in ("torch epoch", "torch.compile epoch", "sklearn epoch"):
            if peer in r:
                parts.append(f"{peer}/engine {med(r[peer]) / med(r['engine epoch']):.2f}x")
        print(f"{c}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
