"""A k-layer MLP on the compiled kernels: its spec, its slabs, and a Python API around them.

Python checks every argument here; the kernels only ever see arrays of the right shape and
dtype. Parameter tensors are named as in the course this engine grew from, 1-based:
W1, b1 (or gamma1, beta1 with batch norm), ..., WL, bL.
"""
import numba
import numpy as np

from .initializers import init_std
from .kernels import step
from .kernels.batch import NO_AUGMENT
from .kernels.losses import softmax
from .spec import NetworkSpec
from .spec import check as _check

__all__ = ["Network", "NetworkSpec", "plan_layout"]  # the spec travels with the network

_LOSS_CODES = {"xent": step.XENT, "svm": step.SVM}
_NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64}
_ALIGN = 16  # slab offsets start on 64-byte lines for float32

# Training steps whose largest kernel has fewer elements than this run best with Numba on
# one thread: waking the other threads for each of a step's ~20 small loops costs more than
# they save, and meanwhile OpenBLAS has the other cores for the products.
PARALLEL_MIN_WORK = 400_000


class _Slab:
    """Hands out aligned offsets into a flat array that is allocated once at the end."""

    def __init__(self):
        self.size = 0

    def take(self, count):
        offset = self.size
        self.size = -(-(offset + count) // _ALIGN) * _ALIGN
        return offset


def plan_layout(spec, max_batch):
    """Offsets of every layer's tensors: (layout int64[L, N_FIELDS], sizes of the slabs)."""
    layout = np.full((spec.n_layers, step.N_FIELDS), -1, dtype=np.int64)
    params, running, acts = _Slab(), _Slab(), _Slab()
    dims = spec.dims
    for l in range(spec.n_layers):  # weight matrices first: L2 decays params[:n_weights]
        layout[l, step.W] = params.take(dims[l + 1] * dims[l])
    n_weights = params.size
    for l in range(spec.n_layers):
        m = dims[l + 1]
        row = layout[l]
        bn = spec.batch_norm and l < spec.n_layers - 1
        if bn:
            row[step.GAMMA] = params.take(m)
            row[step.BETA] = params.take(m)
            row[step.RUN_MEAN] = running.take(m)
            row[step.RUN_VAR] = running.take(m)
            row[step.S] = acts.take(max_batch * m)
            row[step.S_HAT] = acts.take(max_batch * m)
            row[step.MU] = acts.take(m)
            row[step.INV_STD] = acts.take(m)
        else:
            row[step.B] = params.take(m)
        row[step.H] = acts.take(max_batch * m)
        if not bn:
            row[step.S] = row[step.H]
    return layout, {"params": params.size, "running": running.size, "acts": acts.size,
                    "weights": n_weights}


class Network:
    """A k-layer MLP whose training step, evaluation and prediction are compiled calls.

    Parameters
    ----------
    spec : NetworkSpec
    seed : int, fixes the initial weights and every dropout mask and augmentation draw.
    max_batch : int, the most rows a batch (or an evaluation chunk) may have.
    momentum, nesterov : SGD with momentum mu (0: plain mini-batch SGD), optionally Nesterov.
    """

    def __init__(self, spec, *, seed=0, max_batch=100, momentum=0.0, nesterov=False):
        _check(max_batch >= 1, f"--batch-size must be >= 1, got {max_batch}")
        _check(0.0 <= momentum < 1.0, f"--momentum must be in [0, 1), got {momentum}")
        self.spec = spec
        self.seed = int(seed)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.dtype = np.dtype(_NUMPY_DTYPES[spec.dtype])
        self._allocate(max_batch)
        self._init_parameters()
        self.set_standardisation(np.zeros(spec.input_size), np.ones(spec.input_size))
        self.class_names = tuple(str(k) for k in range(spec.n_classes))
        self.image_shape = None

    # -- buffers --------------------------------------------------------------------------

    def _allocate(self, max_batch, keep=None):
        spec, dt = self.spec, self.dtype
        layout, size = plan_layout(spec, max_batch)
        widest = max(spec.dims[1:])
        self.max_batch = int(max_batch)
        self._buf = step.NetBuffers(
            params=np.zeros(size["params"], dt) if keep is None else keep.params,
            grads=np.zeros(size["params"], dt),
            velocity=np.zeros(size["params"], dt) if keep is None else keep.velocity,
            running=np.zeros(size["running"], dt) if keep is None else keep.running,
            acts=np.zeros(size["acts"], dt),
            grad_a=np.zeros(max_batch * widest, dt),
            grad_b=np.zeros(max_batch * widest, dt),
            losses=np.zeros(max_batch, dt),
            inputs=np.zeros((max_batch, spec.input_size), dt),
            targets=np.zeros(max_batch, np.int64),
            layout=layout,
            dims=np.array(spec.dims, dtype=np.int64),
            n_weights=size["weights"],
        )

    def set_max_batch(self, max_batch):
        """Re-size the per-batch buffers; parameters, velocity and running stats are kept."""
        _check(max_batch >= 1, f"--batch-size must be >= 1, got {max_batch}")
        if max_batch != self.max_batch:
            self._allocate(max_batch, keep=self._buf)

    def _init_parameters(self):
        rng = np.random.default_rng(self.seed)
        spec = self.spec
        for l in range(spec.n_layers):
            d = spec.dims[l]
            W = self.parameters[f"W{l + 1}"]
            W[...] = rng.standard_normal(W.shape) * init_std(spec.init, d, spec.sigma)
        for name, p in self.parameters.items():
            if name.startswith("gamma"):
                p[...] = 1
        for name, r in self.running_stats.items():
            r[...] = 1 if name.startswith("var") else 0

    def _named_views(self, slab, fields):
        views = {}
        layout, dims = self._buf.layout, self.spec.dims
        for l in range(self.spec.n_layers):
            m, d = dims[l + 1], dims[l]
            for name, col, shape in fields(m, d):
                off = layout[l, col]
                if off >= 0:
                    size = int(np.prod(shape))
                    views[f"{name}{l + 1}"] = slab[off:off + size].reshape(shape)
        return views

    @staticmethod
    def _param_fields(m, d):
        return [("W", step.W, (m, d)), ("b", step.B, (m,)),
                ("gamma", step.GAMMA, (m,)), ("beta", step.BETA, (m,))]

    @property
    def parameters(self):
        """Views of every parameter tensor, by name (W1, b1, gamma1, beta1, ...)."""
        return self._named_views(self._buf.params, self._param_fields)

    @property
    def gradients(self):
        """Views of the gradient of every parameter tensor, same names and shapes."""
        return self._named_views(self._buf.grads, self._param_fields)

    @property
    def velocity(self):
        """Views of the SGD momentum buffers, same names and shapes."""
        return self._named_views(self._buf.velocity, self._param_fields)

    @property
    def running_stats(self):
        """Views of the batch-norm running means and variances (mean1, var1, ...)."""
        return self._named_views(
            self._buf.running,
            lambda m, d: [("mean", step.RUN_MEAN, (m,)), ("var", step.RUN_VAR, (m,))])

    def layer_outputs(self, n):
        """Views of each layer's output H for the first n rows of the last forward pass.

        Hidden layers hold max(., 0) (after dropout in training mode); the last holds the
        scores. Keys are 1-based layer numbers.
        """
        dims, layout = self.spec.dims, self._buf.layout
        return {l + 1: self._buf.acts[layout[l, step.H]:layout[l, step.H] + n * dims[l + 1]]
                .reshape(n, dims[l + 1]) for l in range(self.spec.n_layers)}

    @property
    def n_parameters(self):
        return sum(p.size for p in self.parameters.values())

    def step_threads(self, batch_size):
        """Numba threads that train this network fastest at batch_size (PARALLEL_MIN_WORK)."""
        work = max(batch_size * max(self.spec.dims), self._buf.params.size)
        return numba.config.NUMBA_NUM_THREADS if work >= PARALLEL_MIN_WORK else 1

    # -- configuration ----------------------------------------------------------------------

    def _config(self):
        spec = self.spec
        return step.StepConfig(
            lam=float(spec.lam), momentum=self.momentum, nesterov=self.nesterov,
            dropout=float(spec.dropout), loss=_LOSS_CODES[spec.loss], bn_alpha=float(spec.bn_alpha),
            bn_eps=float(spec.bn_eps), seed=self.seed)

    def set_standardisation(self, mean, std, class_names=None, image_shape=None):
        """How uint8 images become inputs: x = (pixel - mean) / std, per feature (float[D])."""
        D = self.spec.input_size
        mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        _expect_shape("mean", mean, (D,))
        _expect_shape("std", std, (D,))
        if np.any(std <= 0):
            raise ValueError("std must be > 0 everywhere")
        self.mean, self.std = mean, std
        self._mean = np.ascontiguousarray(mean, dtype=self.dtype)
        self._inv_std = np.ascontiguousarray(1.0 / std, dtype=self.dtype)
        if class_names is not None:
            if len(class_names) != self.spec.n_classes:
                raise ValueError(f"class_names must have {self.spec.n_classes} names, "
                                 f"got {len(class_names)}")
            self.class_names = tuple(class_names)
        if image_shape is not None:
            if int(np.prod(image_shape)) != D:
                raise ValueError(f"image_shape {tuple(image_shape)} does not hold {D} features")
            self.image_shape = tuple(int(s) for s in image_shape)

    def batch_source(self, images, labels=None):
        """The compiled view of a uint8 dataset under this network's standardisation."""
        images = np.asarray(images)
        n = images.shape[0] if images.ndim >= 1 else 0
        _expect_shape("images", images, (n, self.spec.input_size), np.uint8)
        labels = (np.zeros(n, np.int64) if labels is None
                  else self._checked_labels(labels, n, name="labels"))
        shape = self.image_shape or (1, 1, self.spec.input_size)
        return step.BatchSource(images, labels, self._mean, self._inv_std, shape)

    # -- float-array API ---------------------------------------------------------------------

    def _checked_inputs(self, X, name="X"):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.spec.input_size or not np.issubdtype(
                X.dtype, np.floating):
            raise ValueError(f"{name} must be a float array of shape (n, {self.spec.input_size}), "
                             f"got {X.dtype} {X.shape}")
        if not 1 <= X.shape[0] <= self.max_batch:
            raise ValueError(f"{name} has {X.shape[0]} rows; this network takes 1 to "
                             f"{self.max_batch} (set_max_batch to change it)")
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _checked_labels(self, y, n, name="y"):
        y = np.asarray(y)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name} must be an integer array of shape ({n},), "
                             f"got {y.dtype} {y.shape}")
        if n and (y.min() < 0 or y.max() >= self.spec.n_classes):
            raise ValueError(f"{name} must hold labels in [0, {self.spec.n_classes})")
        return np.ascontiguousarray(y, dtype=np.int64)

    def forward(self, X, train=False, step_number=0):
        """Scores float[n, K] of the rows of X (float[n, D]); a copy.

        train=True uses batch statistics (updating the running ones) and dropout.
        """
        X = self._checked_inputs(X)
        return step.forward(self._buf, self._config(), X, bool(train), int(step_number)).copy()

    def loss_and_gradients(self, X, y, step_number=0):
        """Mean data loss of (X, y) in training mode; fills `gradients` (no update)."""
        X = self._checked_inputs(X)
        y = self._checked_labels(y, X.shape[0])
        cfg = self._config()
        scores = step.forward(self._buf, cfg, X, True, int(step_number))
        loss = step.loss_gradient(self._buf, cfg, scores, y)
        step.backward(self._buf, cfg, X, cfg.lam)
        return float(loss)

    def objective(self, X, y, train=True, step_number=0):
        """(cost, loss) of (X, y): cost = loss + lam * sum ||W||^2. No gradient, no update."""
        X = self._checked_inputs(X)
        y = self._checked_labels(y, X.shape[0])
        cfg = self._config()
        scores = step.forward(self._buf, cfg, X, bool(train), int(step_number))
        loss = float(step.loss_gradient(self._buf, cfg, scores, y))
        return loss + self.penalty(), loss

    def train_step(self, X, y, eta, step_number=0):
        """One forward, backward and SGD update on (X, y) with learning rate eta.

        Returns the batch's mean data loss; a non-finite loss leaves the parameters as
        they were.
        """
        X = self._checked_inputs(X)
        y = self._checked_labels(y, X.shape[0])
        return float(step.train_step(self._buf, self._config(), X, y, float(eta),
                                     int(step_number)))

    def penalty(self):
        """lam * sum of the squared entries of every weight matrix (not b, gamma, beta)."""
        if self.spec.lam == 0:
            return 0.0
        total = sum(float(np.dot(W.ravel().astype(np.float64), W.ravel()))
                    for name, W in self.parameters.items() if name.startswith("W"))
        return self.spec.lam * total

    # -- uint8-image API -------------------------------------------------------------------

    def run_steps(self, source, order, first_row, batch_size, step0, etas, losses_out,
                  augment=NO_AUGMENT):
        """Train len(etas) steps on consecutive batches of `order`; see `step.run_steps`.

        Returns the number of steps done (fewer when a loss was not finite).
        """
        if batch_size > self.max_batch:
            self.set_max_batch(batch_size)
        return int(step.run_steps(self._buf, self._config(), source, augment, order,
                                  int(first_row), int(batch_size), int(step0), etas, losses_out))

    def evaluate(self, images, labels, index=None):
        """{'cost', 'loss', 'accuracy'} over images[index] (uint8[N, D]) in inference mode."""
        source = self.batch_source(images, labels)
        index = _checked_index(index, source.images.shape[0])
        if index.size == 0:
            raise ValueError("index selects no images")
        total, correct = step.evaluate(self._buf, self._config(), source, index, NO_AUGMENT)
        loss = total / index.size
        return {"cost": loss + self.penalty(), "loss": loss, "accuracy": correct / index.size}

    def predict_proba(self, images, index=None):
        """Class probabilities float[len(index), K] (softmax of the scores) of uint8 images."""
        source = self.batch_source(images)
        index = _checked_index(index, source.images.shape[0])
        scores = np.empty((index.size, self.spec.n_classes), dtype=self.dtype)
        step.predict_scores(scores, self._buf, self._config(), source, index, NO_AUGMENT)
        softmax(scores, scores)
        return scores

    def predict(self, images, index=None):
        """Predicted labels int64[len(index)] of uint8 images."""
        return np.argmax(self.predict_proba(images, index), axis=1)


def _expect_shape(name, a, shape, dtype=None):
    if a.shape != shape or (dtype is not None and a.dtype != dtype):
        want = f"{np.dtype(dtype).name} " if dtype is not None else ""
        raise ValueError(f"{name} must have shape {want}{shape}, got {a.dtype} {a.shape}")


def _checked_index(index, n):
    if index is None:
        return np.arange(n, dtype=np.int64)
    index = np.ascontiguousarray(index, dtype=np.int64)
    if index.ndim != 1 or (index.size and (index.min() < 0 or index.max() >= n)):
        raise ValueError(f"index must be a 1-d array of rows in [0, {n})")
    return index
