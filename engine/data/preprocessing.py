"""How raw images become a network's inputs: a fitted value of one kind of the registry.

Each kind is fitted on the training part only (images uint8[N, D] or float[N, D], index
int64[n]), is saved in and loaded from a model file through `arrays` / `from_arrays`, and
hands the gather kernel the form it needs: `gather_form(images) -> (stored, offset,
scale)`, from which the kernel computes X = (stored[row] - offset) * scale as it gathers a
batch (augmenting in the same pass). Numba specialises the kernel on stored's dtype, so
each kind may store its images as it likes.

    standardise  per-feature (x - mean) / std; stored = the images themselves, no copy
    zca          ZCA whitening, applied once to the whole image set and stored as int16
    pca          the k leading principal components of the standardised or whitened
                 images: the gather kernel centres each (augmented) row and the kernels
                 project it, X @ projection (D x k); the images are stored as they are

`fit_preprocessing` maps the `zca` and `pca` settings to their kind. The whitening's products go
through the engine's `gemm` (its fixed split by shape: the same bits on any thread count)
and the eigen-decomposition runs with the BLAS pools at one thread, for the same reason;
both are imported when first used, so loading a standardised model compiles nothing.
"""
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, SettingError
from .cache import cached_arrays

CHUNK_ROWS = 64      # rows at a time of the mean and std: a chunk stays in cache
BLAS_ROWS = 1024     # rows at a time of a covariance or whitening product (12 MB of float32)
INT16_MAX = 32767    # whitened values are stored as int16 in [-INT16_MAX, INT16_MAX]
FLOAT_REACH = 2.0    # float images: values reach this many times the training rows' extent
MAX_ZCA_GAIN = 1e3   # most a whitening may amplify a direction against the mean direction
SQUARES_EXPONENT = 500  # float64 values within 2**500 of 0 have finite squares and sums


def _work_dtype(images):
    """float32 for uint8 images (exact), float64 for any other (a float32 square overflows
    beyond 1.8e19)."""
    return np.float32 if images.dtype == np.uint8 else np.float64


def _unit(images, index):
    """A power of two that brings float64 rows within 2**SQUARES_EXPONENT of 0, so that
    their squares and sums stay finite (exact: only the exponent changes); 1 for others."""
    if images.dtype != np.float64:
        return 1.0
    top = max(float(np.abs(part).max(initial=0.0)) for part in _chunks(images, index, BLAS_ROWS))
    return 2.0 ** max(0, int(np.frexp(top)[1]) - SQUARES_EXPONENT)


def check_finite(images, index):
    """DataError unless the rows images[index] (uint8 or float (N, D)) are all finite."""
    if images.dtype == np.uint8:
        return
    for part in _chunks(images, index, BLAS_ROWS):
        if not np.isfinite(part).all():
            raise DataError("the training images hold NaN or infinite values")


def _chunks(images, index, rows):
    """The rows images[index] a chunk of `rows` rows at a time, for sums and maxima, which
    do not depend on the rows' order: so when index holds every row (it holds distinct
    rows), the chunks are slices in the array's own order, read without a gather."""
    every_row = index.size == images.shape[0]
    for start in range(0, index.size, rows):
        yield (images[start:start + rows] if every_row
               else images[index[start:start + rows]])


