"""Reading tar archives (plain or gzip) in place, member by member, with one error policy."""
import tarfile
import zlib
from pathlib import PurePosixPath

from ..errors import DataError
from ..progress import progress_bar
from .reasons import reason

# What a truncated, corrupt or non-tar file raises somewhere inside tarfile or gzip.
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


def _broken(path, err):
    return DataError(f"{path}: not a readable tar archive, or truncated ({reason(err)})")


def first_file_name(path):
    """Name of the first regular file in the tar archive at `path` (reads headers only)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile():
                    return member.name
    except _READ_ERRORS as err:
        raise _broken(path, err) from None
    raise DataError(f"{path}: the archive holds no files")


def iter_files(path, progress=None):
    """Yield (parts, data) for each regular file of a tar archive, in archive order.

    Parameters
    ----------
    path : Path of a .tar, .tar.gz or .tgz file
    progress : bool or None, show a byte-count progress bar on a terminal (False: never)

    Yields
    ------
    parts : tuple of str, the member's path components ("." components dropped)
    data : bytes, the member's content
    """
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
            with progress_bar(path.stat().st_size, f"reading {path.name}", progress) as bar:
                done = 0
                for member in tar:
                    if member.isfile():
                        data = tar.extractfile(member).read()
                        bar.update(raw.tell() - done)
                        done = raw.tell()
                        yield PurePosixPath(member.name).parts, data
                # tarfile stops at the end-of-archive blocks: read on to the end so that
                # gzip checks its length and CRC trailer and a cut-off file is noticed.
                while tar.fileobj.read(1 << 20):
                    pass
    except _READ_ERRORS as err:
        raise _broken(path, err) from None
