"""The compiled network: forward, backward and update over all layers in one Numba call.

A call from Python into Numba costs microseconds and a step of a 3072-50-10 net about a
millisecond, so the loop over layers (and over the steps between two evaluations) runs
here, not in Python. Every tensor lives in a few flat slabs allocated once per network and
batch size (as in llm.c); `layout` holds each layer's offsets into them, so one compiled
function serves every depth and width, and the SGD update takes each weight matrix as
the backward pass finishes with it, then the vectors in one pass over the slab's tail.

Layer l maps d_l = dims[l] inputs to m_l = dims[l + 1] outputs. Per layer, `layout[l]`:
    W, B, GAMMA, BETA   offsets into params / grads / velocity (-1 where absent:
                        a batch-norm layer has gamma and beta and no bias; the last layer
                        has W and b)
    RUN_MEAN, RUN_VAR   offsets into running (batch-norm layers)
    S, S_HAT, H         offsets into acts of float[n_max, m_l] blocks: affine output,
                        normalised output, layer output (H == S for a layer without BN,
                        whose ReLU runs in place; the last layer's H holds the scores)
    MU, INV_STD         offsets into acts of float[m_l] batch statistics

Argument order (the package's, with one place for the slabs): the arrays a caller reads
results from (out, losses_out, correct_out), then `buf`, the network's slabs (its
parameters and state, which training updates, and the workspace every pass writes), then
the inputs (X, y, data, order, etas), then wt (the weights transposed), then cfg and the
other scalars. buf keeps that place in the one function that only reads it
(`transposed_weights`).
"""
from collections import namedtuple

import numba
import numpy as np
from numba import njit, types
from numba.extending import overload

from . import LOSS_CODES
from .batch import gather
from .batchnorm import batchnorm_backward, batchnorm_forward_infer, batchnorm_forward_train
from .blas import copy_matrix, gemm
from .dense import (dense_backward, dense_backward_input, dense_forward, dense_forward_in_order,
                    product_in_order)
from .dropout import dropout_forward
from .losses import softmax_xent, svm_hinge
from .rng import derive_key
from .sgd import sgd_momentum

# The functions below are cached and call parallel kernels. An entry compiled in a process
# whose parallel kernels came from the disk cache lacks the hook that starts the threading
# layer, and a fresh process calling it first jumps to a null pointer (Numba issue #8578).
# Starting the threading layer on import makes every entry safe.
numba.get_num_threads()

W, B, GAMMA, BETA, RUN_MEAN, RUN_VAR, S, S_HAT, H, MU, INV_STD = range(11)
N_FIELDS = 11

XENT, SVM = LOSS_CODES["xent"], LOSS_CODES["svm"]  # ints Numba compiles in (not the dict)

# Random streams: one key per (stream, step) so draws never overlap between uses.
AUGMENT_STREAM = 0
DROPOUT_STREAM = 1  # + layer index

NetBuffers = namedtuple(
    "NetBuffers",
    ["params", "grads", "velocity", "running", "acts", "grad_a", "grad_b", "losses",
     "inputs", "raw", "targets", "layout", "dims", "n_weights"],
)
NetBuffers.__doc__ = """The slabs of one network at one maximum batch size n_max.

params, grads, velocity : float[P]; running : float[R]; acts : float[A];
grad_a, grad_b : float[n_max * max(dims[1:])], ping-pong gradients at layer outputs;
losses : float[n_max]; inputs : float[n_max, D]; raw : float[n_max, D_raw], the gathered rows
that a projecting preprocessing maps to inputs (float[n_max, 0] without one);
targets : int64[n_max];
layout : int64[L, N_FIELDS]; dims : int64[L + 1]; n_weights : int, the weight matrices
fill params[:n_weights] (the entries that L2 decays).
"""

StepConfig = namedtuple(
    "StepConfig",
    ["lam", "momentum", "nesterov", "dropout", "loss", "label_smoothing", "bn_alpha", "bn_eps",
     "seed", "kernels"],
)
StepConfig.__doc__ = """Scalars of a training step: L2 lam, SGD momentum mu and Nesterov flag,
dropout rate p, loss (its code in LOSS_CODES: XENT or SVM), label_smoothing (float, XENT
only; SVM ignores it), batch-norm running-average alpha and eps, the seed, and the optional
Kernels compiled in."""

