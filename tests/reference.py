"""A plain-NumPy MLP in float64, written from the engine's documented conventions only.

It shares no code with the engine, so a test that trains both from the same parameters
checks the compiled step against an independent implementation. Conventions (those of
`engine/model/network.py` and `engine/kernels/*.py`):

- layer l maps H_{l-1} to S_l = H_{l-1} W_l^T (+ b_l); hidden layers apply ReLU;
- with batch norm, every hidden layer is H_l = max(gamma_l * S_hat_l + beta_l, 0), with no
  bias, S_hat normalised by the batch mean and biased variance (training) or the running
  averages (inference), eps = spec.bn_eps, running = alpha * running + (1 - alpha) * batch;
- losses are means over the batch: softmax cross-entropy (against targets smoothed by
  spec.label_smoothing = s: s / K on every class plus 1 - s on the label), or the
  multi-class hinge with margin 1; the cost adds lam * sum ||W_l||^2 (weight matrices only);
- SGD: v = mu v - eta g, then theta += v, or theta += mu v - eta g with Nesterov.

No dropout: its masks come from the engine's counter-based generator.
"""
import numpy as np


def softmax(S):
    E = np.exp(S - S.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def xent(S, y, smoothing=0.0):
    """Mean softmax cross-entropy of scores S (float[n, K]) and its gradient at S.

    smoothing: label smoothing s, the target of row i being Q[i] = s / K + (1 - s) onehot(y_i);
    the loss is -mean_i sum_k Q[i, k] log P[i, k] and the gradient (P - Q) / n.
    """
    n, K = S.shape
    P = softmax(S)
    Q = np.full((n, K), smoothing / K)
    Q[np.arange(n), y] += 1 - smoothing
    shifted = S - S.max(axis=1, keepdims=True)
    log_P = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(np.sum(Q * log_P, axis=1)), (P - Q) / n


def svm(S, y, smoothing=0.0):
    """Mean multi-class hinge loss (margin 1, Weston-Watkins) and its gradient at S.

    smoothing (label smoothing) is ignored: it has no meaning for the hinge."""
    n = len(y)
    margins = np.maximum(0, S - S[np.arange(n), y][:, None] + 1)
    margins[np.arange(n), y] = 0
    dS = (margins > 0).astype(float)
    dS[np.arange(n), y] = -dS.sum(axis=1)
    return margins.sum(axis=1).mean(), dS / n


LOSSES = {"xent": xent, "svm": svm}


class ReferenceMLP:
    """The network of `spec`, started from copies of the given tensors (by engine name)."""

    def __init__(self, spec, parameters, running_stats, momentum=0.0, nesterov=False):
        self.spec = spec
        self.params = {k: np.array(v, dtype=np.float64) for k, v in parameters.items()}
        self.running = {k: np.array(v, dtype=np.float64) for k, v in running_stats.items()}
        self.velocity = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.momentum, self.nesterov = momentum, nesterov

    @classmethod
    def of(cls, net):
        """A reference with the network's current parameters, running stats and optimiser."""
        return cls(net.spec, net.parameters, net.running_stats, net.momentum, net.nesterov)

    def _loss(self, scores, y):
        """(mean data loss, its gradient at the scores) under the spec's loss."""
        return LOSSES[self.spec.loss](scores, y, self.spec.label_smoothing)

    def _bn(self, l):
        return self.spec.batch_norm and l < self.spec.n_layers

    def forward(self, X, train):
        """Scores of X, and per layer what backward needs; train updates running stats."""
        H, tape = np.asarray(X, dtype=np.float64), []
        for l in range(1, self.spec.n_layers + 1):
            p = self.params
            S = H @ p[f"W{l}"].T
            record = {"H_in": H}
            if self._bn(l):
                mean, var = self._statistics(l, S, train)
                S_hat = (S - mean) / np.sqrt(var + self.spec.bn_eps)
                record.update(S=S, S_hat=S_hat, var=var)
                Z = p[f"gamma{l}"] * S_hat + p[f"beta{l}"]
            else:
                Z = S + p[f"b{l}"]
            tape.append(record)
            if l == self.spec.n_layers:
                return Z, tape
            H = np.maximum(Z, 0)
            record["H_out"] = H

    def _statistics(self, l, S, train):
        mean_name, var_name = f"mean{l}", f"var{l}"
        if not train:
            return self.running[mean_name], self.running[var_name]
        mean, var = S.mean(axis=0), S.var(axis=0)
        alpha = self.spec.bn_alpha
        self.running[mean_name] = alpha * self.running[mean_name] + (1 - alpha) * mean
        self.running[var_name] = alpha * self.running[var_name] + (1 - alpha) * var
        return mean, var

    def loss_and_gradients(self, X, y):
        """(mean data loss, gradients of the cost by tensor name), in training mode."""
        scores, tape = self.forward(X, train=True)
        loss, G = self._loss(scores, y)
        grads = {}
        for l in range(self.spec.n_layers, 0, -1):
            record, W = tape[l - 1], self.params[f"W{l}"]
            if l < self.spec.n_layers:
                G = G * (record["H_out"] > 0)
            if self._bn(l):
                grads[f"gamma{l}"] = np.sum(G * record["S_hat"], axis=0)
                grads[f"beta{l}"] = G.sum(axis=0)
                G = self._bn_backward(G * self.params[f"gamma{l}"], record)
            else:
                grads[f"b{l}"] = G.sum(axis=0)
            grads[f"W{l}"] = G.T @ record["H_in"] + 2 * self.spec.lam * W
            G = G @ W
        return loss, grads

    def _bn_backward(self, dS_hat, record):
        """Gradient at S from the gradient at S_hat, through the batch mean and variance."""
        S, var = record["S"], record["var"]
        n, centred = S.shape[0], S - S.mean(axis=0)
        inv_std = 1 / np.sqrt(var + self.spec.bn_eps)
        d_var = np.sum(dS_hat * centred, axis=0) * -0.5 * inv_std ** 3
        d_mean = -np.sum(dS_hat, axis=0) * inv_std - 2 * d_var * centred.mean(axis=0)
        return dS_hat * inv_std + 2 * d_var * centred / n + d_mean / n

    def train_step(self, X, y, eta):
        """One SGD step on (X, y); returns the mean data loss (no step when it is not finite)."""
        loss, grads = self.loss_and_gradients(X, y)
        if not np.isfinite(loss):
            return loss
        mu = self.momentum
        for name, g in grads.items():
            v = self.velocity[name] = mu * self.velocity[name] - eta * g
            self.params[name] += mu * v - eta * g if self.nesterov else v
        return loss

    def evaluate(self, X, y):
        """{'cost', 'loss', 'accuracy'} of (X, y) in inference mode."""
        scores, _ = self.forward(X, train=False)
        loss, _ = self._loss(scores, y)
        penalty = self.spec.lam * sum(np.sum(W ** 2) for name, W in self.params.items()
                                      if name.startswith("W"))
        accuracy = np.mean(np.argmax(scores, axis=1) == y)
        return {"cost": loss + penalty, "loss": loss, "accuracy": accuracy}


def centred_difference(f, x, h=1e-6):
    """d f / d x entry by entry (f() a scalar that reads x; x float64, changed and restored)."""
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        keep = x[i]
        x[i] = keep + h
        up = f()
        x[i] = keep - h
        down = f()
        x[i] = keep
        grad[i] = (up - down) / (2 * h)
    return grad