def feature_stats(images, index, chunk_rows=CHUNK_ROWS):
    """Per-feature mean and std (ddof=0) of images[index], a std of 0 becoming 1 (so that
    standardising leaves a constant feature at 0 instead of dividing by 0).

    One pass: d = x - x0 (x0 the first selected row) and d^2 in `_work_dtype` (float32
    for uint8, where both are exact; float64 rows scaled by `_unit`), a cache-sized chunk of rows at a time, each
    chunk's column sums taken in float64. Shifting by a row of the data keeps
    E[d^2] - E[d]^2 from cancelling the way E[x^2] - E[x]^2 does far from 0. About ten
    times faster than merging float64 chunks (0.11 s against 1.2 s for CIFAR-10's 45,000
    training images).

    Parameters
    ----------
    images : uint8 or float (N, D)
    index : int64 (n,), n >= 1 distinct rows

    Returns
    -------
    mean, std : float64 (D,)
    """
    work, unit = _work_dtype(images), _unit(images, index)
    shift = images[index[0]].astype(work) / unit
    total, squares = np.zeros(images.shape[1]), np.zeros(images.shape[1])
    buf = np.empty((min(chunk_rows, index.size), images.shape[1]), work)
    for part in _chunks(images, index, chunk_rows):
        d = buf[:part.shape[0]]
        if unit == 1:
            np.subtract(part, shift, out=d)
        else:  # scaled before the difference, which could overflow
            np.multiply(part, 1 / unit, out=d)
            d -= shift
        total += d.sum(axis=0, dtype=np.float64)
        d *= d
        squares += d.sum(axis=0, dtype=np.float64)
    mean = total / index.size
    std = np.sqrt(np.maximum(squares / index.size - mean * mean, 0.0))
    std[std == 0] = 1.0 / unit
    return (shift + mean) * unit, std * unit