Kernels = namedtuple("Kernels", ["batch_norm", "dropout", "svm"])
Kernels.__doc__ = """Which optional kernels the compiled step holds: each True, or None for
one the network never runs. A None switch has its own type, so Numba compiles the step
without that kernel: a cold start compiles only what the run uses (batch norm, dropout
and the hinge loss took about a quarter of a 3072-50-10 net's cold start)."""


def _optional(kernel, off=None):
    """`kernel` behind a Kernels switch: f(switch, *args) calls kernel(*args), and compiles
    to nothing (returning `off`) where the switch is None."""
    def call(switch, *args):
        return kernel(*args) if switch is not None else off

    @overload(call)
    def _typed(switch, *args):
        if isinstance(switch, types.NoneType):
            return lambda switch, *args: off
        return lambda switch, *args: kernel(*args)
    return call


_batchnorm_forward_train = _optional(batchnorm_forward_train)
_batchnorm_forward_infer = _optional(batchnorm_forward_infer)
_batchnorm_backward = _optional(batchnorm_backward)
_dropout_forward = _optional(dropout_forward)
_svm_hinge = _optional(svm_hinge, off=np.nan)

BatchSource = namedtuple("BatchSource", ["images", "labels", "mean", "inv_std", "image_shape",
                                         "projection"])
BatchSource.__doc__ = """A dataset in the form the gather kernel reads, and its
preprocessing's offset, scale and projection (input = (images[row] - mean) * inv_std, then
@ projection when it has columns): images uint8[N, D] with a standardisation or a
projection, or int16[N, D] whitened images with mean 0 and a per-feature step; labels
int64[N], mean and inv_std float[D], image_shape (C, H, W), projection float[D, D_in]
(float[0, 0]: none)."""


@njit(cache=True, inline="always")
def _matrix(slab, off, rows, cols):
    return slab[off:off + rows * cols].reshape((rows, cols))


@njit(cache=True, inline="always")
def _vector(slab, off, size):
    return slab[off:off + size]


@njit(cache=True, inline="always")
def forward(buf, X, wt, cfg, train, step):
    """Scores of the rows of X (float[n, D]) in the last layer's H block; returns that view.

    train: batch statistics for BN (and running averages updated), dropout applied with
    masks keyed by (seed, layer, step); else running statistics and no dropout.
    wt: float[0] (the products on BLAS), or float[P], every weight matrix transposed at
    its offset in params (`transposed_weights`): the products summed in order, so that a
    row's scores never depend on the rows beside it (`dense.product_in_order`).
    """
    n = X.shape[0]
    n_layers = buf.layout.shape[0]
    h_in = X
    for l in range(n_layers):
        lay = buf.layout[l]
        d, m = buf.dims[l], buf.dims[l + 1]
        last = l == n_layers - 1
        w = _matrix(buf.params, lay[W], m, d)
        out = _matrix(buf.acts, lay[H], n, m)
        in_order = wt.size > 0
        if lay[GAMMA] < 0 and in_order:
            dense_forward_in_order(out, h_in, _matrix(wt, lay[W], d, m),
                                   _vector(buf.params, lay[B], m), not last)
        elif lay[GAMMA] < 0:
            dense_forward(out, h_in, w, _vector(buf.params, lay[B], m), not last)
        else:
            s = _matrix(buf.acts, lay[S], n, m)
            if in_order:  # no bias: beta takes its place
                product_in_order(s, h_in, _matrix(wt, lay[W], d, m))
            else:
                gemm(s, h_in, w, False, True)
            gamma = _vector(buf.params, lay[GAMMA], m)
            beta = _vector(buf.params, lay[BETA], m)
            run_mean = _vector(buf.running, lay[RUN_MEAN], m)
            run_var = _vector(buf.running, lay[RUN_VAR], m)
            if train:
                _batchnorm_forward_train(cfg.kernels.batch_norm, out,
                                         _matrix(buf.acts, lay[S_HAT], n, m),
                                         _vector(buf.acts, lay[MU], m),
                                         _vector(buf.acts, lay[INV_STD], m),
                                         run_mean, run_var, s, gamma, beta,
                                         cfg.bn_alpha, cfg.bn_eps, not last)
            else:
                _batchnorm_forward_infer(cfg.kernels.batch_norm, out, run_mean, run_var, s,
                                         gamma, beta, cfg.bn_eps, not last)
        if train and cfg.dropout > 0 and not last:
            _dropout_forward(cfg.kernels.dropout, out, cfg.dropout,
                             derive_key(cfg.seed, DROPOUT_STREAM + l, step))
        h_in = out
    return h_in


