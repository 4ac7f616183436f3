"""A k-layer MLP on the compiled kernels: its spec, its slabs, and a Python API around them.

Python checks every argument here; the kernels only ever see arrays of the right shape and
dtype. Parameter tensors are named as in the course this engine grew from, 1-based:
W1, b1 (or gamma1, beta1 with batch norm), ..., WL, bL.
"""
import functools

import numba
import numpy as np

from ..data.preprocessing import Preprocessing, Standardise
from ..errors import DataError, SettingError, require
from ..initializers import init_std
from ..kernels import LOSS_CODES, step
from ..kernels.batch import NO_AUGMENT
from ..kernels.losses import softmax
from ..runtime.threads import blas_single
from ..settings import SETTINGS, TTAS
from .layout import NUMPY_DTYPES, check_memory, plan_layout
from .spec import NetworkSpec

__all__ = ["Network", "NetworkSpec"]  # the spec travels with the network




def _compiled(method):
    """A method that runs compiled kernels: its products get the BLAS pools at one thread
    (the kernels split them between Numba's threads by shape: `kernels.blas`)."""
    @functools.wraps(method)
    def call(*args, **kwargs):
        with blas_single():
            return method(*args, **kwargs)
    return call


STATE_GROUPS = ("parameters", "velocity", "running_stats")  # a network's state, by group
EVAL_CHUNK = 1000  # rows a compiled evaluation or prediction call takes at most


