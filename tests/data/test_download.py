import hashlib
import socket

import pytest

from cifar_engine.data import download, load_dataset
from cifar_engine.errors import DataError, UserError
from fakes import tar_folder

ARCHIVE = "/cifar-10-python.tar.gz"


@pytest.fixture
def archive(cifar10_folder, tmp_path):
    """(bytes, md5) of a small CIFAR-10 python archive."""
    path = tar_folder(cifar10_folder.path, tmp_path / "served.tar.gz", top="cifar-10-batches-py")
    body = path.read_bytes()
    return body, hashlib.md5(body).hexdigest()


def _files(folder):
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_download_saves_the_checked_archive(http_server, archive, tmp_path, cache_dir,
                                            cifar10_folder):
    body, md5 = archive
    url = http_server.serve(ARCHIVE, body)

    path = download(tmp_path / "dest", url=url, md5=md5, progress=False)

    assert path == tmp_path / "dest" / "cifar-10-python.tar.gz"
    assert path.read_bytes() == body
    assert _files(tmp_path / "dest") == ["cifar-10-python.tar.gz"]
    assert load_dataset(path, cache_dir=cache_dir).class_names == cifar10_folder.class_names


def test_a_file_with_the_right_md5_is_not_fetched_again(http_server, archive, tmp_path):
    body, md5 = archive
    url = http_server.serve(ARCHIVE, body)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(body)

    assert download(tmp_path, url=url, md5=md5) == tmp_path / "cifar-10-python.tar.gz"
    assert http_server.requests == []


def test_a_file_with_the_wrong_md5_is_replaced(http_server, archive, tmp_path):
    body, md5 = archive
    url = http_server.serve(ARCHIVE, body)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"an older, broken download")

    download(tmp_path, url=url, md5=md5)

    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == body
    assert http_server.requests == [ARCHIVE]


def test_a_truncated_transfer(http_server, archive, tmp_path):
    body, md5 = archive
    url = http_server.serve(ARCHIVE, body, length=len(body) + 1000)

    message = f"{url}: transfer cut short, {len(body)} of {len(body) + 1000} bytes"
    with pytest.raises(DataError, match=message):
        download(tmp_path / "dest", url=url, md5=md5)

    assert _files(tmp_path / "dest") == []


def test_an_md5_mismatch(http_server, archive, tmp_path):
    body, _ = archive
    url = http_server.serve(ARCHIVE, body)

    with pytest.raises(DataError, match=f"{url}: md5 .* does not match the expected 0123"):
        download(tmp_path / "dest", url=url, md5="0123")

    assert _files(tmp_path / "dest") == []


def test_an_http_error(http_server, tmp_path):
    url = http_server.url + "/missing.tar.gz"

    with pytest.raises(DataError, match=f"{url}: HTTP error 404"):
        download(tmp_path / "dest", url=url, md5="0")

    assert _files(tmp_path / "dest") == []


def test_a_refused_connection(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago, with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"

    with pytest.raises(DataError, match=f"{url}: cannot connect .*refused"):
        download(tmp_path / "dest", url=url, md5="0")

    assert _files(tmp_path / "dest") == []


def test_a_destination_that_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("not a folder")

    with pytest.raises(UserError, match="file/x.tar.gz: cannot write"):
        download(tmp_path / "file", url="http://127.0.0.1:9/x.tar.gz", md5="0")
