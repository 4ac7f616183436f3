"""Property: every reader, fed a valid source that Hypothesis then damages (files cut short,
bytes overwritten, header fields changed, odd or broken images, values replaced), loads a
consistent Dataset or refuses with a one-line UserError naming the source; it never crashes,
never allocates much, and leaves nothing behind but its cache.
"""
import gzip
import io
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from cifar_engine.data import load_dataset
from cifar_engine.data.dataset import check_dataset
from cifar_engine.data.idx import IDX_FILES
from fakes import (Py2Pickler, assert_same_data, load_py2, tar_folder, write_cifar10,
                   write_cifar100, write_idx, write_image_tree)
from properties import damaged, loads_or_refuses, report_inputs  # noqa: F401

PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
CIFAR_FILES = {"cifar10": ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"),
               "cifar100": ("train", "test", "meta")}
IDX_NAMES = tuple(name for names in IDX_FILES.values() for name in names)
# (offset, size, byte order) of an IDX header's magic number and dimensions
IDX_FIELDS = [(0, 4, "big"), (4, 4, "big"), (8, 4, "big"), (12, 4, "big")]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Small valid sources of every kind, by name: the Fakes, and the CIFAR-10 archive."""
    root = tmp_path_factory.mktemp("pristine")
    fakes = {
        "cifar10": write_cifar10(root / "cifar-10-batches-py", per_batch=2, n_test=2),
        "cifar100": write_cifar100(root / "cifar-100-python", n_train=5, n_test=3),
        "idx": write_idx(root / "fashion", n_train=10, n_test=5, size=(4, 3)),
        "images": write_image_tree(root / "images", per_class=(2, 1)),
    }
    fakes["cifar10-archive"] = tar_folder(fakes["cifar10"].path, root / "cifar-10-python.tar.gz",
                                          top="cifar-10-batches-py")
    return fakes


@pytest.fixture
def workdir(tmp_path):
    """fresh() gives a new folder for each example (the fixture lasts for all of them)."""
    made = []

    def fresh():
        made.append(Path(tempfile.mkdtemp(dir=tmp_path)))
        return made[-1]

    yield fresh
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def load_checked(source, fake=None, seeded_train=True):
    """load_dataset(source), its cache beside it: a consistent Dataset (the fake's, when
    given), or None for a one-line UserError naming the source. Either way the source's
    folder then holds the source as it was, and the cache: one entry after a load, or none."""
    work = source.parent
    before = _files(work)
    cache = work / "cache"

    dataset = loads_or_refuses(f"{source.name} ({'folder' if source.is_dir() else 'file'})",
                               lambda: load_dataset(source, cache_dir=cache, progress=False),
                               source)

    after = _files(work)
    assert set(before) <= set(after), "a source file went missing"
    left = [name for name in after if name not in before]
    if dataset is None:
        assert left in ([], ["cache"]), left
        return
    entries = [p.name for p in cache.iterdir()]
    assert len(entries) == 1 and not entries[0].startswith("."), entries
    assert all(name == "cache" or name.startswith(f"cache/{entries[0]}") for name in left), left
    check_dataset(dataset, source)
    assert len(dataset.train_labels) and len(dataset.test_labels)
    if fake is not None:
        assert_same_data(dataset, fake, seeded_train)


def _archived(tree, path, top):
    """The bytes of a tar (gzipped for .gz) of `tree`, the same on every run: what Hypothesis
    draws from them must not depend on the clock. Removes `tree`."""
    for file in tree.rglob("*"):
        os.utime(file, (0, 0))
    tar = tar_folder(tree, path.with_suffix(".tmp"), top).read_bytes()
    shutil.rmtree(tree)
    path.with_suffix(".tmp").unlink()
    return gzip.compress(tar, mtime=0) if path.suffix == ".gz" else tar


def write_or_remove(path, content):
    if content is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(content)


def _copy(source, work):
    target = work / source.name
    (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
    return target


# --- strategies -------------------------------------------------------------------------

python_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
    | st.binary(max_size=8) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=12)
array_values = hnp.arrays(
    dtype=st.sampled_from(["|u1", "|i1", "<f4", "<i8", "|b1", ">u2"]),
    shape=st.tuples(st.integers(0, 3), st.sampled_from([3072, 3071, 1, 0]))
    | hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))


@st.composite
def pickle_changed(draw, obj):
    """`obj` (an unpickled CIFAR dict) with one value replaced or removed, pickled the
    Python-2 way or by a Python-3 protocol."""
    key = draw(st.sampled_from(sorted(obj) + [b"other"]))
    if draw(st.booleans()):
        obj.pop(key, None)
    else:
        obj[key] = draw(python_values | array_values)
    protocol = draw(st.sampled_from([None, 2, 4, 5]))
    if protocol is not None:
        return pickle.dumps(obj, protocol=protocol)
    buffer = io.BytesIO()
    Py2Pickler(buffer).dump(obj)
    return buffer.getvalue()


@st.composite
def tar_header_changed(draw, data):
    """A tar's bytes with one field of one member's header changed, its checksum made to
    match so that tarfile reads on."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        offsets = [member.offset for member in tar.getmembers()]
    at = draw(st.sampled_from(offsets))
    field = draw(st.sampled_from(["size", "type", "name", "huge size"]))
    header = bytearray(data[at:at + 512])
    if field == "size":
        header[124:136] = b"%011o\0" % draw(st.integers(0, 8**11 - 1))
    elif field == "huge size":  # GNU base-256
        header[124:136] = b"\x80" + draw(st.integers(0, 2**64)).to_bytes(11, "big")
    elif field == "type":
        header[156:157] = draw(st.sampled_from(list(b"0125LKxgS7\0"))).to_bytes(1, "big")
    else:
        header[0:100] = draw(st.binary(max_size=100)).ljust(100, b"\0")
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return data[:at] + bytes(header) + data[at + 512:]