class Network:
    """A k-layer MLP whose training step, evaluation and prediction are compiled calls.

    Parameters
    ----------
    spec : NetworkSpec
    seed : int, fixes the initial weights and every dropout mask and augmentation draw.
    max_batch : int, the most rows a batch (or an evaluation chunk) may have.
    momentum, nesterov : SGD with momentum mu (0: plain mini-batch SGD), optionally Nesterov.
    state : a `state_dict` to start from; when it holds every parameter, the initial
        weights are not drawn at all (a network restored or continued).
    """

    def __init__(self, spec, *, seed=0, max_batch=100, momentum=0.0, nesterov=False,
                 state=None):
        require(max_batch >= 1, "max_batch", f"must be >= 1, got {max_batch}")
        momentum = SETTINGS["momentum"].check(momentum)
        self.spec = spec
        self.seed = int(seed)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.dtype = np.dtype(NUMPY_DTYPES[spec.dtype])
        check_memory(spec, max_batch)
        self._raw_features = 0  # the width of the rows a projecting preprocessing maps
        self._allocate(max_batch)
        given = (state or {}).get("parameters", {})
        self._init_parameters(draw=set(given) != set(self.parameters))
        if state is not None:
            self.load_state(state)
        self.set_preprocessing(Standardise.identity(spec.input_size))
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
            raw=np.zeros((max_batch, self._raw_features), dt),
            targets=np.zeros(max_batch, np.int64),
            layout=layout,
            dims=np.array(spec.dims, dtype=np.int64),
            n_weights=size["weights"],
        )

    def set_max_batch(self, max_batch):
        """Re-size the per-batch buffers; parameters, velocity and running stats are kept."""
        require(max_batch >= 1, "max_batch", f"must be >= 1, got {max_batch}")
        if max_batch != self.max_batch:
            self._allocate(max_batch, keep=self._buf)

    def _init_parameters(self, draw=True):
        """gamma 1, running variances 1 and, when `draw`, the weights drawn by the seed."""
        rng = np.random.default_rng(self.seed)
        spec = self.spec
        for l in range(spec.n_layers if draw else 0):
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

    def state_dict(self, groups=STATE_GROUPS, copy=True):
        """The network's state, {group: {name: array}}, for each of `groups` (of
        STATE_GROUPS): what every save, restore, pickle and snapshot of it holds. Copies,
        or with copy=False views of the network's own slabs (for a file written at once)."""
        return {group: {name: view.copy() if copy else view
                        for name, view in getattr(self, group).items()} for group in groups}

    def load_state(self, state):
        """Write `state` ({group: {name: array}}, as `state_dict` gives it, any of its groups
        and names) into the network. ValueError naming a tensor the network lacks or whose
        shape differs; nothing is written then."""
        writes = []
        for group, arrays in state.items():
            if group not in STATE_GROUPS:
                raise ValueError(f"no state group {group!r} (one of {', '.join(STATE_GROUPS)})")
            mine = getattr(self, group)
            for name, value in arrays.items():
                held = mine[name].shape if name in mine else "none"
                if np.shape(value) != held:
                    raise ValueError(f"{group} {name}: shape {np.shape(value)} where this "
                                     f"network holds {held}")
                writes.append((mine[name], value))
        for view, value in writes:
            view[...] = value

    def layer_outputs(self, n):
        """Views of each layer's output H for the first n rows of the last forward pass.

        Hidden layers hold max(., 0) (after dropout in training mode); the last holds the
        scores. Keys are 1-based layer numbers.
        """
        dims, layout = self.spec.dims, self._buf.layout
        return {l + 1: self._buf.acts[layout[l, step.H]:layout[l, step.H] + n * dims[l + 1]]
                .reshape(n, dims[l + 1]) for l in range(self.spec.n_layers)}

    def output_reach(self):
        """The largest |value| each layer's outputs can take for any uint8 image, in any
        order of summing its products: float64 (L,). Each layer's pre-activations are
        bounded by |W| @ reach + |b| (ReLU shrinks them; batch norm's inference map scales
        them by |gamma| / sqrt(var + eps) after |mean| is added). One matrix-vector product
        a layer, whatever the images."""
        params, running = self.parameters, self.running_stats
        reach, tops = self.preprocessing.input_reach(), []
        for l in range(1, self.spec.n_layers + 1):
            reach = np.abs(params[f"W{l}"].astype(np.float64)) @ reach
            top = reach.max()
            if f"gamma{l}" in params:
                gain = np.abs(params[f"gamma{l}"]) / np.sqrt(running[f"var{l}"].astype(
                    np.float64) + self.spec.bn_eps)
                reach = (reach + np.abs(running[f"mean{l}"])) * gain + np.abs(params[f"beta{l}"])
            else:
                reach = reach + np.abs(params[f"b{l}"])
            tops.append(max(top, reach.max()))
        return np.array(tops)

    def check_reach(self):
        """DataError when some image could make a layer's outputs overflow the network's
        dtype (`output_reach` beyond half its largest value: rounding adds to the bound)."""
        top = np.finfo(self.dtype).max / 2
        for l, reach in enumerate(self.output_reach(), 1):
            if not reach <= top:
                raise DataError(f"the model's weights overflow {self.spec.dtype}: layer {l}'s "
                                f"outputs reach {reach:.3g} for some images")

    @property
    def n_parameters(self):
        return sum(p.size for p in self.parameters.values())

    def step_threads(self, batch_size):
        """Numba threads that train this network fastest at batch_size: all of them, as
        the products are split between them and the small loops run serially anyway
        (`kernels.serial`)."""
        return numba.config.NUMBA_NUM_THREADS

    # -- configuration ----------------------------------------------------------------------

    def _config(self):
        spec = self.spec
        return step.StepConfig(
            lam=float(spec.lam), momentum=self.momentum, nesterov=self.nesterov,
            dropout=float(spec.dropout), loss=LOSS_CODES[spec.loss],
            label_smoothing=float(spec.label_smoothing), bn_alpha=float(spec.bn_alpha),
            bn_eps=float(spec.bn_eps), seed=self.seed, kernels=step.Kernels(
                batch_norm=_on(spec.batch_norm), dropout=_on(spec.dropout > 0),
                svm=_on(spec.loss == "svm")))

    def set_preprocessing(self, preprocessing, class_names=None, image_shape=None):
        """How raw images become inputs: a fitted `Preprocessing` of the network's D
        inputs (every source, evaluation and prediction applies it); optionally the
        class names and the images' (C, H, W)."""
        D = self.spec.input_size
        if not isinstance(preprocessing, Preprocessing) or preprocessing.n_inputs != D:
            raise ValueError(f"preprocessing must be a Preprocessing of {D} inputs, got "
                             f"{preprocessing!r}")
        self.preprocessing = preprocessing
        raw = 0 if preprocessing.projection is None else preprocessing.n_features
        if raw != self._raw_features:
            self._raw_features = raw
            self._buf = self._buf._replace(raw=np.zeros((self.max_batch, raw), self.dtype))
        if class_names is not None:
            if len(class_names) != self.spec.n_classes:
                raise ValueError(f"class_names must have {self.spec.n_classes} names, "
                                 f"got {len(class_names)}")
            self.class_names = tuple(class_names)
        if image_shape is not None:
            if int(np.prod(image_shape)) != preprocessing.n_features:
                raise ValueError(f"image_shape {tuple(image_shape)} does not hold "
                                 f"{preprocessing.n_features} features")
            self.image_shape = tuple(int(s) for s in image_shape)

    def batch_source(self, images, labels=None):
        """The compiled view of raw uint8 images (uint8[N, D]) under this network's
        preprocessing, for `run_steps`, `scores` and `evaluate_source`."""
        images = np.asarray(images)
        n = images.shape[0] if images.ndim >= 1 else 0
        _expect_shape("images", images, (n, self.preprocessing.n_features), np.uint8)
        return self._source(images, labels)

    def float_source(self, X, labels=None):
        """The compiled view of raw float rows X (float[N, D] in the network's dtype, C
        order) under this network's preprocessing, for `run_steps` and `scores`.

        Batches are gathered from the preprocessing's stored form of X as from uint8
        images, so training on float rows costs what training on images does; under
        standardisation that form is X itself, never a copy. (Numba compiles the gathering
        callers once per kind of stored array: dtype, and whether it is writeable.)
        """
        X = np.asarray(X)
        n = X.shape[0] if X.ndim >= 1 else 0
        _expect_shape("X", X, (n, self.preprocessing.n_features), self.dtype)
        if not X.flags.c_contiguous:
            raise ValueError("X must be C-contiguous (np.ascontiguousarray)")
        _check_finite("X", X)
        return self._source(X, labels)

    def source(self, rows, labels=None):
        """The compiled view of raw rows: `batch_source` of uint8 images, else
        `float_source` of float rows in the network's dtype."""
        return (self.batch_source(rows, labels) if np.asarray(rows).dtype == np.uint8
                else self.float_source(rows, labels))

    def _check_source(self, source):
        """ValueError unless `source` is a BatchSource of this network's preprocessing (its
        rows' width, and its projection's shape: the kernels project into the network's
        buffers)."""
        projection = self.preprocessing.projection
        shape = (0, 0) if projection is None else projection.shape
        if not isinstance(source, step.BatchSource) or source.images.ndim != 2 or \
                source.images.shape[1] != self.preprocessing.n_features or \
                source.projection.shape != shape:
            raise ValueError("source must be this network's source(images, labels)")

    def _source(self, images, labels):
        """The BatchSource of checked raw images: their preprocessing's gather form."""
        n = images.shape[0]
        labels = (np.zeros(n, np.int64) if labels is None
                  else self._checked_labels(labels, n, name="labels"))
        preprocessing = self.preprocessing
        stored, offset, scale = preprocessing.gather_form(images)
        shape = self.image_shape or (1, 1, preprocessing.n_features)
        projection = (np.zeros((0, 0)) if preprocessing.projection is None
                      else preprocessing.projection)
        return step.BatchSource(stored, labels, np.ascontiguousarray(offset, self.dtype),
                                np.ascontiguousarray(scale, self.dtype), shape,
                                np.ascontiguousarray(projection, self.dtype))

    @_compiled
    def scores(self, source, index=None):
        """Scores float[len(index), K] of source's rows `index` (default: all), in inference
        mode: one compiled call, n_max rows at a time. source: a `batch_source` or
        `float_source`."""
        self._check_source(source)
        index = _checked_index(index, source.images.shape[0])
        out = np.empty((index.size, self.spec.n_classes), dtype=self.dtype)
        wt = np.empty_like(self._buf.params)
        step.transposed_weights(wt, self._buf)
        step.predict_scores(out, self._buf, source, index, wt, self._config(), NO_AUGMENT)
        return out

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
        X = np.ascontiguousarray(X, dtype=self.dtype)
        _check_finite(name, X)  # the kernels would train on it: NaN loss and weights
        return X

    def _checked_labels(self, y, n, name="y"):
        y = np.asarray(y)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{name} must be an integer array of shape ({n},), "
                             f"got {y.dtype} {y.shape}")
        if n and (y.min() < 0 or y.max() >= self.spec.n_classes):
            raise ValueError(f"{name} must hold labels in [0, {self.spec.n_classes})")
        return np.ascontiguousarray(y, dtype=np.int64)

    @_compiled
    def forward(self, X, train=False, step_number=0):
        """Scores float[n, K] of the rows of X (float[n, D]); a copy.

        train=True uses batch statistics (updating the running ones) and dropout.
        """
        X = self._checked_inputs(X)
        return step.forward(self._buf, X, self._buf.params[:0], self._config(), bool(train),
                            int(step_number)).copy()

    @_compiled
    def loss_and_gradients(self, X, y, step_number=0):
        """Mean data loss of (X, y) in training mode; fills `gradients` (no update)."""
        X = self._checked_inputs(X)
        y = self._checked_labels(y, X.shape[0])
        cfg = self._config()
        scores = step.forward(self._buf, X, self._buf.params[:0], cfg, True, int(step_number))
        loss = step.loss_gradient(self._buf, scores, y, cfg)
        step.backward(self._buf, X, cfg, cfg.lam)
        return float(loss)

    @_compiled
    def objective(self, X, y, train=True, step_number=0):
        """(cost, loss) of (X, y): cost = loss + lam * sum ||W||^2. No gradient, no update."""
        X = self._checked_inputs(X)
        y = self._checked_labels(y, X.shape[0])
        cfg = self._config()
        scores = step.forward(self._buf, X, self._buf.params[:0], cfg, bool(train),
                              int(step_number))
        loss = float(step.loss_gradient(self._buf, scores, y, cfg))
        return loss + self.penalty(), loss

    @_compiled
    def train_step(self, X, y, eta, step_number=0):
        """One forward, backward and SGD update on (X, y) with learning rate eta.

        Returns the batch's mean data loss; a non-finite loss leaves the parameters as
        they were.
        """
        X = self._checked_inputs(X)
        y = self._checked_labels(y, X.shape[0])
        return float(step.train_step(self._buf, X, y, self._config(), float(eta),
                                     int(step_number)))

    def penalty(self):
        """lam * sum of the squared entries of every weight matrix (not b, gamma, beta)."""
        if self.spec.lam == 0:
            return 0.0
        total = sum(float(np.dot(W.ravel().astype(np.float64), W.ravel()))
                    for name, W in self.parameters.items() if name.startswith("W"))
        return self.spec.lam * total

    # -- uint8-image API -------------------------------------------------------------------

    @_compiled
    def run_steps(self, source, order, first_row, batch_size, step0, etas, losses_out,
                  augment=NO_AUGMENT, correct_out=None):
        """Train len(etas) steps on consecutive batches of `order`; see `step.run_steps`.

        source: this network's `batch_source`; order: int64[N] rows of the source, of which
        rows first_row .. first_row + len(etas) * batch_size - 1 are used; step0: the first
        step's number (it keys dropout and augmentation); etas: float64[k] > 0;
        losses_out: float[>= k]; correct_out: int64[>= k] (optional), how many of each
        batch's images the step's scores, before its update, classify right. Returns the
        number of steps done (fewer when a loss was not finite).
        """
        self._check_steps(source, order, first_row, batch_size, step0, etas, losses_out)
        if batch_size > self.max_batch:
            self.set_max_batch(batch_size)
        if correct_out is None:
            correct_out = np.zeros(len(etas), np.int64)
        elif correct_out.dtype != np.int64 or correct_out.ndim != 1 or correct_out.size < len(etas):
            raise ValueError(f"correct_out must be a 1-d int64 array of at least {len(etas)} "
                             f"entries")
        return int(step.run_steps(losses_out, correct_out, self._buf, source, order, etas,
                                  self._config(), augment, int(first_row), int(batch_size),
                                  int(step0)))

    def _check_steps(self, source, order, first_row, batch_size, step0, etas, losses_out):
        self._check_source(source)
        require(batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}")
        require(step0 >= 0, "step0", f"must be >= 0, got {step0}")
        etas = np.asarray(etas)
        if etas.ndim != 1 or etas.dtype != np.float64 or not np.all(etas > 0):
            raise ValueError("etas must be a 1-d float64 array of learning rates > 0")
        used = first_row + etas.size * batch_size
        if not isinstance(order, np.ndarray) or order.ndim != 1 or order.dtype != np.int64 \
                or first_row < 0 or used > order.size:
            raise ValueError(f"order must be a 1-d int64 array holding rows first_row .. "
                             f"{used - 1} (first_row {first_row}, {etas.size} steps of "
                             f"{batch_size})")
        rows = order[first_row:used]
        if rows.size and (rows.min() < 0 or rows.max() >= source.images.shape[0]):
            raise ValueError(f"order must hold rows in [0, {source.images.shape[0]})")
        if not isinstance(losses_out, np.ndarray) or losses_out.ndim != 1 or \
                losses_out.size < etas.size or losses_out.dtype.kind != "f":
            raise ValueError(f"losses_out must be a 1-d float array of at least {etas.size} "
                             f"entries")

    def evaluate(self, images, labels, index=None):
        """{'cost', 'loss', 'accuracy'} over raw images[index] (uint8[N, D]) in inference
        mode."""
        return self.evaluate_source(self.batch_source(images, labels), index)

    @_compiled
    def evaluate_source(self, source, index=None):
        """`evaluate` of a source's rows `index` (default: all): a caller that evaluates
        the same images again and again builds their source (and preprocesses them) once."""
        self._check_source(source)
        index = _checked_index(index, source.images.shape[0])
        if index.size == 0:
            raise ValueError("index selects no images")
        total, correct = step.evaluate(self._buf, source, index, self._config(), NO_AUGMENT)
        loss = total / index.size
        return {"cost": loss + self.penalty(), "loss": loss, "accuracy": correct / index.size}

    def predict_proba(self, images, index=None, tta="none", source=None):
        """Class probabilities float[len(index), K] (softmax of the scores) of raw
        images[index] (default: all): uint8 images, or float rows in the network's dtype
        (C order).

        tta="flip" (test-time augmentation): the mean of the probabilities of each image
        and of its mirror image (left-right), which needs the network's image_shape; one
        compiled `scores` call per view.
        source: this network's `source(images)`, when the caller holds one, so that the
        images are not preprocessed again; else only the chosen rows are (whitening costs
        19 MFLOP an image).
        """
        if tta not in TTAS:
            raise SettingError("tta", f"must be one of {', '.join(TTAS)}, got {tta!r}")
        self.check_reach()
        images = np.asarray(images)
        if source is None:
            if index is not None:
                images, index = images[_checked_index(index, images.shape[0])], None
            source = self.source(images)
        probabilities = self._probabilities(source, index)
        if tta == "flip":
            mirrored = self.source(self.mirrored(images, index))
            probabilities += self._probabilities(mirrored)
            probabilities /= 2
        return probabilities

    def _probabilities(self, source, index=None):
        probabilities = self.scores(source, index)
        softmax(probabilities, probabilities)
        return probabilities

    def mirrored(self, images, index=None):
        """The raw images images[index] ([N, D], uint8 or float) mirrored left-right: a
        read-only [len(index), D] of their dtype."""
        if self.image_shape is None:
            raise ValueError("mirroring images needs the network's image_shape (C, H, W)")
        images = np.asarray(images)
        rows = images[_checked_index(index, images.shape[0])]
        mirror = np.ascontiguousarray(
            rows.reshape(-1, *self.image_shape)[..., ::-1]).reshape(len(rows), -1)
        # read-only as data sets' memory maps and the estimator's rows are: Numba compiles
        # the gathering callers once per kind of array, and one kind serves them all
        mirror.flags.writeable = False
        return mirror

    def predict(self, images, index=None, tta="none"):
        """Predicted labels int64[len(index)] of raw images (tta: see predict_proba)."""
        return np.argmax(self.predict_proba(images, index, tta), axis=1)

    def evaluate_tta(self, images, labels, index=None, tta="flip", source=None):
        """{'loss', 'accuracy'} of the test-time-augmented probabilities (predict_proba,
        which takes `source`): the mean of -log p[label], and the share of images whose
        largest p is the label."""
        index = _checked_index(index, np.asarray(images).shape[0])
        labels = np.asarray(labels)[index]
        p = self.predict_proba(images, index, tta, source).astype(np.float64)
        picked = np.maximum(p[np.arange(index.size), labels], np.finfo(np.float64).tiny)
        return {"loss": float(-np.mean(np.log(picked))),
                "accuracy": float(np.mean(np.argmax(p, axis=1) == labels))}


def _on(used):
    """A Kernels switch: True, or None where the network never runs that kernel."""
    return True if used else None


def _check_finite(name, X):
    """DataError naming X unless every value of the float array X is finite."""
    if not np.isfinite(X).all():
        raise DataError(f"{name} holds NaN or infinite values")


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
