"""`MLPClassifier`: the engine as a scikit-learn classifier, on the engine's training run.

fit fits the preprocessing on the training rows (standardisation, or ZCA whitening with
`zca` > 0), then trains as every run of the engine trains (`training.run.run`): its
parameters become a TrainConfig, X's rows a Split, and an Observer (`_Epochs`) keeps
scikit-learn's counters after each epoch and ends the run by its stopping rule. Every
batch is gathered from the preprocessing's stored form of X and finished on the way
(flipped and shifted too, by the Trainer's Augment), so an epoch does no Python work per
step. Under standardisation that form is X itself, never copied when its rows are uint8 or
already in the network's dtype and C order (any other X is converted once, as
scikit-learn's own estimators convert it); ZCA whitens X once per fit or prediction call,
into an int16 copy. Prediction goes through `Network.scores`: one compiled call, whose
products are summed in a fixed order, so that a row's scores never depend on the rows
predicted with it; under tta="flip" through `Network.predict_proba`, the engine's own
test-time flips (one such call per view).

The rows the kernels read are handed over as read-only views, writeable or not: Numba
compiles the gathering callers once per kind of array, so one read-only kind serves
arrays and read-only memory maps alike.

Regularisation (`alpha` against the engine's `lam`): scikit-learn's MLPClassifier adds
0.5 * alpha * ||W||^2 / B to the mean loss of each mini-batch of B samples (its gradient
carries alpha * W / B); the engine's cost is loss + lam * sum ||W||^2 (gradient
2 lam W). So each step here uses lam = alpha / (2 B), which makes every update the one
scikit-learn's SGD solver would make: `alpha` keeps scikit-learn's meaning (and its grids),
and the engine's lam = 0.006 at batch 100 is alpha = 1.2.
"""
try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
    from threadpoolctl import threadpool_limits
except ImportError:
    raise ImportError("cifar_engine.MLPClassifier needs scikit-learn >= 1.6: "
                      "pip install cifar-engine[sklearn]") from None

import math
import numbers
import warnings
from contextlib import contextmanager
from dataclasses import replace
from types import SimpleNamespace

import numba
import numpy as np

from .data.preprocessing import fit_preprocessing
from .data.splits import Part, Split
from .errors import SettingError, UserError, require
from .model.network import STATE_GROUPS, Network, NetworkSpec
from .schedules import SCHEDULES
from .settings import MAX_SEED, MAX_STEPS, SETTINGS, Setting
from .training.config import TrainConfig, half_cycle_steps
from .training.loop import (Diverged, Observer, Stop, build_network, check_translate,
                            make_plan)
from .training.run import Prepared, run

__all__ = ["MLPClassifier"]

CONVERT_ROWS = 4096  # rows of an X that must be converted, converted at a time to predict
AUTO_BATCH = 200     # batch_size="auto": min(AUTO_BATCH, n_samples), as scikit-learn
# image_shape=None: the (C, H, W) of rows of these widths (CIFAR's, Fashion-MNIST's)
IMAGE_SHAPES = {3 * 32 * 32: (3, 32, 32), 1 * 28 * 28: (1, 28, 28)}


def _renamed(name, setting, **changes):
    return replace(SETTINGS[setting], name=name, **changes)