def _vector(name, value, size, dtype=np.float64):
    """`value` as a finite dtype[size]; ValueError naming it otherwise."""
    value = np.asarray(value, dtype=dtype)
    if value.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {value.shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return value


def _matrix(name, value, fits, expected):
    """`value` as a finite float32 C-ordered matrix; ValueError naming it unless its shape
    `fits` (described by `expected`)."""
    matrix = np.ascontiguousarray(value, dtype=np.float32)
    if matrix.ndim != 2 or not fits(matrix.shape):
        raise ValueError(f"{name} must have shape {expected}, got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return matrix


def _eps(value, zero_allowed):
    """eps as a float; ValueError unless it is finite and > 0 (or >= 0 when zero_allowed)."""
    eps = float(np.asarray(value))
    if not (np.isfinite(eps) and (eps >= 0 if zero_allowed else eps > 0)):
        raise ValueError(f"eps must be a number {'>=' if zero_allowed else '>'} 0, got {eps}")
    return eps


def _positive(name, value):
    if (value <= 0).any():
        raise ValueError(f"{name} holds values <= 0")
    return value


class Preprocessing:
    """A fitted preprocessing of D features. Subclasses: a registered kind (`kind`), a
    dataclass of the arrays it saves (`shapes` gives their shapes for D features)."""

    kind = None

    @classmethod
    def shapes(cls, n_inputs, n_features):
        """{name: shape} of the arrays that `arrays` returns for images of n_features
        features and a network of n_inputs inputs (one count, but for a projection)."""
        raise NotImplementedError

    @classmethod
    def fit(cls, images, index, cache_folder=None, **options):
        """The preprocessing fitted on images[index] (uint8 or float [N, D], int64[n])."""
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, arrays):
        """The preprocessing of the arrays `arrays()` gave; ValueError naming a bad one."""
        return cls(**arrays)

    def arrays(self):
        """{name: array} that `from_arrays` takes back (for a model file)."""
        return {name: getattr(self, name) for name in self.shapes(self.n_inputs,
                                                                   self.n_features)}

    @property
    def n_features(self):
        """Features of the raw images."""
        return self.mean.size

    @property
    def n_inputs(self):
        """Inputs of the network's first layer: n_features, unless projected."""
        return self.n_features

    @property
    def projection(self):
        """float32 (D, n_inputs) that the kernels apply to each gathered row, or None."""
        return None

    def templates(self, W1):
        """The first layer's weights W1 (m, n_inputs) as the images they respond to, in the
        space the gather kernel writes (standardised or whitened pixels): (m, D)."""
        return W1

    def describe(self):
        """The kind and its options, for a run's summary.json."""
        return {"kind": self.kind}

    def gather_form(self, images):
        """(stored, offset, scale) such that the gather kernel's
        X = (stored[row] - offset) * scale is row `row` of the preprocessed images.

        images: uint8 or float (N, D); stored: (N, D), offset, scale: float64 (D,).
        """
        raise NotImplementedError

    def input_reach(self):
        """The largest |x| each preprocessed feature takes for any uint8 image: float64 (D,)."""
        raise NotImplementedError

    def transform(self, images):
        """The preprocessed images, float64 (N, n_inputs): what the first layer sees."""
        stored, offset, scale = self.gather_form(np.asarray(images))
        rows = (stored - offset) * scale
        return rows if self.projection is None else rows @ self.projection.astype(np.float64)


@dataclass(frozen=True, eq=False)
class Standardise(Preprocessing):
    """x = (pixel - mean) / std per feature. mean, std: float64 (D,), std > 0."""

    kind = "standardise"
    mean: np.ndarray = field(repr=False)
    std: np.ndarray = field(repr=False)

    def __post_init__(self):
        mean = _vector("mean", self.mean, np.size(self.mean))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", _positive("std", _vector("std", self.std, mean.size)))

    @classmethod
    def shapes(cls, n_inputs, n_features):
        return {"mean": (n_inputs,), "std": (n_inputs,)}

    @classmethod
    def identity(cls, n_features):
        """The standardisation that changes nothing: mean 0, std 1."""
        return cls(np.zeros(n_features), np.ones(n_features))

    @classmethod
    def fit(cls, images, index, cache_folder=None):
        """Mean and std of images[index] (`feature_stats`: fast, so never cached)."""
        return cls(*feature_stats(images, index))

    def input_reach(self):
        return np.maximum(np.abs(self.mean), np.abs(255 - self.mean)) / self.std

    def gather_form(self, images):
        """The images as they are (no copy: they may be a memory map), mean, 1 / std."""
        return images, self.mean, 1.0 / self.std


@dataclass(frozen=True, eq=False)
class Zca(Preprocessing):
    """ZCA whitening: x_w = whiten (x - mean), whiten = U diag(1 / sqrt(lambda + eps *
    mean(lambda))) U^T from the eigen-decomposition (float64 eigh) of the training part's
    covariance, eps relative to the mean eigenvalue.

    Applying a D x D matrix to each batch would cost more than the whole training step, so
    `gather_form` whitens an image set once, BLAS_ROWS rows at a time (float32 matmul), and
    stores it as int16: q = round(x_w / step), 2 bytes a value (369 MB for CIFAR-10's 60,000
    images, against 737 MB as float32); the kernel multiplies by step as it gathers.

    step (float64 (D,)) is fixed at the fit: feature j's largest possible |x_w_j| over
    INT16_MAX, where that bound is sum_k |whiten[j, k]| * reach[k] and reach[k] the farthest
    feature k can lie from its mean (255 - mean or mean for uint8 images; for float images,
    FLOAT_REACH times the training rows' farthest, beyond which values saturate). So no
    value of any image overflows, and a row's stored values never depend on which other
    rows are whitened with it (as they would with a step from each set's own maximum).

    Why the rounding is harmless: it adds at most step / 2 to a value, with an rms of
    step / sqrt(12). The pixels themselves are already rounded to whole numbers, an error
    of rms 1 / sqrt(12) per pixel, which whitening carries into x_w_j with an rms of
    ||whiten[j]||_2 / sqrt(12); and step <= 255 ||whiten[j]||_1 / INT16_MAX <= 255
    sqrt(D) ||whiten[j]||_2 / INT16_MAX. For D = 3072 the int16 rounding is thus at most
    0.43 times the 8-bit rounding that every pixel already carries; measured on CIFAR-10
    (eps 0.1), whose whitening filters are local (||w||_1 / ||w||_2 about 3.7, not 55),
    it is 1.6 % of it: an rms of 4.5e-4 of each whitened feature's standard deviation,
    at most 9.2e-4 of it, far below anything a network trained with SGD can resolve.

    mean: float64 (D,); whiten: float32 (D, D); step: float64 (D,) > 0; eps: float > 0.
    """

    kind = "zca"
    mean: np.ndarray = field(repr=False)
    whiten: np.ndarray = field(repr=False)
    step: np.ndarray = field(repr=False)
    eps: float = 0.1

    def __post_init__(self):
        mean = _vector("mean", self.mean, np.size(self.mean))
        D = mean.size
        whiten = _matrix("whiten", self.whiten, lambda shape: shape == (D, D), f"({D}, {D})")
        eps = _eps(self.eps, zero_allowed=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "whiten", whiten)
        object.__setattr__(self, "step", _positive("step", _vector("step", self.step, D)))
        object.__setattr__(self, "eps", eps)

    @classmethod
    def shapes(cls, n_inputs, n_features):
        return {"mean": (n_inputs,), "whiten": (n_inputs, n_inputs), "step": (n_inputs,),
                "eps": ()}

    def arrays(self):
        return {**super().arrays(), "eps": np.array(self.eps)}

    def describe(self):
        return {"kind": self.kind, "eps": self.eps}

    @classmethod
    def fit(cls, images, index, cache_folder=None, eps=0.1):
        """Fitted on images[index]; with a cache folder, read from (or written to) the
        file there that is named by eps and a digest of the rows and their array."""
        path = None if cache_folder is None else Path(cache_folder) / _stats_name(
            cls.kind, eps, images, index)
        return cls.from_arrays(cached_arrays(
            path, lambda: cls.fitted(images, index, eps).arrays()))

    @classmethod
    def fitted(cls, images, index, eps):
        """The whitening of images[index], computed (`fit` caches it)."""
        mean = feature_stats(images, index)[0]
        unit = _unit(images, index)  # the covariance of the rows / unit stays finite
        eigenvalues, U = _eigen(_covariance(images, index, mean, unit))
        gains = _whitening_gains(eigenvalues, eps)
        whiten = _product(U * (gains / unit), U, trans_b=True)
        reach = _reach(images, index, mean)
        step = _product(np.abs(whiten), reach[:, None])[:, 0] / INT16_MAX
        return cls(mean, whiten, step, eps)

    def input_reach(self):
        return INT16_MAX * self.step  # the stored values are clipped to +-INT16_MAX

    def whitened(self, rows):
        """whiten (rows - mean) of rows uint8 or float (n, D): float32 (n, D), unrounded."""
        centred = rows.astype(np.float32)
        centred -= self.mean.astype(np.float32)
        return _product(centred, self.whiten, trans_b=True)

    def gather_form(self, images):
        """The whitened images as int16 (N, D), a BLAS_ROWS chunk at a time; 0; step."""
        stored = np.empty(images.shape, np.int16)
        inverse_step = (1.0 / self.step).astype(np.float32)
        for start in range(0, images.shape[0], BLAS_ROWS):
            values = self.whitened(images[start:start + BLAS_ROWS])
            with np.errstate(over="ignore"):  # a damaged step overflows; the clip bounds it
                values *= inverse_step
            np.rint(values, out=values)
            np.clip(values, -INT16_MAX, INT16_MAX, out=values)
            stored[start:start + BLAS_ROWS] = np.nan_to_num(values, copy=False)
        return stored, np.zeros(self.n_features), self.step


@dataclass(frozen=True, eq=False)
class Pca(Preprocessing):
    """The k leading principal components of the training part: x = ((pixel - mean) *
    scale) @ projection, projection = components diag(gains), where components holds
    the k leading eigenvectors (by eigenvalue, largest first) of the covariance of the
    standardised pixels (eps 0: scale 1 / std, gains 1) or of the raw pixels (eps > 0:
    scale 1, gains the ZCA whitening's 1 / sqrt(lambda + eps * mean(lambda))). So the
    inputs are the coordinates of the standardised or ZCA-whitened image in its k leading
    principal directions, the basis of Lin, Memisevic and Konda's PCA-whitened MLPs.

    The images are stored as they are (uint8: no whitening pass, 2 bytes a value fewer
    than zca's int16); the gather kernel centres and augments each row, so augmentation
    acts on pixels (a pixel shifted in is the mean), and the kernels project the batch:
    2 D k flops an image, against the 2 D m of a first layer of m units on the full
    image. With k = 256 and 1024 units the step of the 3072-1024-512-10 net costs about
    a third of its FLOPs on whitened pixels.

    mean, scale: float64 (D,); components: float32 (D, k); gains: float64 (k,) > 0;
    eps: float >= 0.
    """

    kind = "pca"
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)
    gains: np.ndarray = field(repr=False)
    eps: float = 0.0

    def __post_init__(self):
        mean = _vector("mean", self.mean, np.size(self.mean))
        D = mean.size
        components = _matrix("components", self.components,
                             lambda shape: shape[0] == D and 1 <= shape[1] <= D,
                             f"({D}, k) with 1 <= k <= {D}")
        k = components.shape[1]
        eps = _eps(self.eps, zero_allowed=True)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", _positive("scale", _vector("scale", self.scale, D)))
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "gains", _positive("gains", _vector("gains", self.gains, k)))
        object.__setattr__(self, "eps", eps)
        projection = components * self.gains.astype(np.float32)
        object.__setattr__(self, "_projection", projection)

    @classmethod
    def shapes(cls, n_inputs, n_features):
        return {"mean": (n_features,), "scale": (n_features,),
                "components": (n_features, n_inputs), "gains": (n_inputs,), "eps": ()}

    def arrays(self):
        return {**super().arrays(), "eps": np.array(self.eps)}

    def describe(self):
        return {"kind": self.kind, "components": self.n_inputs, "eps": self.eps}

    @property
    def n_inputs(self):
        return self.components.shape[1]

    @property
    def projection(self):
        return self._projection

    @classmethod
    def fit(cls, images, index, cache_folder=None, eps=0.0, k=256):
        """Fitted on images[index]; cached as `Zca.fit` is, named by eps and k too."""
        path = None if cache_folder is None else Path(cache_folder) / _stats_name(
            f"{cls.kind}{k}", eps, images, index)
        return cls.from_arrays(cached_arrays(
            path, lambda: cls.fitted(images, index, eps, k).arrays()))

    @classmethod
    def fitted(cls, images, index, eps, k):
        """The k components of images[index], computed (`fit` caches them)."""
        mean, std = feature_stats(images, index)
        unit = _unit(images, index)
        covariance = _covariance(images, index, mean, unit)
        if eps > 0:
            scale = np.ones_like(mean)
        else:  # the covariance of the standardised pixels
            scale = 1.0 / std
            covariance *= np.outer(scale * unit, scale * unit)
        eigenvalues, U = _eigen(covariance)  # ascending: the last k lead
        gains = (_whitening_gains(eigenvalues, eps)[::-1][:k] / unit if eps > 0
                 else np.ones(k))
        return cls(mean, scale, U[:, ::-1][:, :k], gains, eps)

    def input_reach(self):
        reach = np.maximum(np.abs(self.mean), np.abs(255 - self.mean)) * self.scale
        return np.abs(self.projection.astype(np.float64)).T @ reach

    def gather_form(self, images):
        """The images as they are, mean, scale: the kernels project the gathered rows."""
        return images, self.mean, self.scale

    def templates(self, W1):
        return (W1 * self.gains.astype(W1.dtype)) @ self.components.T