@njit(cache=True, inline="always")
def loss_gradient(buf, scores, y, cfg):
    """Mean data loss of scores (float[n, K]) against y; its gradient goes to grad_a.

    XENT smooths its targets by cfg.label_smoothing (so the loss is the smoothed one);
    SVM ignores it.
    """
    n, K = scores.shape
    G = _matrix(buf.grad_a, 0, n, K)
    losses = buf.losses[:n]
    if cfg.loss == SVM:
        return _svm_hinge(cfg.kernels.svm, G, losses, scores, y)
    return softmax_xent(G, losses, scores, y, cfg.label_smoothing)


@njit(cache=True, inline="always")
def backward(buf, X, cfg, lam, eta=-1.0):
    """Gradients of every parameter into grads, from the loss gradient in grad_a.

    lam: the L2 coefficient whose 2 lam W joins dW here (train_step passes 0 and lets the
    update add it, saving a pass over the weights). Runs the layers in exactly the reverse
    order of `forward`, which must have run on the same X in training mode.
    eta >= 0: also take the SGD step on each weight matrix as soon as the pass is done with
    it, while its gradient is still in cache (the vectors are left to the caller).
    """
    n = X.shape[0]
    n_layers = buf.layout.shape[0]
    scale = 1.0 / (1.0 - cfg.dropout)
    g_slab, spare = buf.grad_a, buf.grad_b
    for l in range(n_layers - 1, -1, -1):
        lay = buf.layout[l]
        d, m = buf.dims[l], buf.dims[l + 1]
        G = _matrix(g_slab, 0, n, m)
        if lay[GAMMA] >= 0:
            _batchnorm_backward(cfg.kernels.batch_norm, G, _vector(buf.grads, lay[GAMMA], m),
                                _vector(buf.grads, lay[BETA], m),
                                _matrix(buf.acts, lay[S_HAT], n, m),
                                _vector(buf.acts, lay[INV_STD], m),
                                _vector(buf.params, lay[GAMMA], m))
        h_in = X if l == 0 else _matrix(buf.acts, buf.layout[l - 1, H], n, d)
        w = _matrix(buf.params, lay[W], m, d)
        db = _vector(buf.grads, lay[B], m) if lay[B] >= 0 else buf.grads[0:0]
        dense_backward(_matrix(buf.grads, lay[W], m, d), db, G, h_in, w, lam)
        if l > 0:
            dense_backward_input(_matrix(spare, 0, n, d), G, h_in, w, scale)
            g_slab, spare = spare, g_slab
        if eta >= 0:
            lo, hi = lay[W], lay[W] + m * d
            sgd_momentum(buf.params[lo:hi], buf.velocity[lo:hi], buf.grads[lo:hi], eta,
                         cfg.momentum, cfg.nesterov, cfg.lam, hi - lo)


@njit(cache=True, inline="always")
def train_step(buf, X, y, cfg, eta, step):
    """Forward, backward and SGD update on one batch; returns its mean data loss.

    A non-finite loss returns at once, before any parameter changes.
    """
    scores = forward(buf, X, buf.params[:0], cfg, True, step)
    loss = loss_gradient(buf, scores, y, cfg)
    if not np.isfinite(loss):
        return loss
    backward(buf, X, cfg, 0.0, eta)
    nw = buf.n_weights
    # no decay (n_decay 0), typed as the call above so that both share one compiled body
    sgd_momentum(buf.params[nw:], buf.velocity[nw:], buf.grads[nw:], eta, cfg.momentum,
                 cfg.nesterov, cfg.lam, np.int64(0))
    return loss