def tar_damaged(data):
    return tar_header_changed(data) | damaged(data)


def gzip_damaged(data):
    """gzip bytes damaged as they are, or inside (the tar they hold damaged, then gzipped)."""
    return damaged(data) | tar_damaged(gzip.decompress(data)).map(gzip.compress)


@st.composite
def odd_images(draw):
    """An image file: PNG or JPEG, of any mode Pillow writes, often of another size."""
    mode = draw(st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"]))
    width, height = draw(st.just((5, 3)) | st.tuples(st.integers(1, 9), st.integers(1, 9)))
    pixels = np.random.default_rng(draw(st.integers(0, 99))).bytes(width * height * 3)
    image = Image.frombytes("RGB", (width, height), pixels).convert(mode)
    formats = {"CMYK": ["JPEG"], "L": ["PNG", "JPEG"], "RGB": ["PNG", "JPEG"]}
    buffer = io.BytesIO()
    image.save(buffer, draw(st.sampled_from(formats.get(mode, ["PNG"]))))
    return buffer.getvalue()


def change_tree(data, root):
    """Change one file of an image tree as drawn: damaged, replaced by an odd image, emptied
    or removed. Returns whether anything changed."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    target = data.draw(st.sampled_from(files), label="file")
    how = data.draw(st.sampled_from(["damage", "image", "empty", "remove", "none"]), label="how")
    if how == "remove":
        target.unlink()
    elif how != "none":
        content = {"damage": lambda: data.draw(damaged(target.read_bytes()), label="bytes"),
                   "image": lambda: data.draw(odd_images(), label="image"),
                   "empty": lambda: b""}[how]()
        target.write_bytes(content)
    return how != "none"


# --- the properties -----------------------------------------------------------------------

@PROPERTY
@given(data=st.data(), release=st.sampled_from(sorted(CIFAR_FILES)))
def test_a_damaged_cifar_release_loads_or_is_one_line(pristine, workdir, data, release):
    folder = _copy(pristine[release].path, workdir())
    path = folder / data.draw(st.sampled_from(CIFAR_FILES[release]), label="file")
    original = path.read_bytes()
    content = data.draw(damaged(original) | pickle_changed(load_py2(path)) | st.none(),
                        label="content (None: removed)")
    write_or_remove(path, content)

    unchanged = content == original
    load_checked(folder, pristine[release] if unchanged else None, release == "cifar100")


@PROPERTY
@given(data=st.data())
def test_a_damaged_cifar_archive_loads_or_is_one_line(pristine, workdir, data):
    archive = _copy(pristine["cifar10-archive"], workdir())
    original = archive.read_bytes()
    archive.write_bytes(data.draw(gzip_damaged(original), label="archive"))

    load_checked(archive, pristine["cifar10"] if archive.read_bytes() == original else None,
                 seeded_train=False)


@PROPERTY
@given(data=st.data(), name=st.sampled_from(IDX_NAMES), gzipped=st.booleans())
def test_damaged_idx_files_load_or_are_one_line(pristine, workdir, data, name, gzipped):
    folder = _copy(pristine["idx"].path, workdir())
    path = folder / f"{name}.gz"
    content = gzip.decompress(path.read_bytes())
    if not gzipped:
        path.unlink()
        path = folder / name
    damage = damaged(content, IDX_FIELDS)
    damage = damage.map(gzip.compress) | damaged(gzip.compress(content)) if gzipped else damage
    write_or_remove(path, data.draw(damage | st.none(), label="content (None: removed)"))

    load_checked(folder)


@PROPERTY
@given(data=st.data())
def test_a_damaged_image_tree_loads_or_is_one_line(pristine, workdir, data):
    tree = _copy(pristine["images"].path, workdir())
    changed = change_tree(data, tree)

    load_checked(tree, None if changed else pristine["images"])


@PROPERTY
@given(data=st.data(), name=st.sampled_from(["images.tar", "images.tar.gz"]))
def test_a_damaged_image_archive_loads_or_is_one_line(pristine, workdir, data, name):
    work = workdir()
    tree = _copy(pristine["images"].path, work)
    changed = change_tree(data, tree)
    original = _archived(tree, work / name, data.draw(st.sampled_from([None, "images"])))
    archive = work / name
    archive.write_bytes(original)
    damage = gzip_damaged if name.endswith(".gz") else tar_damaged
    if data.draw(st.booleans(), label="damage the archive"):
        archive.write_bytes(data.draw(damage(original), label="archive"))

    unchanged = not changed and archive.read_bytes() == original
    load_checked(archive, pristine["images"] if unchanged else None)
