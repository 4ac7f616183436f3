"""Fixtures: tiny data sets in every format the engine reads, built in tmp_path, and a
local HTTP server for the download tests."""
import dataclasses
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import settings

# CIFAR_ENGINE_TEST_NO_POSIX=1 (make test-portable): the run, and every Python process it
# starts, without fcntl and os.pread, as on Windows. First, before cifar_engine loads.
if os.environ.get("CIFAR_ENGINE_TEST_NO_POSIX") == "1":
    sys.path.insert(0, str(Path(__file__).parent / "no_posix"))
    import hide_posix

    hide_posix.hide_here_and_in_children()

# CI judges one commit, so there the property tests draw the same inputs on every run; a
# developer's run explores new ones each time (and keeps what failed in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# scikit-learn's estimator checks include one with array-API dispatch on NumPy inputs, which
# SciPy allows only when this is set before it is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

from cifar_engine.data import load_dataset  # noqa: E402
from fakes import tar_folder, write_cifar10, write_cifar100, write_idx, write_image_tree
from real_data import CIFAR10_JPEG, require


@pytest.fixture(autouse=True)
def isolated_data_env(monkeypatch, tmp_path_factory):
    """No test reads the developer's $CIFAR_ENGINE_DATA or writes the checkout's cache."""
    monkeypatch.delenv("CIFAR_ENGINE_DATA", raising=False)
    monkeypatch.setenv("CIFAR_ENGINE_CACHE", str(tmp_path_factory.getbasetemp() / "env-cache"))


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def _archived(fake, name):
    """The fake's folder as the archive dl/`name`, under a top folder of the folder's name."""
    archive = fake.path.parent / "dl" / name
    archive.parent.mkdir(exist_ok=True)
    return dataclasses.replace(fake, path=tar_folder(fake.path, archive, top=fake.path.name))


@pytest.fixture
def cifar10_folder(tmp_path):
    return write_cifar10(tmp_path / "cifar-10-batches-py")


@pytest.fixture
def cifar10_archive(cifar10_folder):
    return _archived(cifar10_folder, "cifar-10-python.tar.gz")


@pytest.fixture
def cifar100_folder(tmp_path):
    return write_cifar100(tmp_path / "cifar-100-python")


@pytest.fixture
def cifar100_archive(cifar100_folder):
    return _archived(cifar100_folder, "cifar-100-python.tar.gz")


@pytest.fixture
def image_tree(tmp_path):
    return write_image_tree(tmp_path / "images")


@pytest.fixture
def image_archive(image_tree):
    return _archived(image_tree, "images.tar.gz")


@pytest.fixture
def idx_folder(tmp_path):
    return write_idx(tmp_path / "fashion")


class _Handler(BaseHTTPRequestHandler):
    """Serves `server.files[path] = (body, content_length)`; 404 for anything else."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path not in self.server.files:
            self.send_error(404)
            return
        body, length = self.server.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """An HTTP/1.0 server on 127.0.0.1 in a thread: add files with `serve(path, body)`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.requests = {}, []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"

    def serve(path, body, length=None):
        server.files[path] = (body, len(body) if length is None else length)
        return server.url + path

    server.serve = serve
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory):
    """One cache per test session: the JPEG archive is decoded once."""
    return tmp_path_factory.mktemp("real-data-cache")


@pytest.fixture(scope="session")
def cifar10_jpeg(real_cache):
    """All of CIFAR-10 from the offline JPEG archive."""
    require(CIFAR10_JPEG, "the offline CIFAR-10 JPEG archive lives in ../shared/data/")
    return load_dataset(CIFAR10_JPEG, cache_dir=real_cache, progress=False)


@pytest.fixture
def no_fsync(monkeypatch):
    """Atomic writes without their fsync: the property tests write hundreds of files."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)