def _eigen(covariance):
    """(eigenvalues >= 0 ascending, eigenvectors as columns) of a float64 covariance, with
    the BLAS pools at one thread (the same bits on any thread count)."""
    from ..runtime.threads import blas_single

    with blas_single():
        eigenvalues, U = np.linalg.eigh(covariance)
    return np.maximum(eigenvalues, 0.0), U  # rounding leaves some at -1e-13


def _whitening_gains(eigenvalues, eps):
    """1 / sqrt(lambda + eps * mean(lambda)) of each eigenvalue: float64, checked by
    `_check_gain` (rows without any variance count the mean eigenvalue as 1)."""
    typical = eigenvalues.mean() or 1.0
    gains = 1.0 / np.sqrt(eigenvalues + eps * typical)
    _check_gain(eps, float(gains.max() * np.sqrt(typical)))
    return gains


def _check_gain(eps, gain):
    """SettingError naming zca when its whitening amplifies the training rows' weakest
    direction more than MAX_ZCA_GAIN times their mean one: that direction holds rounding
    noise alone (none, in a rank-deficient set), which would swamp every other input of
    an image that has any (1 / sqrt(eps) when a direction has no variance at all)."""
    if gain > MAX_ZCA_GAIN:
        raise SettingError("zca", f"{eps:g} amplifies the training images' weakest direction "
                                  f"{gain:.3g} times their mean direction (at most "
                                  f"{MAX_ZCA_GAIN:g}): choose a larger eps")


