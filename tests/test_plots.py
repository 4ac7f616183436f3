import numpy as np
import pytest
from PIL import Image

from cifar_engine.data import Dataset
from cifar_engine.errors import SettingError, UserError
from cifar_engine.plots import MAX_PER_CLASS, grid_indices, sample_grid, save_figure


@pytest.fixture
def dataset():
    """3 classes of solid-colour 4x4 images: class k is all k * 100."""
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1], dtype=np.int64)
    images = np.repeat((labels * 100).astype(np.uint8)[:, None], 3 * 16, axis=1)
    return Dataset(images, labels, images[:3], labels[:3], ("zero", "one", "two"), (3, 4, 4),
                   "test", np.zeros(len(labels), dtype=np.int64))


def test_grid_rows_hold_only_their_class():
    labels = np.random.default_rng(0).integers(0, 5, 300)

    rows = grid_indices(labels, 5, per_class=7, seed=3)

    assert len(rows) == 5
    for label, row in enumerate(rows):
        assert len(row) == 7 and len(set(row)) == 7
        assert (labels[row] == label).all()


def test_grid_rows_are_seeded_and_capped_by_the_class_size():
    labels = np.array([0, 0, 1, 1, 1, 1])

    assert [r.tolist() for r in grid_indices(labels, 3, 4, seed=1)] == \
        [r.tolist() for r in grid_indices(labels, 3, 4, seed=1)]
    assert [len(r) for r in grid_indices(labels, 3, 3)] == [2, 3, 0]


def test_sample_grid_writes_a_png_with_one_row_per_class(dataset, tmp_path):
    path = tmp_path / "grid.png"
    fig = sample_grid(dataset, path, per_class=2)

    picture = np.asarray(Image.open(path).convert("L"), dtype=np.int64)
    assert len(fig.axes) == 3 * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    # the rows of the picture, top to bottom, show grey levels 0, 100 and 200
    height = picture.shape[0]
    for label, band in enumerate(np.array_split(picture[:, picture.shape[1] // 2:], 3)):
        assert np.abs(np.median(band[band != 255]) - label * 100) <= 2, (label, height)


def test_save_figure_to_an_unwritable_place(tmp_path):
    from matplotlib.figure import Figure

    (tmp_path / "file").write_text("not a folder")

    with pytest.raises(UserError, match="cannot write"):
        save_figure(Figure(), tmp_path / "file" / "plot.png")


@pytest.mark.parametrize("per_class", [0, MAX_PER_CLASS + 1, 100_000])
def test_sample_grid_bounds_its_rows_before_drawing(dataset, tmp_path, per_class):
    with pytest.raises(SettingError) as err:
        sample_grid(dataset, tmp_path / "grid.png", per_class=per_class)

    assert err.value.setting == "per_class" and f"got {per_class}" in str(err.value)
    assert not (tmp_path / "grid.png").exists()
