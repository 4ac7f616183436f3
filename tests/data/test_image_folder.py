import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cifar_engine.data import CIFAR10_CLASSES, N_BATCHES, image_folder
from cifar_engine.data.image_folder import read_image_file, read_image_folder
from cifar_engine.errors import DataError
from fakes import assert_same_data, tar_folder, write_image_tree
from properties import allocates_at_most


@pytest.mark.parametrize("form", ["image_tree", "image_archive"])
def test_reads_tree_in_seeded_order(request, form):
    fake = request.getfixturevalue(form)

    dataset = read_image_folder(fake.path)

    assert_same_data(dataset, fake)
    assert dataset.class_names == ("ant", "bee", "cow")
    sizes = np.bincount(dataset.train_batches, minlength=N_BATCHES)
    assert len(sizes) == N_BATCHES and sizes.sum() == 12 and sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("top, name", [(None, "flat.tar"), (None, "flat.tgz"), ("top", "top.tar")])
def test_reads_plain_and_gzipped_tars_with_or_without_a_top_folder(image_tree, tmp_path, top, name):
    archive = tar_folder(image_tree.path, tmp_path / name, top=top)

    assert_same_data(read_image_folder(archive), image_tree)


def test_cifar10_class_names_take_cifar10_label_order(tmp_path):
    shuffled = tuple(sorted(CIFAR10_CLASSES))
    fake = write_image_tree(tmp_path / "images", classes=shuffled, per_class=(1, 1))

    dataset = read_image_folder(fake.path)

    assert dataset.class_names == CIFAR10_CLASSES
    truck = dataset.test_images[dataset.test_labels == CIFAR10_CLASSES.index("truck")]
    np.testing.assert_array_equal(truck, fake.test_images[shuffled.index("truck")][None])


def test_grey_images_give_one_channel(tmp_path):
    fake = write_image_tree(tmp_path / "images", mode="L")

    dataset = read_image_folder(fake.path)

    assert dataset.image_shape == (1, 3, 5)
    assert_same_data(dataset, fake)


def test_a_grey_image_among_colour_ones_becomes_rgb(image_tree):
    grey = np.arange(15, dtype=np.uint8).reshape(3, 5)
    Image.fromarray(grey).save(image_tree.path / "test" / "ant" / "0000.png")

    dataset = read_image_folder(image_tree.path)

    assert dataset.image_shape == (3, 3, 5)
    np.testing.assert_array_equal(dataset.test_images[0], np.tile(grey.ravel(), 3))


def test_extensions_are_case_insensitive_and_other_files_ignored(image_tree):
    ant = image_tree.path / "train" / "ant"
    shutil.copy(ant / "0000.png", ant / "0100.PNG")
    Image.open(ant / "0001.png").save(ant / "0101.JPEG", format="JPEG")
    Image.open(ant / "0002.png").save(ant / "0102.Jpg", format="JPEG")
    (ant / "notes.txt").write_text("not an image")
    (ant / ".0103.png").write_bytes(b"hidden, e.g. macOS metadata")

    dataset = read_image_folder(image_tree.path)

    assert len(dataset.train_labels) == len(image_tree.train_labels) + 3


def test_no_images(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "empty" / split / "cat").mkdir(parents=True)

    with pytest.raises(DataError, match="empty: no images"):
        read_image_folder(tmp_path / "empty")


def test_no_test_images(image_tree):
    shutil.rmtree(image_tree.path / "test")
    (image_tree.path / "test").mkdir()

    with pytest.raises(DataError, match="no images under test/"):
        read_image_folder(image_tree.path)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n but then garbage"])
@pytest.mark.parametrize("form", ["image_tree", "image_archive"])
def test_an_unreadable_image_is_named(request, tmp_path, form, content):
    tree = request.getfixturevalue("image_tree")
    (tree.path / "train" / "bee" / "0002.png").write_bytes(content)
    path = tree.path if form == "image_tree" else tar_folder(tree.path, tmp_path / "x.tar.gz")

    with pytest.raises(DataError, match=r"train/bee/0002\.png: not a readable image"):
        read_image_folder(path)


def test_mixed_sizes_are_refused(image_tree):
    Image.new("RGB", (7, 3)).save(image_tree.path / "test" / "cow" / "0001.png")

    with pytest.raises(DataError, match=r"test/cow/0001\.png: image is 7x3 but .* is 5x3"):
        read_image_folder(image_tree.path)


