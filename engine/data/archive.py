"""Reading tar archives (plain, gzip, bzip2 or xz) in place, member by member, with one error
policy, and never allocating more than the archive holds."""
import bz2
import contextlib
import gzip
import lzma
import tarfile
import zlib
from pathlib import PurePosixPath

from ..errors import DataError
from ..util.progress import progress_bar
from .reasons import reason

CHUNK_BYTES = 1 << 20
# What a truncated, corrupt or non-tar file raises somewhere inside tarfile or a decompressor.
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
# Leading bytes of a compressed stream -> the reader that decompresses it.
_COMPRESSIONS = {
    b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    b"BZh": bz2.BZ2File,
    b"\xfd7zXZ\x00": lzma.LZMAFile,
}


def read_at_most(file, n):
    """Up to `n` bytes of `file`, a chunk at a time.

    A buffered file's read(n) allocates n bytes before it reads, and n often comes from a
    header that may lie; this allocates only for the bytes there are.
    """
    parts = []
    while n > 0 and (part := file.read(min(n, CHUNK_BYTES))):
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


class _ChunkedReads:
    """The file that tarfile reads: every read goes through `read_at_most`, since tarfile
    reads a member's data, or a long name, in one call with the size its header claims."""

    def __init__(self, file):
        self.file = file

    def read(self, n=-1):
        return self.file.read() if n is None or n < 0 else read_at_most(self.file, n)

    def seek(self, offset, whence=0):
        return self.file.seek(offset, whence)

    def tell(self):
        return self.file.tell()

    def seekable(self):
        return True


@contextlib.contextmanager
def _open_tar(raw):
    """The TarFile of the open binary file `raw`, decompressed as its first bytes tell."""
    head = raw.read(8)
    raw.seek(0)
    opener = next((open_ for magic, open_ in _COMPRESSIONS.items() if head.startswith(magic)),
                  contextlib.nullcontext)
    with opener(raw) as file, tarfile.open(fileobj=_ChunkedReads(file), mode="r:") as tar:
        yield tar


def _broken(path, err):
    return DataError(f"{path}: not a readable tar archive, or truncated ({reason(err)})")


def first_file_name(path):
    """Name of the first regular file in the tar archive at `path` (reads headers only)."""
    try:
        with open(path, "rb") as raw, _open_tar(raw) as tar:
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
    path : Path of a .tar, .tar.gz or .tgz file (or .tar.bz2, .tar.xz)
    progress : bool or None, show a byte-count progress bar on a terminal (False: never)

    Yields
    ------
    parts : tuple of str, the member's path components ("." components dropped)
    data : bytes, the member's content
    """
    try:
        with open(path, "rb") as raw, _open_tar(raw) as tar:
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
                while tar.fileobj.read(CHUNK_BYTES):
                    pass
    except _READ_ERRORS as err:
        raise _broken(path, err) from None
