"""A web server of another tool (TensorBoard, optuna-dashboard) run for a test: a subprocess
on 127.0.0.1 that the test talks to through its URL and that never outlives the test.

`running` starts it on a free port, waits until it answers, and stops it (its whole process
group) when the block ends however it ends; coreutils' `timeout` stops it after LIFETIME
seconds even if the test process dies first.
"""
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

LIFETIME = 600  # seconds a server may live at most
STARTUP = 60  # seconds it may take to answer
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no $http_proxy


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now (int)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url, ready):
    try:
        with _DIRECT.open(url, timeout=5) as response:
            return response.status == 200 and ready(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _wait_until_answering(server, url, ready, log):
    deadline = time.monotonic() + STARTUP
    while not _answers(url, ready):
        if server.poll() is not None or time.monotonic() > deadline:
            why = "exited" if server.returncode is not None else f"not answering after {STARTUP} s"
            pytest.fail(f"{url}: server {why}: {log.read_text()[-2000:]}", pytrace=False)
        time.sleep(0.2)


def _stop(server):
    """Terminate the server's process group, then kill it if it lingers."""
    with contextlib.suppress(ProcessLookupError):  # it is its group's leader
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@contextlib.contextmanager
def running(command, path="", ready=lambda body: True, cwd=None):
    """Run `command` (a list; its "{port}" items become a free port's number) as a server,
    in the folder `cwd` (default: this process's); yields its base URL "http://127.0.0.1:P/"
    once GET base + `path` answers 200 with a body (bytes) that `ready` accepts. Its output
    goes to a log file shown in the failure when it does not start."""
    port = free_port()
    command = [str(part).replace("{port}", str(port)) for part in command]
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="server-") as folder:
        log = Path(folder) / "server.log"
        with open(log, "wb") as output:
            server = subprocess.Popen(["timeout", "--kill-after=10", str(LIFETIME), *command],
                                      stdin=subprocess.DEVNULL, stdout=output,
                                      stderr=subprocess.STDOUT, cwd=cwd,
                                      start_new_session=True)
        try:
            _wait_until_answering(server, url + path, ready, log)
            yield url
        finally:
            _stop(server)