def _covariance(images, index, mean, unit=1.0):
    """Covariance (ddof=0) of images[index] / unit about `mean`: float64 (D, D). Each chunk's
    product runs in the images' float type (float32 for uint8, a chunk of BLAS_ROWS rows
    rounding far below eps's floor), and the chunks are summed in float64. 7.5 s of the
    28 s fit on CIFAR-10's 45,000 training images; the eigen-decomposition is 18 s."""
    work = _work_dtype(images)
    shift = (mean / unit).astype(work)
    total = np.zeros((images.shape[1], images.shape[1]))
    part_sum = np.empty(total.shape, work)
    for part in _chunks(images, index, BLAS_ROWS):
        centred = part.astype(work) if unit == 1 else part / unit
        centred -= shift
        total += _product(centred, centred, trans_a=True, out=part_sum)
    return total / index.size


def _product(A, B, trans_a=False, trans_b=False, out=None):
    """op(A) op(B) through the engine's gemm (one dtype: B is cast to A's), into out."""
    from ..kernels.blas import gemm
    from ..runtime.threads import blas_single

    B = np.ascontiguousarray(B, dtype=A.dtype)
    A = np.ascontiguousarray(A)
    m = A.shape[1] if trans_a else A.shape[0]
    n = B.shape[0] if trans_b else B.shape[1]
    out = np.empty((m, n), A.dtype) if out is None else out
    with blas_single():
        gemm(out, A, B, trans_a, trans_b)
    return out


