import bz2
import gzip
import lzma
import random
import tarfile

import pytest

from cifar_engine.data.archive import first_file_name, iter_files
from cifar_engine.errors import DataError
from fakes import tar_folder
from properties import allocates_at_most


@pytest.fixture
def tree(tmp_path):
    for name, text in [("a/one.txt", "1"), ("a/b/two.txt", "22"), ("three.txt", "333")]:
        (tmp_path / "tree" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / name).write_text(text)
    return tmp_path / "tree"


@pytest.mark.parametrize("name", ["t.tar", "t.tar.gz", "t.tgz"])
def test_iter_files_yields_regular_files_in_archive_order(tree, tmp_path, name):
    archive = tar_folder(tree, tmp_path / name, top=".")

    assert list(iter_files(archive)) == [
        (("a", "b", "two.txt"), b"22"), (("a", "one.txt"), b"1"), (("three.txt",), b"333"),
    ]
    assert first_file_name(archive) == "./a/b/two.txt"


def _cut(data, where):
    return data[:where] if where > 0 else data[:len(data) + where]


@pytest.mark.parametrize("where", [100, 2000, -30, -4])
def test_a_truncated_gzip_archive_is_a_data_error(tmp_path, where):
    # incompressible members, so that every cut lands inside the archive's data or trailer
    (tmp_path / "tree").mkdir()
    for i in range(3):
        (tmp_path / "tree" / f"{i}.bin").write_bytes(random.Random(i).randbytes(3000))
    archive = tar_folder(tmp_path / "tree", tmp_path / "t.tar.gz")
    whole = archive.read_bytes()
    assert len(whole) > 9000
    archive.write_bytes(_cut(whole, where))

    with pytest.raises(DataError, match=r"t\.tar\.gz: not a readable tar archive, or truncated"):
        list(iter_files(archive))


@pytest.mark.parametrize("content", [b"", b"this is no gzip and no tar" * 40])
def test_a_file_that_is_no_archive_is_a_data_error(tmp_path, content):
    archive = tmp_path / "fake.tar.gz"
    archive.write_bytes(content)

    for read in (first_file_name, lambda path: list(iter_files(path))):
        with pytest.raises(DataError, match=r"fake\.tar\.gz: not a readable tar archive"):
            read(archive)


def test_an_archive_with_only_folders(tmp_path):
    with tarfile.open(tmp_path / "empty.tar", "w") as tar:
        tar.add(tmp_path, arcname="nothing", recursive=False)

    with pytest.raises(DataError, match="holds no files"):
        first_file_name(tmp_path / "empty.tar")


def _claiming(kind, size):
    """A tar header whose member (a file, or a GNU long name) claims `size` bytes, and 1 KB."""
    info = tarfile.TarInfo("././@LongLink" if kind == "long name" else "train/cat/0.png")
    info.type = tarfile.GNUTYPE_LONGNAME if kind == "long name" else tarfile.REGTYPE
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024)


@pytest.mark.parametrize("kind", ["file", "long name"])
@pytest.mark.parametrize("name", ["claims.tar", "claims.tar.gz"])
def test_a_member_claiming_more_than_the_archive_holds_allocates_nothing(tmp_path, kind, name):
    archive = tmp_path / name
    content = _claiming(kind, 2**33)
    archive.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)

    readers = [lambda path: list(iter_files(path))]
    readers += [first_file_name] if kind == "long name" else []  # it reads no file's data
    for read in readers:
        with pytest.raises(DataError, match=r"claims\.tar(\.gz)?: not a readable tar archive"), \
                allocates_at_most(16):
            read(archive)


@pytest.mark.parametrize("name, compress", [("t.tar.bz2", bz2.compress),
                                            ("t.tar.xz", lzma.compress)])
def test_bzip2_and_xz_archives_are_read_too(tree, tmp_path, name, compress):
    archive = tar_folder(tree, tmp_path / "t.tar")
    (tmp_path / name).write_bytes(compress(archive.read_bytes()))

    assert [parts for parts, _ in iter_files(tmp_path / name)] == [
        ("a", "b", "two.txt"), ("a", "one.txt"), ("three.txt",)]
