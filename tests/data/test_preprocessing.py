"""preprocessing.py: standardisation as it always was, ZCA whitening and PCA against plain
NumPy, the int16 form's error bound, and the cache of the statistics."""
import numpy as np
import pytest

from cifar_engine import load_dataset
from cifar_engine.data.preprocessing import (INT16_MAX, PREPROCESSINGS, Pca, Standardise, Zca,
                                             feature_stats, fit_preprocessing)
from cifar_engine.errors import DataError, SettingError
from cifar_engine.kernels import step
from cifar_engine.model.network import Network, NetworkSpec
from cifar_engine.settings import SETTINGS
from fakes import write_image_tree


def correlated_images(n=300, d=12, seed=0):
    """uint8 (n, d) whose features are correlated (a random mixing of d sources), as
    neighbouring pixels are."""
    rng = np.random.default_rng(seed)
    mixed = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 12 + 128
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


# -- standardisation -------------------------------------------------------------------------


def _feature_stats_before(images, index, chunk_rows=64):
    """feature_stats as engine/data/splits.py had it before preprocessing was one value
    (commit d0213dc), verbatim but for its docstring."""
    work = np.float64 if images.dtype == np.float64 else np.float32
    shift = images[index[0]].astype(work)
    total, squares = np.zeros(images.shape[1]), np.zeros(images.shape[1])
    every_row = index.size == images.shape[0]
    buf = np.empty((min(chunk_rows, index.size), images.shape[1]), work)
    for start in range(0, index.size, chunk_rows):
        part = (images[start:start + chunk_rows] if every_row
                else images[index[start:start + chunk_rows]])
        d = buf[:part.shape[0]]
        np.subtract(part, shift, out=d)
        total += d.sum(axis=0, dtype=np.float64)
        d *= d
        squares += d.sum(axis=0, dtype=np.float64)
    mean = total / index.size
    std = np.sqrt(np.maximum(squares / index.size - mean * mean, 0.0))
    std[std == 0] = 1.0
    return shift + mean, std


INDEXES = {"subset": lambda n: np.arange(3, n, 2),
           "every-row-shuffled": lambda n: np.random.default_rng(2).permutation(n)}


