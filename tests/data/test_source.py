import os

import pytest

from cifar_engine.data import resolve_source
from cifar_engine.data import source as source_module
from cifar_engine.data.source import (CIFAR10_PYTHON, CIFAR100_PYTHON, IDX, IMAGE_FOLDER,
                                      detect_source)
from cifar_engine.errors import DataError
from fakes import tar_folder


def test_a_given_path_is_used(cifar10_folder, monkeypatch):
    monkeypatch.setenv("CIFAR_ENGINE_DATA", "/elsewhere")

    assert resolve_source(str(cifar10_folder.path)) == cifar10_folder.path


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'}: no such file or folder"):
        resolve_source(tmp_path / "nope")


def test_cifar_engine_data_is_the_fallback(cifar10_folder, monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR_ENGINE_DATA", str(cifar10_folder.path))
    assert resolve_source() == cifar10_folder.path

    monkeypatch.setenv("CIFAR_ENGINE_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataError, match=f"CIFAR_ENGINE_DATA={tmp_path / 'gone'}: no such"):
        resolve_source()


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(source_module, "data_home", lambda: home)
    return home


def test_the_data_folder_is_searched_last(data_home):
    (data_home / "cifar-10-jpeg.tar.gz").write_bytes(b"")
    assert resolve_source() == data_home / "cifar-10-jpeg.tar.gz"

    (data_home / "cifar-10-batches-py").mkdir()
    assert resolve_source() == data_home / "cifar-10-batches-py"


def test_no_data_anywhere_says_how_to_get_some(data_home):
    with pytest.raises(DataError) as error:
        resolve_source()

    for way in ("--data SRC", "CIFAR_ENGINE_DATA", "cifar-engine data download", str(data_home)):
        assert way in str(error.value)


@pytest.mark.parametrize("fixture, kind", [
    ("cifar10_folder", CIFAR10_PYTHON), ("cifar10_archive", CIFAR10_PYTHON),
    ("cifar100_folder", CIFAR100_PYTHON), ("cifar100_archive", CIFAR100_PYTHON),
    ("image_tree", IMAGE_FOLDER), ("image_archive", IMAGE_FOLDER), ("idx_folder", IDX),
])
def test_the_kind_is_detected_from_the_path(request, fixture, kind):
    path = request.getfixturevalue(fixture).path

    assert detect_source(path) == (kind, path)


def test_an_archive_without_its_top_folder_is_still_detected(cifar100_folder, tmp_path):
    archive = tar_folder(cifar100_folder.path, tmp_path / "flat.tar")

    assert detect_source(archive) == (CIFAR100_PYTHON, archive)


def test_a_folder_holding_a_known_source_leads_to_it(cifar10_folder):
    assert detect_source(cifar10_folder.path.parent) == (CIFAR10_PYTHON, cifar10_folder.path)


def test_an_unknown_folder(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")

    with pytest.raises(DataError, match="stuff: not a data set I can read"):
        detect_source(tmp_path / "stuff")


@pytest.mark.parametrize("content", [b"\x1f\x8b\x08\x00 cut", b"plain text, no archive"])
def test_a_broken_archive_is_named(tmp_path, content):
    (tmp_path / "data.tar.gz").write_bytes(content)

    with pytest.raises(DataError, match=r"data\.tar\.gz: not a readable tar archive"):
        detect_source(tmp_path / "data.tar.gz")


def test_a_pipe_is_neither_file_nor_folder(tmp_path):
    os.mkfifo(tmp_path / "pipe")

    with pytest.raises(DataError, match=f"{tmp_path / 'pipe'}: not a file or folder"):
        detect_source(tmp_path / "pipe")