def _reach(images, index, mean):
    """How far from its mean each feature can lie, float64 (D,): to the ends of an integer
    dtype's range, or FLOAT_REACH times the farthest of the training rows for floats."""
    if np.issubdtype(images.dtype, np.integer):
        info = np.iinfo(images.dtype)
        return np.maximum(mean - info.min, info.max - mean)
    farthest = np.zeros(images.shape[1])
    for part in _chunks(images, index, BLAS_ROWS):
        farthest = np.maximum(farthest, np.abs(part - mean).max(axis=0))
    return FLOAT_REACH * np.maximum(farthest, np.finfo(np.float32).tiny)


def _stats_name(kind, eps, images, index):
    """The file name of a fit's statistics: kind, eps, and a digest of the training rows
    and the shape and dtype of their array."""
    digest = hashlib.sha256(f"{images.shape} {images.dtype.str} {eps!r}\n".encode())
    digest.update(np.ascontiguousarray(index, dtype=np.int64).tobytes())
    return f"{kind}-eps{eps:g}-{digest.hexdigest()[:16]}.npz"


PREPROCESSINGS = {cls.kind: cls for cls in (Standardise, Zca, Pca)}


def check_components(pca, n_features):
    """SettingError naming pca when it keeps more components than the images' features."""
    if pca > n_features:
        raise SettingError("pca", f"{pca} is more components than the images' {n_features} "
                                  "features")


def fit_preprocessing(zca, images, index, cache_folder=None, pca=0):
    """The preprocessing that the `zca` and `pca` settings choose, fitted on images[index]:
    with pca = k > 0, the k leading principal components of the images ZCA-whitened with
    eps = zca (zca > 0) or standardised; else ZCA whitening with eps = zca when zca > 0,
    else per-feature standardisation.

    images: uint8 or float (N, D); index: int64 (n,); cache_folder: where a kind whose fit
    is slow keeps its statistics (a data set's cache entry), or None.
    """
    check_finite(images, index)
    check_components(pca, images.shape[1])
    if pca > 0:
        return Pca.fit(images, index, cache_folder, eps=zca, k=pca)
    if zca > 0:
        return Zca.fit(images, index, cache_folder, eps=zca)
    return Standardise.fit(images, index, cache_folder)