@pytest.mark.parametrize("index", INDEXES.values(), ids=INDEXES.keys())
@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_standardise_is_bit_for_bit_the_standardisation_before_it(index, dtype):
    images = np.random.default_rng(1).integers(0, 256, (300, 24)).astype(dtype)
    rows = index(300)

    fitted = Standardise.fit(images, rows)

    mean, std = _feature_stats_before(images, rows)
    np.testing.assert_array_equal(fitted.mean, mean)
    np.testing.assert_array_equal(fitted.std, std)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_standardised_network_scores_bit_for_bit_as_before(dtype):
    """The source holds the very images (no copy), and the scores are those of the source
    that set_standardisation built before: mean and 1 / std in the network's dtype."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (40, 24), dtype=np.uint8)
    net = Network(NetworkSpec(input_size=24, n_classes=4, hidden=(9,), dtype=dtype), seed=1)
    mean, std = _feature_stats_before(images, np.arange(30))
    net.set_preprocessing(Standardise.fit(images, np.arange(30)))

    source = net.batch_source(images)

    assert source.images is images
    before = step.BatchSource(images, source.labels, mean.astype(dtype),
                              (1.0 / std).astype(dtype), (1, 1, 24), np.zeros((0, 0), dtype))
    np.testing.assert_array_equal(net.scores(source), net.scores(before))


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 1000])
def test_chunked_statistics_do_not_depend_on_the_chunk_size(chunk_rows):
    images = np.random.default_rng(1).integers(0, 256, (50, 8), dtype=np.uint8)
    index = np.arange(3, 50, 2)

    mean, std = feature_stats(images, index, chunk_rows=chunk_rows)

    np.testing.assert_allclose(mean, images[index].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, images[index].std(axis=0), rtol=1e-12)


def test_a_constant_feature_gets_std_1():
    images = np.full((10, 3), 7, dtype=np.uint8)
    images[:, 1] = np.arange(10)

    mean, std = feature_stats(images, np.arange(10), chunk_rows=4)

    assert std[0] == std[2] == 1.0 and std[1] == pytest.approx(np.arange(10).std())
    assert mean[0] == 7.0


# -- ZCA whitening ---------------------------------------------------------------------------


def _zca_by_svd(X, eps):
    """ZCA of the rows X (float64) by the SVD of the centred data, not by an eigen-
    decomposition of the covariance: (mean, whitening matrix)."""
    mean = X.mean(axis=0)
    _, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    eigenvalues = S**2 / X.shape[0]
    return mean, Vt.T @ np.diag(1 / np.sqrt(eigenvalues + eps * eigenvalues.mean())) @ Vt


@pytest.mark.parametrize("eps", [1e-3, 0.1, 1.0])
@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_zca_matches_plain_numpy_by_svd(eps, dtype):
    images = correlated_images().astype(dtype)
    index = np.arange(20, 300, 1)

    zca = Zca.fit(images, index, eps=eps)

    mean, W = _zca_by_svd(images[index].astype(np.float64), eps)
    np.testing.assert_allclose(zca.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(zca.whiten, W, rtol=2e-4, atol=2e-5 * np.abs(W).max())
    np.testing.assert_allclose(zca.whitened(images), (images - mean) @ W.T, rtol=1e-3,
                               atol=1e-4 * np.abs(W).max())
    assert zca.eps == eps and zca.describe() == {"kind": "zca", "eps": eps}


def test_whitened_covariance_nears_the_identity_as_eps_goes_to_0():
    """eps shrinks the components of small variance; as it goes to 0 the training rows'
    whitened covariance becomes I (to float32's rounding)."""
    images = correlated_images(n=2000)
    index = np.arange(2000)

    gaps = []
    for eps in (0.1, 1e-3, 1e-5, 1e-7):
        whitened = Zca.fit(images, index, eps=eps).whitened(images).astype(np.float64)
        gaps.append(np.abs(np.cov(whitened, rowvar=False, ddof=0) - np.eye(12)).max())

    assert gaps == sorted(gaps, reverse=True) and gaps[0] > 0.1 and gaps[-1] < 1e-4


def _extreme_images(W, mean):
    """For each feature j the uint8 image whose whitened value j is largest (each pixel
    at the end of its range that W[j] weighs up), and its negative twin: (2 D, D)."""
    high = np.where(W > 0, 255, 0).astype(np.uint8)
    return np.concatenate([high, 255 - high])


def test_int16_form_errs_by_at_most_half_a_step_and_never_overflows():
    images = correlated_images()
    zca = Zca.fit(images, np.arange(200), eps=0.05)
    tested = np.concatenate([images, _extreme_images(zca.whiten, zca.mean),
                             np.zeros((1, 12), np.uint8), np.full((1, 12), 255, np.uint8)])

    stored, offset, scale = zca.gather_form(tested)

    assert stored.dtype == np.int16 and not offset.any() and np.array_equal(scale, zca.step)
    exact = (tested - zca.mean) @ zca.whiten.astype(np.float64).T
    error = np.abs(stored * scale - exact)
    assert (error <= scale / 2 * 1.001 + 1e-6 * np.abs(exact)).all()
    # the extreme images come near the bound the step was chosen from (the means are near
    # 128, the middle of the pixels' range) and stay inside int16
    extremes = np.abs(stored[300:324]).max(axis=0)
    assert (extremes >= 0.9 * INT16_MAX).all() and (np.abs(stored) <= INT16_MAX).all()


def test_int16_rounding_is_below_the_pixels_own_rounding():
    """Rounding x_w_j to a step adds rms step / sqrt(12); the pixels' rounding to whole
    numbers already adds rms ||whiten[j]||_2 / sqrt(12). The first is at most
    255 sqrt(D) / INT16_MAX of the second (0.43 for CIFAR's D = 3072)."""
    images = correlated_images(n=400, d=48)
    zca = Zca.fit(images, np.arange(400), eps=0.1)

    ratio = zca.step / np.linalg.norm(zca.whiten.astype(np.float64), axis=1)

    assert (ratio <= 255 * np.sqrt(48) / INT16_MAX).all()


def test_a_rows_int16_form_does_not_depend_on_the_rows_whitened_with_it():
    images = correlated_images()
    zca = Zca.fit(images, np.arange(300), eps=0.1)

    alone = zca.gather_form(images[:1])[0]
    with_others = zca.gather_form(images)[0][:1]

    assert np.abs(alone.astype(int) - with_others).max() <= 1  # BLAS may round differently


def test_float_images_reach_twice_the_training_rows_extent():
    X = correlated_images().astype(np.float64) / 255
    zca = Zca.fit(X, np.arange(300), eps=0.1)

    reach = 2 * np.abs(X - zca.mean).max(axis=0)
    np.testing.assert_allclose(zca.step, np.abs(zca.whiten.astype(np.float64)) @ reach
                               / INT16_MAX, rtol=1e-6)


def test_a_zca_network_scores_its_raw_images_as_the_whitened_rows():
    images = correlated_images(n=60, d=48)
    net = Network(NetworkSpec(input_size=48, n_classes=3, hidden=(10,)), seed=2)
    net.set_preprocessing(Zca.fit(images, np.arange(50), eps=0.1), image_shape=(3, 4, 4))
    X = net.preprocessing.transform(images).astype(np.float32)

    np.testing.assert_allclose(net.scores(net.batch_source(images)), net.forward(X),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        net.scores(net.float_source(images.astype(np.float32))), net.forward(X),
        rtol=1e-5, atol=1e-5)


# -- PCA ---------------------------------------------------------------------------------------


def _pca_by_svd(X, eps, k):
    """The k leading principal coordinates of the rows X (float64) by the SVD of the centred
    (eps 0: standardised) data, scaled by the ZCA gains when eps > 0: (mean, scale, (D, k)
    map), the coordinates being ((X - mean) * scale) @ map."""
    mean = X.mean(axis=0)
    scale = np.ones_like(mean) if eps > 0 else 1 / X.std(axis=0)
    _, S, Vt = np.linalg.svd((X - mean) * scale, full_matrices=False)
    eigenvalues = S**2 / X.shape[0]
    gains = 1 / np.sqrt(eigenvalues + eps * eigenvalues.mean()) if eps > 0 else np.ones(k)
    return mean, scale, Vt[:k].T * gains[:k]


def _signs_matched(A, B):
    """A with each column's sign that of the same column of B (eigenvectors have none)."""
    return A * np.sign(np.sum(A * B, axis=0))


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_pca_matches_plain_numpy_by_svd(eps, dtype):
    images = correlated_images().astype(dtype)
    index = np.arange(20, 300)

    pca = Pca.fit(images, index, eps=eps, k=5)

    mean, scale, M = _pca_by_svd(images[index].astype(np.float64), eps, 5)
    np.testing.assert_allclose(pca.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(pca.scale, scale, rtol=1e-12)
    projection = pca.projection.astype(np.float64)
    np.testing.assert_allclose(_signs_matched(projection, M), M, rtol=1e-4,
                               atol=1e-5 * np.abs(M).max())
    expected = ((images - mean) * scale) @ M
    np.testing.assert_allclose(_signs_matched(pca.transform(images), expected), expected,
                               rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert pca.n_features == 12 and pca.n_inputs == 5
    assert pca.describe() == {"kind": "pca", "components": 5, "eps": eps}


def test_every_component_of_whitened_images_is_zca_in_another_basis():
    """With k = D the inputs are the ZCA-whitened image in the basis of the eigenvectors:
    rotated back, they are ZCA's, and the templates map a layer back the same way."""
    images = correlated_images()
    pca = Pca.fit(images, np.arange(300), eps=0.1, k=12)
    zca = Zca.fit(images, np.arange(300), eps=0.1)

    rotated = pca.transform(images) @ pca.components.T.astype(np.float64)

    np.testing.assert_allclose(rotated, zca.whitened(images), rtol=1e-3, atol=1e-4)
    W1 = np.random.default_rng(1).standard_normal((4, 12))
    np.testing.assert_allclose(pca.templates(W1) @ pca.components.astype(np.float64),
                               W1 * pca.gains, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_pca_network_scores_its_raw_images_as_the_projected_rows(dtype):
    """The kernels' projection (after the gather, in order for scores) against the
    preprocessing's NumPy transform fed to the network."""
    images = correlated_images(n=60, d=48)
    net = Network(NetworkSpec(input_size=7, n_classes=3, hidden=(10,), dtype=dtype), seed=2)
    net.set_preprocessing(Pca.fit(images, np.arange(50), eps=0.1, k=7), image_shape=(3, 4, 4))
    X = net.preprocessing.transform(images)
    tol = 1e-5 if dtype == "float32" else 1e-12

    np.testing.assert_allclose(net.scores(net.batch_source(images)), net.forward(X),
                               rtol=tol, atol=tol)
    raw = images.astype(dtype)
    raw.flags.writeable = False
    np.testing.assert_allclose(net.scores(net.float_source(raw)), net.forward(X), rtol=tol,
                               atol=tol)
    assert np.array_equal(net.scores(net.batch_source(images[:1])),
                          net.scores(net.batch_source(images))[:1])


def test_a_source_of_another_preprocessing_is_refused():
    images = correlated_images(n=60, d=48)
    net = Network(NetworkSpec(input_size=7, n_classes=3, hidden=(10,)), seed=2)
    other = Network(NetworkSpec(input_size=48, n_classes=3, hidden=(10,)), seed=2)
    net.set_preprocessing(Pca.fit(images, np.arange(50), eps=0.1, k=7))

    with pytest.raises(ValueError, match="this network's source"):
        net.scores(other.batch_source(images))


def test_more_components_than_features_is_refused_naming_pca():
    with pytest.raises(SettingError, match="pca 13 is more components than the images' 12"):
        fit_preprocessing(0.1, correlated_images(), np.arange(100), pca=13)


# -- the registry ------------------------------------------------------------------------------


@pytest.mark.parametrize("zca, pca, kind, inputs", [(0.0, 0, "standardise", 12),
                                                    (0.1, 0, "zca", 12), (0.1, 5, "pca", 5),
                                                    (0.0, 5, "pca", 5)])
def test_the_zca_and_pca_settings_choose_the_kind_and_its_arrays_round_trip(zca, pca, kind,
                                                                           inputs):
    images = correlated_images()

    fitted = fit_preprocessing(zca, images, np.arange(100), pca=pca)

    assert fitted.kind == kind and isinstance(fitted, PREPROCESSINGS[kind])
    assert fitted.n_inputs == inputs and fitted.n_features == 12
    arrays = fitted.arrays()
    assert {k: np.shape(v) for k, v in arrays.items()} == \
        PREPROCESSINGS[kind].shapes(inputs, 12)
    again = PREPROCESSINGS[kind].from_arrays(arrays)
    np.testing.assert_array_equal(again.transform(images), fitted.transform(images))


@pytest.mark.parametrize("make, message", [
    (lambda z: Zca(z.mean, z.whiten, -z.step, z.eps), "step holds values <= 0"),
    (lambda z: Zca(z.mean, z.whiten, z.step, 0.0), "eps must be a number > 0"),
    (lambda z: Zca(z.mean, z.whiten[:, :-1], z.step, z.eps), "whiten must have shape"),
    (lambda z: Zca(z.mean, z.whiten * np.inf, z.step, z.eps), "whiten holds NaN"),
    (lambda z: Standardise(z.mean, np.zeros(12)), "std holds values <= 0"),
    (lambda z: Pca(z.mean, np.ones(12), np.ones((12, 13)), np.ones(13)),
     r"components must have shape \(12, k\) with 1 <= k <= 12"),
    (lambda z: Pca(z.mean, np.ones(12), np.ones((12, 3)), np.zeros(3)), "gains holds values <= 0"),
    (lambda z: Pca(z.mean, np.ones(12), np.ones((12, 3)), np.ones(3), -1.0),
     "eps must be a number >= 0"),
])
def test_a_preprocessing_of_bad_arrays_names_the_array(make, message):
    zca = Zca.fit(correlated_images(), np.arange(100), eps=0.1)
    with pytest.raises(ValueError, match=message):
        make(zca)


# -- the cache of ZCA's statistics --------------------------------------------------------------


@pytest.fixture
def fits(monkeypatch):
    """Counts the ZCA computations (each still computes)."""
    calls = []
    fitted = Zca.fitted.__func__
    monkeypatch.setattr(Zca, "fitted", classmethod(
        lambda cls, *args: calls.append(args[2]) or fitted(cls, *args)))
    return calls


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_the_second_fit_reads_the_cache(tmp_path, fits):
    images = correlated_images()

    first = Zca.fit(images, np.arange(100), tmp_path, eps=0.1)
    second = Zca.fit(images, np.arange(100), tmp_path, eps=0.1)

    assert fits == [0.1] and len(_files(tmp_path)) == 1
    assert _files(tmp_path)[0].startswith("zca-eps0.1-")
    for name, value in first.arrays().items():
        np.testing.assert_array_equal(second.arrays()[name], value)


def test_another_eps_or_split_is_another_entry(tmp_path, fits):
    images = correlated_images()

    fits_of = [Zca.fit(images, index, tmp_path, eps=eps) for index, eps in
               [(np.arange(100), 0.1), (np.arange(100), 0.2), (np.arange(1, 101), 0.1)]]

    assert fits == [0.1, 0.2, 0.1] and len(_files(tmp_path)) == 3
    assert not np.array_equal(fits_of[0].whiten, fits_of[1].whiten)
    assert not np.array_equal(fits_of[0].mean, fits_of[2].mean)


def _flipped(data, at):
    """data with the bits of its byte `at` flipped."""
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


@pytest.mark.parametrize("damage", [
    lambda data: data[:len(data) // 2],
    lambda data: _flipped(data, len(data) // 2),
    lambda data: b"",
], ids=["truncated", "one-byte", "empty"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, fits, damage):
    images = correlated_images(d=48)
    first = Zca.fit(images, np.arange(100), tmp_path, eps=0.1)
    [path] = tmp_path.iterdir()
    path.write_bytes(damage(path.read_bytes()))

    again = Zca.fit(images, np.arange(100), tmp_path, eps=0.1)
    third = Zca.fit(images, np.arange(100), tmp_path, eps=0.1)

    assert fits == [0.1, 0.1]  # rebuilt once, then read
    np.testing.assert_array_equal(again.whiten, first.whiten)
    np.testing.assert_array_equal(third.whiten, first.whiten)
    assert _files(tmp_path) == [path.name]


def test_statistics_live_in_the_data_sets_cache_entry(tmp_path, fits):
    root = write_image_tree(tmp_path / "images", per_class=(8, 2), size=(4, 4)).path
    dataset = load_dataset(root, cache_dir=tmp_path / "cache")

    fit_preprocessing(0.1, dataset.train_images, np.arange(20), dataset.cache_entry)
    reloaded = load_dataset(root, cache_dir=tmp_path / "cache")
    fit_preprocessing(0.1, reloaded.train_images, np.arange(20), reloaded.cache_entry)

    assert reloaded.cache_entry == dataset.cache_entry
    assert dataset.cache_entry.parent == tmp_path / "cache"
    assert [name for name in _files(dataset.cache_entry) if name.startswith("zca-")]
    assert fits == [0.1]  # the entry, stats and all, was kept


# -- inputs at the edges of their range ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_rows_at_their_dtypes_maximum_give_finite_statistics(dtype):
    top = np.finfo(dtype).max
    images = np.array([[top, -top, 0.0], [-top, top, top], [top, top, -top]], dtype)
    index = np.arange(3)
    mean, std = feature_stats(images, index)
    np.testing.assert_allclose(mean, (images.astype(np.float64) / 4).mean(axis=0) * 4,
                               rtol=1e-12)
    assert np.isfinite(std).all() and (std > 0).all()
    fit_preprocessing(0.0, images, index)  # a standardisation of these rows exists


@pytest.mark.parametrize("zca", [0.0, 0.1])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_training_rows_that_are_not_finite_are_refused_by_the_fit(zca, bad):
    images = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)
    images[7, 2] = bad
    with pytest.raises(DataError, match="images hold NaN or infinite values"):
        fit_preprocessing(zca, images, np.arange(40))


def test_an_eps_that_amplifies_a_direction_without_variance_is_refused_with_its_gain():
    rank_deficient = correlated_images(d=12)
    rank_deficient[:, 11] = rank_deficient[:, 10]  # two identical features: a null direction
    with pytest.raises(SettingError, match=r"^zca 1e-07 amplifies .* 3\.\d+e\+03 times") as err:
        Zca.fit(rank_deficient, np.arange(300), eps=1e-7)
    assert err.value.setting == "zca"
    Zca.fit(rank_deficient, np.arange(300), eps=1e-5)  # a gain of 316 is taken


def test_the_zca_setting_has_a_lower_limit_above_0():
    assert SETTINGS["zca"].check(0.0) == 0.0
    with pytest.raises(SettingError, match="zca must be 0 or in"):
        SETTINGS["zca"].check(1e-30)