@njit(cache=True)
def run_steps(losses_out, correct_out, buf, data, order, etas, cfg, augment, first_row,
              batch_size, step0):
    """len(etas) steps on consecutive batches of `order`, from row `first_row`.

    losses_out: float[>= k], correct_out: int64[>= k], order: int64[N], etas: float64[k].
    Step k gathers the images order[first_row + k B : first_row + (k+1) B] and uses
    eta = etas[k]; its mean loss goes to losses_out[k] and the number of the batch's images
    that its scores (before the update) classify right to correct_out[k]. Returns the
    number of steps done: fewer than len(etas) when a loss was not finite (that step is
    not applied).
    """
    X = buf.inputs[:batch_size]
    y = buf.targets[:batch_size]
    last = buf.layout.shape[0] - 1
    scores = _matrix(buf.acts, buf.layout[last, H], batch_size, buf.dims[last + 1])
    for k in range(etas.shape[0]):
        step = step0 + k
        rows = order[first_row + k * batch_size:first_row + (k + 1) * batch_size]
        gather_inputs(X, buf.raw, data, rows, augment,
                      derive_key(cfg.seed, AUGMENT_STREAM, step), False)
        for i in range(batch_size):
            y[i] = data.labels[rows[i]]
        losses_out[k] = train_step(buf, X, y, cfg, etas[k], step)
        if not np.isfinite(losses_out[k]):
            return k
        correct_out[k] = _count_correct(scores, y)  # the backward pass leaves the scores
    return etas.shape[0]


@njit(cache=True)
def evaluate(buf, data, index, cfg, augment):
    """Inference over the images data.images[index] in chunks of n_max rows.

    Returns (sum of per-image data losses, number correct). The split is never
    materialised as floats: each chunk is gathered into the inputs buffer.
    """
    n_max = buf.inputs.shape[0]
    total_loss = 0.0
    correct = 0
    for start in range(0, index.shape[0], n_max):
        rows = index[start:start + n_max]
        scores = _infer_chunk(buf, data, rows, buf.params[:0], cfg, augment)
        y = buf.targets[:rows.shape[0]]
        for i in range(rows.shape[0]):
            y[i] = data.labels[rows[i]]
        total_loss += loss_gradient(buf, scores, y, cfg) * rows.shape[0]
        correct += _count_correct(scores, y)
    return total_loss, correct


@njit(cache=True)
def predict_scores(out, buf, data, index, wt, cfg, augment):
    """out (float[len(index), K]) = scores of the images data.images[index], in inference mode,
    the products summed in order (wt: `transposed_weights`), so that a row's scores never
    depend on the rows predicted with it."""
    n_max = buf.inputs.shape[0]
    for start in range(0, index.shape[0], n_max):
        rows = index[start:start + n_max]
        copy_matrix(out[start:start + rows.shape[0]],
                    _infer_chunk(buf, data, rows, wt, cfg, augment))


@njit(cache=True)
def transposed_weights(wt, buf):
    """wt (float[P]) = every weight matrix W (m x d) of params as W^T (d x m), at W's offset."""
    for l in range(buf.layout.shape[0]):
        d, m, off = buf.dims[l], buf.dims[l + 1], buf.layout[l, W]
        w, w_t = _matrix(buf.params, off, m, d), _matrix(wt, off, d, m)
        for i in range(m):
            for j in range(d):
                w_t[j, i] = w[i, j]


@njit(cache=True)
def _infer_chunk(buf, data, rows, wt, cfg, augment):
    """Gather the images data.images[rows] (at most n_max) and return their scores."""
    X = buf.inputs[:rows.shape[0]]
    gather_inputs(X, buf.raw, data, rows, augment, np.uint64(0), wt.size > 0)
    return forward(buf, X, wt, cfg, False, 0)


@njit(cache=True, inline="always")
def gather_inputs(X, raw, data, rows, augment, key, in_order):
    """X (float[n, D_in]) = the inputs of data's rows `rows`, augmented with `key`'s draws:
    gathered straight into X, or into raw and projected (in_order: each entry summed in
    order, so that a row's inputs never depend on the rows beside it)."""
    if data.projection.shape[1] == 0:
        gather(X, data.images, rows, data.mean, data.inv_std, data.image_shape, augment, key)
        return
    R = raw[:rows.shape[0]]
    gather(R, data.images, rows, data.mean, data.inv_std, data.image_shape, augment, key)
    if in_order:
        product_in_order(X, R, data.projection)
    else:
        gemm(X, R, data.projection, False, False)


@njit(cache=True)
def _count_correct(scores, y):
    n, K = scores.shape
    correct = 0
    for i in range(n):
        best = 0
        for k in range(1, K):
            if scores[i, k] > scores[i, best]:
                best = k
        correct += best == y[i]
    return correct
