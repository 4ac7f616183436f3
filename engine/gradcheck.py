"""Analytic gradients against finite differences, tensor by tensor.

For every parameter tensor (W, b, gamma, beta of each layer) the cost J = loss + lam sum
||W||^2 is evaluated with one entry moved by +h and -h (centred difference) or +h and 0
(forward difference), in training mode (batch statistics), with dropout off. Each entry's
relative error is |g_a - g_n| / max(eps, |g_a| + |g_n|).

A difference step that moves a ReLU input or an SVM margin across zero measures a slope
on both sides of a kink, which no analytic gradient matches: such entries are detected
(the on/off pattern of every ReLU and margin differs between the two evaluations),
counted, and kept out of the error figures rather than failing the check.

A finite difference cannot resolve a gradient finer than one rounding of J over the step,
resolution = 2 eps_mach max(1, |J|) / h (about 1e-10 for h = 1e-5). An entry with
|g_a| + |g_n| < resolution / tol is too small for its relative error to be measured to
tol: such entries are counted apart ("below resolution") and must instead agree to 100
times that noise in absolute terms. A forward difference adds its truncation error, which
is estimated per entry as |J(+h) - 2 J + J(-h)| / (2 h) (the h J''/2 of its Taylor series).

A tensor none of whose entries could be compared by relative error (all below resolution
or across kinks) measured nothing, and fails: a check that cannot see an error must not
report that there is none. The settings' limits are those of `settings.GRAD_CHECK`.
"""
from dataclasses import asdict, dataclass

import numpy as np

from .errors import SettingError, require
from .model.layout import buffer_bytes, check_memory
from .settings import GRAD_CHECK, check_settings
from .util.table import aligned

METHODS = ("centred", "forward")
# The sizes of a check's memory, and the settings that set them.
SIZES = {"rows": "samples", "input_size": "features", "n_classes": "classes",
         "hidden": "hidden"}
_D = {name: s.default for name, s in GRAD_CHECK.items()}
DEFAULT_TOL = {"centred": 1e-6, "forward": 1e-2}  # forward differences are first order in h
TINY_NOISE_FACTOR = 100


@dataclass
class TensorCheck:
    """The verdict on one parameter tensor."""

    name: str
    shape: tuple
    method: str
    checked: int           # entries compared by relative error
    kinks: int             # entries whose step crossed a ReLU or hinge kink
    tiny: int              # entries below resolution / tol, compared by absolute error
    max_rel_error: float
    mean_rel_error: float
    max_abs_diff: float
    worst_index: tuple     # index of the entry with the largest relative error
    worst_analytic: float
    worst_numeric: float
    tol: float
    resolution: float      # smallest gradient difference the finite difference resolves
    tiny_worst_ratio: float  # largest |g_a - g_n| / noise among the entries below resolution

    @property
    def measured(self):
        """Whether any entry was compared by relative error."""
        return self.checked > 0

    @property
    def passed(self):
        return (self.measured and self.max_rel_error < self.tol
                and self.tiny_worst_ratio <= TINY_NOISE_FACTOR)

    @property
    def verdict(self):
        return "ok" if self.passed else "FAIL" if self.measured else "FAIL: measured nothing"

    def to_dict(self):
        d = asdict(self)
        d["passed"], d["measured"] = self.passed, self.measured
        return d


def relative_error(analytic, numeric, eps=_D["eps"]):
    """Elementwise |a - n| / max(eps, |a| + |n|)."""
    return np.abs(analytic - numeric) / np.maximum(eps, np.abs(analytic) + np.abs(numeric))


def check_options(**values):
    """The grad-check settings `values` ({name: value}; None: the default) checked by their
    limits in `settings.GRAD_CHECK`; SettingError naming one beyond them."""
    return check_settings({k: v for k, v in values.items() if v is not None}, GRAD_CHECK)


def check_bytes(spec, samples, entries=None):
    """Bytes a check of a network of `spec` on `samples` rows holds at its peak: the
    network's buffers, the problem, a copy of the gradients and, for the largest tensor
    (a weight matrix), a few arrays of its checked entries."""
    dims = spec.dims
    largest = max(dims[l] * dims[l + 1] for l in range(spec.n_layers))
    checked = largest if entries is None else min(entries, largest)
    return (buffer_bytes(spec, samples) + 8 * samples * (spec.input_size + 1)
            + 8 * spec.n_parameters + 64 * checked)


def check_size(spec, samples, entries=None):
    """SettingError naming samples, features, classes or hidden when a check of a network
    of `spec` on `samples` rows could not fit in memory, before anything is allocated."""
    check_memory(spec, samples, SIZES, lambda s, n: check_bytes(s, n, entries))


def synthetic_problem(samples, features, n_classes, seed=0):
    """A standard-normal X float64[samples, features] and uniform labels int64[samples]."""
    check_options(samples=samples, features=features, classes=n_classes)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples, features)), rng.integers(0, n_classes, samples)


