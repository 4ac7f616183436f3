"""What a network is (`NetworkSpec`); its settings' defaults and limits are in `settings`.

Kept free of Numba so that the command line can build its options without importing it.
"""
from dataclasses import asdict, dataclass

from ..errors import UserError, require
from ..settings import DTYPES, LOSSES, MODEL

__all__ = ["NetworkSpec", "LOSSES", "DTYPES", "check"]
_D = {name: s.default for name, s in MODEL.items()}


@dataclass(frozen=True)
class NetworkSpec:
    """What a network is: sizes, layers, loss, regularisation and dtype.

    hidden: widths of the hidden layers, () for the single-layer classifier. Batch norm,
    when on, follows the affine map of every hidden layer (before its ReLU). lam is the L2
    coefficient on the weight matrices: cost = loss + lam * sum ||W_l||^2. Defaults and
    limits are those of `settings.MODEL`.
    """

    input_size: int
    n_classes: int
    hidden: tuple = _D["hidden"]
    batch_norm: bool = _D["batch_norm"]
    dropout: float = _D["dropout"]
    init: str = _D["init"]
    sigma: float = _D["sigma"]
    loss: str = _D["loss"]
    lam: float = _D["lam"]
    label_smoothing: float = _D["label_smoothing"]
    dtype: str = _D["dtype"]
    bn_alpha: float = 0.9
    bn_eps: float = 1e-5

    def __post_init__(self):
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        for name, setting in MODEL.items():
            object.__setattr__(self, name, setting.check(getattr(self, name)))
        require(self.label_smoothing == 0 or self.loss == "xent", "label_smoothing",
                f"must be 0 with {{loss}} {self.loss!r} (it smooths the targets of 'xent'), "
                f"got {self.label_smoothing}")
        check(isinstance(self.input_size, int) and self.input_size >= 1,
              f"input size must be >= 1, got {self.input_size}")
        check(isinstance(self.n_classes, int) and self.n_classes >= 2,
              f"the number of classes must be >= 2, got {self.n_classes}")
        check(0.0 <= self.bn_alpha < 1.0, f"bn_alpha must be in [0, 1), got {self.bn_alpha}")
        check(self.bn_eps > 0, f"bn_eps must be > 0, got {self.bn_eps}")

    @property
    def n_parameters(self):
        """Parameters of the network (weights, biases or gamma and beta)."""
        dims = self.dims
        return sum(dims[l] * dims[l + 1] + 2 * dims[l + 1] for l in range(self.n_layers))

    @property
    def dims(self):
        """(d_0, d_1, ..., d_L): input size, hidden widths, classes."""
        return (self.input_size, *self.hidden, self.n_classes)

    @property
    def n_layers(self):
        return len(self.hidden) + 1

    def to_dict(self):
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def check(ok, message):
    """Raise UserError(message) unless ok."""
    if not ok:
        raise UserError(message)