def test_test_classes_must_match_train_classes(image_tree):
    (image_tree.path / "test" / "cow").rename(image_tree.path / "test" / "dog")

    with pytest.raises(DataError, match="only in train: cow; only in test: dog"):
        read_image_folder(image_tree.path)


def test_source_names_the_archive(image_archive):
    dataset = read_image_folder(image_archive.path)

    assert str(image_archive.path) in dataset.source


def _png_claiming(width, height):
    """A PNG whose header declares width x height RGB pixels, followed by a few of them."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("form", ["image_tree", "image_archive"])
def test_an_image_claiming_more_pixels_than_its_file_holds_allocates_nothing(request, tmp_path,
                                                                            form):
    tree = request.getfixturevalue("image_tree")
    for split in ("train", "test"):  # the first image decoded, in folder or archive order
        (tree.path / split / "ant" / "0000.png").write_bytes(_png_claiming(10_000, 8_000))
    path = tree.path if form == "image_tree" else tar_folder(tree.path, tmp_path / "x.tar.gz")

    with pytest.raises(DataError, match=r"ant/0000\.png: not a readable image \(its header "
                                        r"declares 10000x8000 pixels"), allocates_at_most(16):
        read_image_folder(path)


def test_a_later_image_of_another_size_is_refused_before_it_is_decoded(image_tree):
    (image_tree.path / "test" / "cow" / "0001.png").write_bytes(_png_claiming(3_000, 3_000))

    with pytest.raises(DataError, match=r"cow/0001\.png: image is 3000x3000 but .* is 5x3"), \
            allocates_at_most(16):
        read_image_folder(image_tree.path)


def test_a_file_to_predict_is_refused_before_it_is_decoded(tmp_path):
    (tmp_path / "big.png").write_bytes(_png_claiming(3_000, 3_000))

    with pytest.raises(DataError, match=r"big\.png: image is 3000x3000, the model takes 5x3"), \
            allocates_at_most(16):
        read_image_file(tmp_path / "big.png", (3, 3, 5))


@pytest.mark.parametrize("mode", ["1", "P", "LA", "RGBA", "I;16", "CMYK"])
def test_images_of_any_mode_are_read_as_grey_or_rgb(tmp_path, mode):
    fake = write_image_tree(tmp_path / "images", per_class=(1, 1))
    picture = Image.new("RGB", (5, 3), (200, 100, 50)).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    (fake.path / "train" / "ant" / "0000.png").unlink()
    picture.save(fake.path / "train" / "ant" / f"0000{suffix}")

    dataset = read_image_folder(fake.path)

    assert dataset.image_shape == (3, 3, 5)


def test_an_image_file_that_cannot_be_read_is_named(image_tree, monkeypatch):
    def refuse(path, mode="r"):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(image_folder, "open", refuse, raising=False)

    with pytest.raises(DataError, match=r"ant/0000\.png: cannot read \(Permission denied\)"):
        read_image_folder(image_tree.path)


@pytest.mark.timeout(20)
def test_a_pipe_to_predict_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")

    with pytest.raises(DataError, match=r"pipe\.png: not a regular file"):
        read_image_file(tmp_path / "pipe.png", (3, 3, 5))



DEEP = (np.arange(15).reshape(3, 5) * 4369).astype(np.uint16)  # 16-bit grey: I;16


def test_a_16_bit_image_to_predict_is_scaled_to_8_bits_not_clipped(tmp_path):
    Image.fromarray(DEEP).save(tmp_path / "deep.png")

    row = read_image_file(tmp_path / "deep.png", (1, 3, 5))

    assert np.array_equal(row, (DEEP >> 8).astype(np.uint8).reshape(-1))


def test_16_bit_images_in_a_data_set_are_scaled_to_8_bits(tmp_path):
    fake = write_image_tree(tmp_path / "images", per_class=(1, 1))
    for png in fake.path.glob("*/*/*.png"):
        Image.fromarray(DEEP).save(png)

    dataset = read_image_folder(fake.path)

    assert dataset.image_shape == (1, 3, 5)
    assert (dataset.train_images == (DEEP >> 8).astype(np.uint8).reshape(-1)).all()
