"""The calls whose POSIX form other systems lack, in one portable form each: open flags,
whether a process lives, the physical memory, a read at an offset, the CPU's model and
feature flags. (Locks are `lock.py`'s, the BLAS libraries `runtime.blas_libraries`'.)"""
import os
import platform

CPUINFO = "/proc/cpuinfo"  # Linux's; other systems have no such file
# Open flags that some systems lack, 0 there: Windows has no O_NONBLOCK (nor FIFOs that block
# an open), and opens files as text, translating line ends, unless given O_BINARY.
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
O_BINARY = getattr(os, "O_BINARY", 0)


def pid_alive(pid):
    """Whether a process `pid` exists (a zombie counts; another user's process too).

    Not os.kill(pid, 0): on Windows that terminates the process."""
    if pid <= 0:  # kill(0) and kill(-1) would address process groups
        return False
    import psutil  # on first use: its import costs a start-up ~15 ms

    try:
        return psutil.pid_exists(pid)
    except OverflowError:  # not a pid this system can have
        return False


def physical_memory():
    """Bytes of the machine's physical memory: POSIX's sysconf, else psutil's (whose
    import would cost every run's start ~15 ms where sysconf answers)."""
    if "SC_PHYS_PAGES" in getattr(os, "sysconf_names", {}):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    import psutil

    return psutil.virtual_memory().total


def read_at(fd, size, offset):
    """Up to `size` bytes of the open file `fd` from `offset` (os.pread is POSIX only).

    Unlike pread it moves the file's position; appends (O_APPEND) still go to the end."""
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def _cpuinfo(key):
    """The value of the first `key` line of Linux's CPUINFO, or "" (elsewhere too)."""
    try:
        with open(CPUINFO) as file:
            return next((line.split(":", 1)[1].strip() for line in file
                         if line.split(":", 1)[0].strip() == key), "")
    except (OSError, IndexError):
        return ""


def cpu_flags():
    """The CPU's feature flags, as Linux lists them; an empty set elsewhere."""
    return set(_cpuinfo("flags").split())


def cpu_model():
    """The CPU's model name (Linux's CPUINFO, else what `platform` says), or ""."""
    return _cpuinfo("model name") or platform.processor()
