"""What a network is (`NetworkSpec`), with the limits of every option in one place.

Kept free of Numba so that the command line can build its options without importing it.
"""
from dataclasses import asdict, dataclass

from .errors import UserError
from .initializers import INITS

LOSSES = ("xent", "svm")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class NetworkSpec:
    """What a network is: sizes, layers, loss, regularisation and dtype.

    hidden: widths of the hidden layers, () for the single-layer classifier. Batch norm,
    when on, follows the affine map of every hidden layer (before its ReLU). lam is the L2
    coefficient on the weight matrices: cost = loss + lam * sum ||W_l||^2.
    """

    input_size: int
    n_classes: int
    hidden: tuple = (50,)
    batch_norm: bool = False
    dropout: float = 0.0
    init: str = "he"
    sigma: float = 1e-4
    loss: str = "xent"
    lam: float = 0.0
    dtype: str = "float32"
    bn_alpha: float = 0.9
    bn_eps: float = 1e-5

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        check(self.input_size >= 1, f"input size must be >= 1, got {self.input_size}")
        check(self.n_classes >= 2, f"the number of classes must be >= 2, got {self.n_classes}")
        check(all(h >= 1 for h in self.hidden),
               f"--hidden: every width must be a positive integer, got {list(self.hidden)}")
        check(0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}")
        check(self.init in INITS, f"--init must be one of {sorted(INITS)}, got {self.init!r}")
        check(self.sigma > 0, f"--sigma must be > 0, got {self.sigma}")
        check(self.loss in LOSSES, f"--loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        check(self.lam >= 0, f"--lam must be >= 0, got {self.lam}")
        check(self.dtype in DTYPES, f"--dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        check(0.0 <= self.bn_alpha < 1.0, f"bn_alpha must be in [0, 1), got {self.bn_alpha}")
        check(self.bn_eps > 0, f"bn_eps must be > 0, got {self.bn_eps}")

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
