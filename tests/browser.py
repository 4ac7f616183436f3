"""Pages in a real browser, offline: Debian's Chromium, headless, for the dashboard tests.

`serve` puts a folder on 127.0.0.1; `screenshot` and `dump_dom` open a page in a fresh
Chromium profile that can reach 127.0.0.1 and nothing else, so a page that needs the
internet fails here as it would on an offline machine. `make test-slow` installs Chromium
when it is missing; a test that needs it fails, never skips, without it.
"""
import contextlib
import functools
import shutil
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome")
# Every host name fails to resolve but 127.0.0.1; no proxy either.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-proxy-server"]
TIMEOUT = 120  # seconds for one browser run (the page's own time is virtual, see _run)


def chromium_path():
    """The Chromium (or Chrome) executable; fails the test with how to install it."""
    for name in NAMES:
        if path := shutil.which(name):
            return path
    pytest.fail("chromium not found: `make test-slow` installs Debian's chromium "
                "(or: apt-get install chromium)", pytrace=False)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@contextlib.contextmanager
def serve(folder):
    """Serve `folder` on 127.0.0.1 at a free port; yields its base URL ("http://127.0.0.1:P/")."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join()


def _run(url, flags, budget_ms, allow_errors):
    """Run headless Chromium on `url` with `flags`; returns its stdout (str).

    --virtual-time-budget lets the page run `budget_ms` of its own time (timers, loads) as
    fast as it can, then the dump or screenshot is taken: no sleeping, no race. The page's
    console goes to stderr; an uncaught error there fails the test unless `allow_errors`.
    """
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                   "--enable-logging=stderr", "--v=0",
                   f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
                   *OFFLINE, *flags, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        pytest.fail(f"chromium exited {done.returncode} on {url}: {done.stderr[-2000:]}",
                    pytrace=False)
    errors = [line for line in done.stderr.splitlines()
              if ":CONSOLE" in line and "Uncaught" in line]
    if errors and not allow_errors:
        pytest.fail(f"{url}: the page threw: {errors[0]}", pytrace=False)
    return done.stdout


def dump_dom(url, budget_ms=10_000, allow_errors=False):
    """The page's DOM (str, serialized HTML) after its scripts ran for `budget_ms`."""
    return _run(url, ["--dump-dom"], budget_ms, allow_errors)


def screenshot(url, path, size=(1200, 800), budget_ms=10_000, allow_errors=False):
    """Save a PNG of the page at `url`, `size` = (width, height) pixels, to `path`; returns it."""
    path = Path(path)
    _run(url, [f"--screenshot={path}", f"--window-size={size[0]},{size[1]}"], budget_ms,
         allow_errors)
    if not path.is_file():
        pytest.fail(f"chromium wrote no screenshot of {url}", pytrace=False)
    return path