# The estimator's parameters that are plain settings: type, default, limits and messages.
# Those that the engine has keep its limits under scikit-learn's name where the meaning is
# the same, and scikit-learn's default where its MLPClassifier has one.
_SETTINGS = {s.name: s for s in (
    _renamed("hidden_layer_sizes", "hidden", default=(100,)),
    Setting("alpha", float, 1e-4, "L2 strength, as scikit-learn's", 0.0, math.inf,
            high_open=True),
    _renamed("learning_rate_init", "eta"),
    SETTINGS["schedule"],
    SETTINGS["eta_min"],
    SETTINGS["eta_max"],
    _renamed("n_s", "n_s", default="2ep"),
    SETTINGS["gamma"],
    SETTINGS["warmup"],
    SETTINGS["anneal"],
    _renamed("momentum", "momentum", default=0.9),
    _renamed("nesterovs_momentum", "nesterov", default=True),
    Setting("max_iter", int, 200, "Epochs.", 1, MAX_STEPS),
    Setting("tol", float, 1e-4, "Least improvement.", 0.0, math.inf, high_open=True),
    Setting("early_stopping", bool, False, "Stop on the validation score."),
    Setting("validation_fraction", float, 0.1, "Held out for early stopping.", 0.0, 1.0,
            low_open=True, high_open=True),
    Setting("n_iter_no_change", int, 10, "Epochs without improvement.", 1, MAX_STEPS),
    Setting("warm_start", bool, False, "Continue from the last fit."),
    SETTINGS["batch_norm"],
    SETTINGS["dropout"],
    SETTINGS["loss"],
    SETTINGS["label_smoothing"],
    SETTINGS["dtype"],
    SETTINGS["zca"],
    SETTINGS["pca"],
    SETTINGS["flip"],
    SETTINGS["translate"],
    SETTINGS["tta"],
)}
_D = {name: setting.default for name, setting in _SETTINGS.items()}
_NEED_SHAPE = ("flip", "translate", "tta")  # settings that read the rows as images
_ARCHITECTURE = ("hidden_layer_sizes", "batch_norm", "dtype", "zca", "pca")  # fixed once a net exists


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multilayer perceptron (ReLU) trained by the engine's compiled mini-batch SGD.

    Features are preprocessed as fit fitted them on the training rows: standardised, or
    ZCA-whitened with zca > 0; the first layer sees ``preprocessing_.transform(X)``. X may
    be any 2-d numeric array (uint8 pixels or floats, C or F order, memory maps); labels of
    any type, as ``classes_`` holds them. Each row may be an image (image_shape), which
    flip, translate and tta read.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the hidden layers; () gives the single-layer (softmax) classifier.
    alpha : float, default=1e-4
        L2 strength on the weight matrices, as in scikit-learn: each step of B samples
        adds 0.5 * alpha * ||W||^2 / B to its mean loss, i.e. the engine's
        lam = alpha / (2 B).
    batch_size : int or "auto", default="auto"
        Mini-batch size; "auto" is min(200, n_samples). Each epoch is a fresh shuffle cut
        into n_samples // batch_size full batches (the remainder sits that epoch out).
    learning_rate_init : float, default=0.01
        The learning rate eta of the constant schedule.
    schedule : str, default="constant"
        Learning-rate schedule (`cifar_engine.schedules.eta_schedule`): "constant",
        "triangular", "triangular2", "exp_range" or "one-cycle". The cyclical ones
        move eta between eta_min and eta_max in half cycles of n_s steps; the schedule
        restarts with each fit and continues across partial_fit calls. one-cycle (fit
        only: partial_fit refuses it) rises from eta_min to eta_max over the first warmup
        of the fit's max_iter epochs, then decays to 0 at their end; it spans max_iter
        epochs even when the stopping rule ends the fit sooner.
    eta_min, eta_max : float, default=1e-5, 0.1
        Range of a cyclical or one-cycle schedule.
    n_s : int or str, default="2ep"
        Half cycle of a cyclical schedule: steps (500) or epochs ("2ep").
    gamma : float, default=1.0
        Per-step amplitude decay of exp_range, in (0, 1].
    warmup : float, default=0.2
        Fraction of the fit over which one-cycle warms up, in (0, 1).
    anneal : {"cos", "linear"}, default="cos"
        How one-cycle decays from eta_max to 0 after its warm-up.
    momentum : float, default=0.9
        SGD momentum mu in [0, 1).
    nesterovs_momentum : bool, default=True
        Nesterov's momentum.
    max_iter : int, default=200
        Epochs at most.
    tol, n_iter_no_change : float, int, default=1e-4, 10
        Training stops when the training loss (with early_stopping, the validation
        accuracy) has not improved by tol for more than n_iter_no_change epochs.
    early_stopping : bool, default=False
        Hold out validation_fraction of the training data (stratified), score it after
        every epoch, stop as above, and keep the parameters of the best epoch.
    validation_fraction : float, default=0.1
    batch_norm : bool, default=False
        Batch normalisation after each hidden layer's affine map (before its ReLU).
    dropout : float, default=0.0
        Inverted-dropout rate on the hidden layers.
    loss : {"xent", "svm"}, default="xent"
        Softmax cross-entropy, or the multi-class SVM hinge loss (no predict_proba).
    label_smoothing : float, default=0.0
        Cross-entropy against targets smoothed by s in [0, 1): s / K on every class plus
        1 - s on the label (loss="xent" only).
    dtype : {"float32", "float64"}, default="float32"
        Type of parameters and activations.
    zca : float, default=0.0
        ZCA-whiten the inputs with eps relative to the mean eigenvalue of the training
        rows' covariance (0.1 works well); 0 = per-feature standardisation. The whitening
        costs an eigen-decomposition of the n_features x n_features covariance per fit.
    pca : int, default=0
        Keep the pca leading principal components of the standardised (or, with zca,
        whitened) rows: the first layer sees pca inputs, and costs n_features / pca times
        less (augmentation still acts on the images, before the projection); 0 = every
        feature.
    flip : bool, default=False
        Mirror each training image left-right with probability 1/2 as its batch is
        gathered (the draws come from random_state's streams, keyed by the step).
    translate : int, default=0
        Shift each training image by a whole number of pixels drawn from [-translate,
        translate] on each axis (pixels shifted in are 0 after preprocessing: the mean);
        less than the images' height and width.
    tta : {"none", "flip"}, default="none"
        Test-time flips: predict, predict_proba, predict_log_proba, decision_function and
        score average the probabilities of each image and of its mirror image, as the
        engine's evaluation does (`Network.predict_proba`); decision_function then gives
        the log of those probabilities (floored at the smallest normal float64). The
        validation score of early_stopping stays plain, as a run's evaluations do.
    image_shape : tuple (C, H, W) or None, default=None
        How each row of X is an image, channel-major as CIFAR's rows (C * H * W ==
        n_features). None: (3, 32, 32) for 3072 features, (1, 28, 28) for 784, else the
        rows are no images and flip, translate and tta are refused.
    n_threads : int or None, default=None
        Threads for the compiled loops and for BLAS. None: the engine's choice (one Numba
        thread for small nets, whose loops lose more in waking threads than they gain; BLAS
        as configured).
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, the shuffles, the dropout masks and the validation
        split; an int makes fit reproducible bit for bit.
    warm_start : bool, default=False
        fit continues from the last fit's parameters and preprocessing (the velocity is
        reset, as in scikit-learn); the classes, features, architecture and zca must not
        change.
    verbose : bool or int, default=False
        Print the loss (and validation score) after every epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,), when X had string column names
    n_iter_ : int, epochs run by the last fit (1 after partial_fit)
    t_ : int, training samples seen since the network was created
    loss_ : float, the last epoch's loss: mean data loss of its steps plus the L2 term
        (alpha / (2 B)) ||W||^2 at its end
    loss_curve_ : list of float, loss_ of every epoch since the network was created
    best_loss_ : float or None (None with early_stopping)
    validation_scores_ : list of float or None, validation accuracy of every epoch (None
        without early_stopping)
    best_validation_score_ : float or None
    preprocessing_ : cifar_engine.data.preprocessing.Preprocessing, fitted on the first fit's
        training rows; ``preprocessing_.transform(X)`` gives the first layer's inputs
    coefs_ : list of ndarray, coefs_[i] of shape (n_units_i, n_units_{i+1}): copies of the
        weight matrices in scikit-learn's orientation (W^T), acting on preprocessed inputs
    intercepts_ : list of ndarray, copies of the biases; with batch_norm, a hidden layer
        has no bias, and its entry holds the normalisation's shift beta (the layer computes
        relu(gamma * (h W^T - running mean) / sqrt(running var + eps) + beta)); the
        network_ holds gamma and the running statistics
    n_layers_ : int, layers including input and output, as scikit-learn counts them
    network_ : cifar_engine.Network, the trained network (e.g. for save_network); its
        image_shape is the rows' (C, H, W) (None when they are no images)
    """

    def __init__(self, hidden_layer_sizes=_D["hidden_layer_sizes"], *, alpha=_D["alpha"],
                 batch_size="auto", learning_rate_init=_D["learning_rate_init"],
                 schedule=_D["schedule"], eta_min=_D["eta_min"], eta_max=_D["eta_max"],
                 n_s=_D["n_s"], gamma=_D["gamma"], warmup=_D["warmup"],
                 anneal=_D["anneal"], momentum=_D["momentum"],
                 nesterovs_momentum=_D["nesterovs_momentum"], max_iter=_D["max_iter"],
                 tol=_D["tol"], early_stopping=_D["early_stopping"],
                 validation_fraction=_D["validation_fraction"],
                 n_iter_no_change=_D["n_iter_no_change"], batch_norm=_D["batch_norm"],
                 dropout=_D["dropout"], loss=_D["loss"],
                 label_smoothing=_D["label_smoothing"], dtype=_D["dtype"], zca=_D["zca"],
                 pca=_D["pca"],
                 flip=_D["flip"], translate=_D["translate"], tta=_D["tta"], image_shape=None,
                 n_threads=None, random_state=None, warm_start=_D["warm_start"],
                 verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.schedule = schedule
        self.eta_min = eta_min
        self.eta_max = eta_max
        self.n_s = n_s
        self.gamma = gamma
        self.warmup = warmup
        self.anneal = anneal
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.loss = loss
        self.label_smoothing = label_smoothing
        self.dtype = dtype
        self.zca = zca
        self.pca = pca
        self.flip = flip
        self.translate = translate
        self.tta = tta
        self.image_shape = image_shape
        self.n_threads = n_threads
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    # -- training -------------------------------------------------------------------------------

    def fit(self, X, y):
        """Train on (X, y) for up to max_iter epochs; returns self.

        X : array-like of shape (n_samples, n_features), numeric
        y : array-like of shape (n_samples,), at least two distinct labels
        """
        return self._fit(X, y, classes=None, incremental=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y); returns self.

        classes : array-like, every label of the whole data set: required on the first
            call, which also fits the preprocessing on this X (pass a representative
            chunk) and creates the network.
        """
        return self._fit(X, y, classes=classes, incremental=True)

    def _fit(self, X, y, classes, incremental):
        p = self._checked_params()
        fitted = hasattr(self, "network_")
        if incremental:
            if p.early_stopping:
                raise ValueError("partial_fit does not support early_stopping=True")
            require(not SCHEDULES[p.schedule].needs_total, "schedule",
                    f"{p.schedule} spans a run's length (fit's max_iter epochs), which "
                    f"partial_fit does not know: train with fit")
            if not fitted and classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
        fresh = not fitted or not (incremental or p.warm_start)
        X, y = validate_data(self, X, y, reset=fresh)
        check_classification_targets(y)
        classes_ = self._classes(y, classes, fresh, incremental)
        labels = _encode(y, classes_)
        if not fresh:
            self._check_architecture(p)
        image_shape = _image_shape(p, X.shape[1])
        seed = self._new_seed() if fresh else self._seed
        rows, val_rows = self._rows(p, labels, seed)
        images = _readable_rows(X, np.dtype(p.dtype))
        config = self._config(p, seed, self._batch_size(p, rows.size), incremental)
        if fresh:
            self._start(p, classes_, seed, fit_preprocessing(p.zca, images, rows,
                                                                  pca=p.pca))
        elif not incremental:  # a new run on this network: its schedule and stopping rule
            self._schedule_start = self._t
            self._start_stopping(p)
        prepared = Prepared(config, None, _split(images, labels, rows, val_rows),
                            self._plan(config, rows.size), self.preprocessing_)
        self._train(p, prepared, image_shape, None if fresh else self.network_, incremental)
        return self

    def _rows(self, p, labels, seed):
        """(training rows, validation rows or None): int64 indices into X, sorted."""
        rows = np.arange(labels.size, dtype=np.int64)
        if not p.early_stopping:
            return rows, None
        rows, val_rows = train_test_split(rows, test_size=p.validation_fraction,
                                          random_state=seed % 2**32, stratify=labels)
        if val_rows.size < 2:
            raise ValueError("The validation set is too small. Increase "
                             "'validation_fraction' or the size of your dataset.")
        return np.sort(rows), np.sort(val_rows)

    def _config(self, p, seed, batch, incremental):
        """The TrainConfig of this fit: the network, the optimiser, the schedule."""
        return TrainConfig(
            hidden=p.hidden_layer_sizes, batch_norm=p.batch_norm, dropout=p.dropout,
            loss=p.loss, lam=p.alpha / (2 * batch), dtype=p.dtype, zca=p.zca, pca=p.pca,
            seed=seed,
            batch_size=batch, momentum=p.momentum, nesterov=p.nesterovs_momentum,
            schedule=p.schedule, eta=p.learning_rate_init, eta_min=p.eta_min,
            eta_max=p.eta_max, n_s=p.n_s, gamma=p.gamma, warmup=p.warmup, anneal=p.anneal,
            label_smoothing=p.label_smoothing, flip=p.flip, translate=p.translate, tta=p.tta,
            epochs=1 if incremental else p.max_iter, threads=p.n_threads or 0)

    def _plan(self, config, n_rows):
        """The run's Plan, continuing the network's steps, shuffles and schedule."""
        return replace(make_plan(config, n_rows).continuing(self._t, self._epoch,
                                                            self._schedule_start),
                       eval_every=0)

    def _classes(self, y, classes, fresh, incremental):
        if not fresh:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={np.unique(classes)!r} is not the same as on the "
                                 f"first call to partial_fit: {self.classes_!r}")
            if not incremental and not np.array_equal(np.unique(y), self.classes_):
                raise ValueError(f"warm_start can only be used where y has the same classes "
                                 f"as in the previous call to fit: previously "
                                 f"{self.classes_!r}, now {np.unique(y)!r}")
            return self.classes_
        classes_ = np.unique(np.asarray(classes) if incremental else y)
        if classes_.size < 2:
            raise ValueError(f"MLPClassifier needs at least 2 classes to train, got 1 class "
                             f"({classes_.tolist()[0]!r})" if classes_.size else
                             "MLPClassifier needs at least 2 classes to train, got none")
        return classes_

    def _check_architecture(self, p):
        spec = self.network_.spec
        before = dict(hidden_layer_sizes=spec.hidden, batch_norm=spec.batch_norm,
                      dtype=spec.dtype, zca=self._zca, pca=self._pca)
        for name in _ARCHITECTURE:
            if getattr(p, name) != before[name]:
                raise ValueError(f"{name} is {getattr(p, name)!r}, but the network being "
                                 f"continued (warm_start or partial_fit) has {before[name]!r}")

    def _new_seed(self):
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _batch_size(self, p, n):
        if p.batch_size == "auto":
            return min(AUTO_BATCH, n)
        if p.batch_size > n:
            warnings.warn(f"batch_size {p.batch_size} is larger than the {n} training samples; "
                          f"using {n}")
            return n
        return p.batch_size

    def _start(self, p, classes, seed, preprocessing):
        """The fitted state of a new network (made by the run that trains it)."""
        self.classes_ = classes
        self.preprocessing_ = preprocessing
        self._zca, self._pca = p.zca, p.pca
        self.n_layers_ = len(p.hidden_layer_sizes) + 2
        self._seed = seed
        self._t = self._epoch = self._schedule_start = 0  # steps and epochs key the draws
        self.t_ = 0
        self.loss_curve_ = []
        self.validation_scores_ = None
        self._start_stopping(p)

    def _start_stopping(self, p):
        """The state of the stopping rule, at the start of each fit (and of partial_fit's
        network): the best loss or validation score so far, and epochs without improving."""
        self._no_improvement_count = 0
        self.best_loss_ = None if p.early_stopping else np.inf
        self.best_validation_score_ = -np.inf if p.early_stopping else None
        if p.early_stopping and self.validation_scores_ is None:
            self.validation_scores_ = []
        elif not p.early_stopping:
            self.validation_scores_ = None

    def _train(self, p, prepared, image_shape, previous, incremental):
        """Train the prepared run on a new network of rows of image_shape (holding the
        state of `previous`, the network continued, if any), epoch by epoch as `_Epochs`
        watches."""
        config = prepared.config
        # the velocity carries on within partial_fit's runs only
        state = None if previous is None else previous.state_dict(
            STATE_GROUPS if incremental else ("parameters", "running_stats"), copy=False)
        net = build_network(config, prepared.preprocessing, image_shape,
                            [str(c) for c in self.classes_], state)
        self.network_ = net
        epochs, stop = _Epochs(self, p, incremental), Stop()
        self.n_iter_ = 0
        interrupted = False
        try:
            with self._threads(net, config.batch_size):
                run(prepared, observers=[epochs], stop=stop, checkpoint=(net, self._t, ()))
        except Diverged as e:
            raise UserError(f"the loss is not finite at epoch {self._epoch + 1}, step "
                            f"{e.step} (eta {e.eta:.3g}): training diverged; lower "
                            f"learning_rate_init (or eta_max)") from None
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
            interrupted = True
        if epochs.best is not None:
            net.load_state(epochs.best)
        schedule = SCHEDULES[p.schedule]
        planned = schedule.cyclical or schedule.needs_total  # the schedule ends the run
        if not (stop.ended or interrupted or incremental or planned):
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({p.max_iter}) reached "
                          f"and the optimization hasn't converged yet.", ConvergenceWarning)

    # -- prediction ----------------------------------------------------------------------------

    def decision_function(self, X):
        """Scores of the last layer, float64 of shape (n_samples, n_classes); with two
        classes, the second's minus the first's, of shape (n_samples,)."""
        scores = self._scores(X).astype(np.float64)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """Labels (of classes_) of the rows of X."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def _has_proba(self):
        return self.loss == "xent"

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities (softmax of the scores), float64 (n_samples, n_classes).
        Only with loss="xent"."""
        s = self._scores(X).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        return s

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """Log of predict_proba, computed without forming the probabilities."""
        s = self._scores(X).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        s -= np.log(np.exp(s).sum(axis=1, keepdims=True))
        return s

    def _scores(self, X):
        """The last layer's scores of X's rows, (n_samples, n_classes) of the network's
        dtype; under tta="flip", float64 scores whose softmax is the engine's test-time
        probabilities: their log."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        net = self.network_
        scores_of = self._scores_of(net)
        with self._threads(net, net.max_batch):
            if _readable_as_is(X, net.dtype):
                return scores_of(_readable_rows(X, net.dtype))
            chunks = (_readable_rows(X[start:start + CONVERT_ROWS], net.dtype)
                      for start in range(0, X.shape[0], CONVERT_ROWS))
            return np.concatenate([scores_of(chunk) for chunk in chunks])

    def _scores_of(self, net):
        """The function of readable rows (`_readable_rows`) that gives their scores under
        the tta parameter: one compiled call per view."""
        tta = _SETTINGS["tta"].check(self.tta)
        if tta == "none":
            return lambda rows: net.scores(net.source(rows))
        if net.image_shape is None:
            raise _no_image_shape("tta", net.spec.input_size)

        def log_probabilities(rows):
            # floored as the engine's test-time loss floors them (Network.evaluate_tta)
            p = net.predict_proba(rows, tta=tta).astype(np.float64)
            return np.log(np.maximum(p, np.finfo(np.float64).tiny))
        return log_probabilities

    # -- fitted parameters in scikit-learn's orientation ---------------------------------------

    @property
    def coefs_(self):
        check_is_fitted(self)
        params = self.network_.parameters
        return [params[f"W{l}"].T.copy() for l in range(1, self.n_layers_)]

    @property
    def intercepts_(self):
        check_is_fitted(self)
        params = self.network_.parameters
        return [params[f"b{l}" if f"b{l}" in params else f"beta{l}"].copy()
                for l in range(1, self.n_layers_)]

    # -- pickling: the network's state, not its scratch buffers --------------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.pop("network_", None)
        if net is not None:
            state["_network_state"] = dict(
                spec=net.spec.to_dict(), seed=net.seed, max_batch=net.max_batch,
                momentum=net.momentum, nesterov=net.nesterov,
                class_names=list(net.class_names), image_shape=net.image_shape,
                state=net.state_dict())
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_network_state", None)
        super().__setstate__(state)
        if saved is not None:
            net = Network(NetworkSpec.from_dict(saved["spec"]), seed=saved["seed"],
                          max_batch=saved["max_batch"], momentum=saved["momentum"],
                          nesterov=saved["nesterov"], state=saved["state"])
            net.set_preprocessing(self.preprocessing_, saved["class_names"],
                                  saved["image_shape"])
            self.network_ = net

    # -- parameters and threads ----------------------------------------------------------------

    def _checked_params(self):
        """Every parameter checked and typed; SettingError (a ValueError) names the first
        bad one."""
        values = {name: getattr(self, name) for name in _SETTINGS}
        hidden = values["hidden_layer_sizes"]
        if _is_int(hidden):
            hidden = (hidden,)
        elif isinstance(hidden, np.ndarray):
            hidden = tuple(hidden.tolist())
        values["hidden_layer_sizes"] = hidden
        if _is_int(values["n_s"]):  # steps, as TrainConfig takes them
            values["n_s"] = str(values["n_s"])
        p = SimpleNamespace(**{name: _SETTINGS[name].check(v) for name, v in values.items()})
        if self.batch_size == "auto":
            p.batch_size = "auto"
        else:
            p.batch_size = SETTINGS["batch_size"].check(self.batch_size)
        half_cycle_steps(p.n_s, 1)  # its form now; its size once the steps per epoch are known
        require(p.eta_min <= p.eta_max, "eta_min",
                f"must be <= {{eta_max}} ({p.eta_max:g}), got {p.eta_min:g}")
        p.n_threads = self._checked_threads()
        p.image_shape = self._checked_image_shape()
        p.verbose = self.verbose
        require(isinstance(p.verbose, (bool, np.bool_)) or (_is_int(p.verbose) and p.verbose >= 0),
                "verbose", f"must be true, false or a whole number >= 0, got {p.verbose!r}")
        require(self.random_state is None or isinstance(self.random_state, np.random.RandomState)
                or (_is_int(self.random_state) and 0 <= self.random_state <= MAX_SEED),
                "random_state", f"must be None, a whole number in [0, {MAX_SEED}] or a "
                                f"numpy RandomState, got {self.random_state!r}")
        return p

    def _checked_threads(self):
        n = self.n_threads
        require(n is None or (_is_int(n) and n >= 1), "n_threads",
                f"must be None or a whole number >= 1, got {n!r}")
        return n

    def _checked_image_shape(self):
        """image_shape as a tuple (C, H, W) of ints, or None."""
        shape = self.image_shape
        require(shape is None or (isinstance(shape, (tuple, list)) and len(shape) == 3 and
                                  all(_is_int(s) and s >= 1 for s in shape)),
                "image_shape", f"must be None or (C, H, W), three whole numbers >= 1, got "
                               f"{shape!r}")
        return None if shape is None else tuple(int(s) for s in shape)

    @contextmanager
    def _threads(self, net, rows):
        """Numba's threads (and BLAS's, when n_threads is set) for a call on `rows` rows."""
        n = self._checked_threads()
        previous = numba.get_num_threads()
        numba.set_num_threads(min(n or net.step_threads(rows), numba.config.NUMBA_NUM_THREADS))
        try:
            if n is None:
                yield
            else:
                with threadpool_limits(limits=n, user_api="blas"):
                    yield
        finally:
            numba.set_num_threads(previous)


class _Epochs(Observer):
    """scikit-learn's view of a run, after each epoch: the estimator's counters, loss_
    (and validation score), verbose lines, and its stopping rule, which ends the run
    (`Stop.end`); `best` holds the parameters of the best validation score so far."""

    def __init__(self, clf, p, incremental):
        self.clf, self.p, self.incremental = clf, p, incremental
        self.best = None
        self._seen = 0  # steps of the run whose losses went into an epoch's loss_

    def segment(self, trainer, n_steps):
        clf, p = self.clf, self.p
        clf._t = trainer.step
        if not trainer.at_epoch_end:
            return
        clf._epoch = trainer.plan.epoch_of(trainer.step)
        losses = trainer.losses[self._seen:]
        self._seen += losses.size
        clf.loss_ = float(losses.sum(dtype=np.float64)) / losses.size + trainer.net.penalty()
        clf.loss_curve_.append(clf.loss_)
        clf.n_iter_ += 1
        clf.t_ += losses.size * trainer.config.batch_size
        if p.verbose:
            print(f"Iteration {clf.n_iter_}, loss = {clf.loss_:.8f}")
        if p.early_stopping:
            self._score_validation(trainer)
        else:
            self._count_loss_improvement()
        if not self.incremental and clf._no_improvement_count > p.n_iter_no_change:
            what = "Validation score" if p.early_stopping else "Training loss"
            if p.verbose:
                print(f"{what} did not improve more than tol={p.tol:f} for "
                      f"{p.n_iter_no_change} consecutive epochs. Stopping.")
            trainer.stop.end(f"{what} did not improve")

    def _score_validation(self, trainer):
        clf, p = self.clf, self.p
        score = trainer.evaluate("val")["accuracy"]
        clf.validation_scores_.append(score)
        if p.verbose:
            print(f"Validation score: {score:f}")
        self._count(score < clf.best_validation_score_ + p.tol)
        if score > clf.best_validation_score_:
            clf.best_validation_score_ = score
            self.best = trainer.net.state_dict(["parameters", "running_stats"])

    def _count_loss_improvement(self):
        clf = self.clf
        self._count(clf.loss_ > clf.best_loss_ - self.p.tol)
        clf.best_loss_ = min(clf.best_loss_, clf.loss_)

    def _count(self, stalled):
        clf = self.clf
        clf._no_improvement_count = clf._no_improvement_count + 1 if stalled else 0


# -- helpers --------------------------------------------------------------------------------------


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _image_shape(p, n_features):
    """(C, H, W) of X's rows: p.image_shape, or IMAGE_SHAPES' for n_features; None when the
    rows are no images, which flip, translate and tta refuse (SettingError naming them)."""
    if p.image_shape is not None:
        size = math.prod(p.image_shape)
        require(size == n_features, "image_shape",
                f"{p.image_shape} holds {size} values, but X has {n_features} features")
    shape = p.image_shape or IMAGE_SHAPES.get(n_features)
    if shape is None:
        for name in _NEED_SHAPE:
            if getattr(p, name) != _D[name]:
                raise _no_image_shape(name, n_features)
    elif p.translate:
        check_translate(p.translate, shape)
    return shape


def _no_image_shape(name, n_features):
    return SettingError(name, f"reads X's rows as images, but rows of {n_features} features "
                              f"have no known (C, H, W): give {{image_shape}}")


def _encode(y, classes):
    """y as int64 indices into classes (sorted); a label outside classes is an error."""
    index = np.searchsorted(classes, y)
    known = index < classes.size
    known[known] = classes[index[known]] == y[known]
    if not known.all():
        raise ValueError(f"y holds labels that are not in classes {classes!r}: "
                         f"{np.unique(y[~known])!r}")
    return index.astype(np.int64)


def _readable_as_is(X, dtype):
    return X.dtype in (np.uint8, dtype) and X.flags.c_contiguous


def _readable_rows(X, dtype):
    """X as the kernels gather from it: uint8 or `dtype`, C order, as a read-only view.

    Converts (copies) only an X of another dtype or layout; a value too large for a float32
    network is an error rather than an inf.
    """
    if _readable_as_is(X, dtype):
        X = np.asarray(X)
    elif X.dtype == np.uint8:
        X = np.ascontiguousarray(X)
    else:
        try:
            with np.errstate(over="raise", invalid="raise"):
                X = np.ascontiguousarray(X, dtype=dtype)
        except FloatingPointError:
            raise ValueError(f"X holds values too large for {dtype.name} (dtype='float64' "
                             f"takes them)") from None
    view = X.view()
    view.flags.writeable = False
    return view


def _split(images, labels, train, val):
    """The Split of a fit: X's rows `train` and `val` (None: no validation), no test."""
    none = np.zeros(0, np.int64)
    return Split("estimator", *(Part(images, labels, index) for index in
                                (train, none if val is None else val, none)))