def problem_from_images(images, labels, samples, features):
    """The first `samples` images cut to their first `features` features, standardised.

    images: uint8[N, D]; returns X float64[samples, features] (zero mean, unit std per
    feature over these samples) and labels int64[samples].
    """
    X = np.asarray(images[:samples, :features], dtype=np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, np.asarray(labels[:samples], dtype=np.int64)


def check_gradients(net, X, y, *, method="centred", h=_D["h"], eps=_D["eps"], tol=_D["tol"],
                    entries=_D["entries"], seed=0, analytic=None):
    """Check every parameter tensor of `net` on (X, y); returns a list of TensorCheck.

    net must be float64 with dropout off. entries: check at most this many entries of each
    tensor, a seeded sample (None: all). analytic: gradients to check, by tensor name
    (default: the network's own backward pass).
    """
    if method not in METHODS:
        raise SettingError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    if net.spec.dtype != "float64":
        raise ValueError("a gradient check needs a float64 network")
    if net.spec.dropout > 0:
        raise ValueError("dropout must be off during a gradient check")
    check_options(h=h, eps=eps, tol=tol, entries=entries)
    require(not net.spec.batch_norm or np.shape(X)[0] >= 2, "samples",
            f"must be >= 2 with {{batch_norm}} (the batch statistics of one sample normalise "
            f"every value to 0), got {np.shape(X)[0]}")
    tol = DEFAULT_TOL[method] if tol is None else tol
    running = net.state_dict(["running_stats"])
    if analytic is None:
        net.loss_and_gradients(X, y)
        analytic = {k: g.copy() for k, g in net.gradients.items()}
    rng = np.random.default_rng(seed)
    cost, _ = net.objective(X, y, train=True)
    resolution = 2 * np.finfo(np.float64).eps * max(1.0, abs(cost)) / h
    results = []
    for name, param in net.parameters.items():
        flat_idx = _entries(param.size, entries, rng)
        numeric, kinks, truncation = _numeric_gradient(net, X, y, param.reshape(-1), flat_idx,
                                                       method, h)
        results.append(_summarise(name, param.shape, method, tol, eps, resolution,
                                  analytic[name].reshape(-1)[flat_idx], numeric, kinks,
                                  resolution + truncation, flat_idx))
    net.load_state(running)
    return results


def _entries(size, entries, rng):
    if entries is None or entries >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, entries, replace=False))


def _numeric_gradient(net, X, y, flat, flat_idx, method, h):
    """Numerical gradient, kink flags and estimated truncation error of each entry."""
    numeric = np.empty(flat_idx.size)
    truncation = np.zeros(flat_idx.size)
    kinks = np.zeros(flat_idx.size, dtype=bool)
    base_cost, base_pattern = _cost_and_pattern(net, X, y)
    for k, i in enumerate(flat_idx):
        old = flat[i]
        flat[i] = old + h
        plus, plus_pattern = _cost_and_pattern(net, X, y)
        flat[i] = old - h
        minus, minus_pattern = _cost_and_pattern(net, X, y)
        flat[i] = old
        if method == "centred":
            numeric[k] = (plus - minus) / (2 * h)
            kinks[k] = not np.array_equal(plus_pattern, minus_pattern)
        else:
            numeric[k] = (plus - base_cost) / h
            truncation[k] = abs(plus - 2 * base_cost + minus) / (2 * h)
            kinks[k] = not (np.array_equal(plus_pattern, base_pattern)
                            and np.array_equal(minus_pattern, base_pattern))
    return numeric, kinks, truncation


def _cost_and_pattern(net, X, y):
    """J at the current parameters, and the on/off pattern of every ReLU and SVM margin."""
    cost, _ = net.objective(X, y, train=True)
    outputs = net.layer_outputs(X.shape[0])
    last = max(outputs)
    pattern = [outputs[l] > 0 for l in outputs if l != last]
    if net.spec.loss == "svm":
        scores = outputs[last]
        pattern.append(scores - scores[np.arange(len(y)), y][:, None] + 1 > 0)
    return cost, np.concatenate([p.ravel() for p in pattern]) if pattern else np.zeros(0, bool)


def _summarise(name, shape, method, tol, eps, resolution, analytic, numeric, kinks, noise,
               flat_idx):
    rel = relative_error(analytic, numeric, eps)
    diff = np.abs(analytic - numeric)
    tiny = ~kinks & (np.abs(analytic) + np.abs(numeric) < noise / tol)
    ok = ~kinks & ~tiny
    worst = int(np.argmax(np.where(ok, rel, -1.0))) if ok.any() else 0
    return TensorCheck(
        name=name, shape=tuple(shape), method=method, checked=int(ok.sum()),
        kinks=int(kinks.sum()), tiny=int(tiny.sum()),
        max_rel_error=float(rel[ok].max()) if ok.any() else 0.0,
        mean_rel_error=float(rel[ok].mean()) if ok.any() else 0.0,
        max_abs_diff=float(diff[ok].max()) if ok.any() else 0.0,
        worst_index=tuple(int(v) for v in np.unravel_index(flat_idx[worst], shape)),
        worst_analytic=float(analytic[worst]), worst_numeric=float(numeric[worst]), tol=tol,
        resolution=float(resolution),
        tiny_worst_ratio=float((diff[tiny] / noise[tiny]).max()) if tiny.any() else 0.0)


def format_table(results):
    """A plain-text table of the checks, one row per tensor."""
    header = ("tensor", "shape", "checked", "kinks", "below res", "max rel err", "mean rel err",
              "max abs diff", "worst entry: analytic / numeric", "verdict")
    rows = [header]
    for r in results:
        rows.append((
            r.name, "x".join(map(str, r.shape)), str(r.checked), str(r.kinks), str(r.tiny),
            f"{r.max_rel_error:.2e}", f"{r.mean_rel_error:.2e}", f"{r.max_abs_diff:.2e}",
            f"{list(r.worst_index)}: {r.worst_analytic:.6e} / {r.worst_numeric:.6e}",
            r.verdict))
    lines = aligned(rows)
    lines.insert(1, "  ".join("-" * max(len(row[c]) for row in rows)
                              for c in range(len(header))))
    return "\n".join(lines)


def unmeasured(results):
    """The names of the tensors that measured nothing."""
    return [r.name for r in results if not r.measured]


__all__ = ["TensorCheck", "check_gradients", "check_options", "check_size", "format_table",
           "relative_error", "unmeasured",
           "synthetic_problem", "problem_from_images", "METHODS"]
