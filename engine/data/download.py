"""Downloading the official CIFAR-10 python release, checked by md5 before it is kept."""
import hashlib
from pathlib import Path
from urllib.parse import urlparse

from ..errors import DataError
from ..util.atomic import atomic_write
from ..util.progress import progress_bar

CIFAR10_PYTHON_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_PYTHON_MD5 = "c58f30108f718f92721af3b95e74349a"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


def file_md5(path):
    """Hex md5 of a file's content."""
    digest = hashlib.md5()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url, out, progress):
    """Copy the body at `url` into the open file `out`; return its hex md5."""
    import http.client  # the network modules load only when a download runs
    import urllib.error
    import urllib.request

    digest, received = hashlib.md5(), 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            expected = int(response.headers.get("Content-Length") or 0) or None
            with progress_bar(expected, f"downloading {url}", progress) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise DataError(f"{url}: HTTP error {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DataError(f"{url}: cannot connect ({err.reason})") from None
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise DataError(f"{url}: download failed ({type(err).__name__}: {err})") from None
    if expected is not None and received < expected:
        raise DataError(f"{url}: transfer cut short, {received} of {expected} bytes")
    return digest.hexdigest()


def download(dest, url=CIFAR10_PYTHON_URL, md5=CIFAR10_PYTHON_MD5, progress=True):
    """Download `url` into the folder `dest`, keeping the file only if its md5 matches.

    The body goes to a temporary file in `dest`, renamed to the URL's file name after the
    check (`atomic_write`). A file of that name whose md5 already matches is kept and not
    fetched again.

    Parameters
    ----------
    dest : path of a folder, created if need be
    url, md5 : what to fetch and its hex md5
    progress : bool, False hides the progress bar (shown on a terminal only)

    Returns
    -------
    Path of the downloaded file.

    Raises
    ------
    DataError : naming the URL, on a refused connection, an HTTP error, a truncated transfer
        or an md5 mismatch; no file is left behind
    UserError : naming the file, when `dest` cannot be written
    """
    dest = Path(dest).expanduser()
    target = dest / (Path(urlparse(url).path).name or "download")
    if target.is_file() and file_md5(target) == md5:
        return target
    with atomic_write(target) as out:
        got = _fetch(url, out, progress)
        if got != md5:
            raise DataError(f"{url}: md5 {got} does not match the expected {md5}")
    return target
