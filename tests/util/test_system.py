"""util/system.py: the portable forms of the calls that differ between operating systems."""
import os
import platform
import subprocess
import sys

from cifar_engine.util import system
from cifar_engine.util.system import cpu_flags, cpu_model, pid_alive, read_at


def test_pid_alive():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # exited and reaped
    assert pid_alive(os.getpid())
    assert not pid_alive(proc.pid)
    assert not pid_alive(0) and not pid_alive(-1) and not pid_alive(2**80)


def test_read_at_reads_at_an_offset_and_appends_still_go_to_the_end(tmp_path):
    fd = os.open(tmp_path / "journal", os.O_RDWR | os.O_APPEND | os.O_CREAT | system.O_BINARY)
    try:
        os.write(fd, b"abc")
        assert read_at(fd, 1, 1) == b"b" and read_at(fd, 5, 2) == b"c"
        os.write(fd, b"d")
    finally:
        os.close(fd)
    assert (tmp_path / "journal").read_bytes() == b"abcd"


def test_the_cpu_facts_come_from_linux_cpuinfo(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"
                       "flags\t\t: fpu avx2 fma\nvmx flags\t: ept\n")
    monkeypatch.setattr(system, "CPUINFO", str(cpuinfo))
    assert cpu_model() == "AMD EPYC 7B13"
    assert cpu_flags() == {"fpu", "avx2", "fma"}


def test_without_cpuinfo_the_model_is_the_platforms_and_there_are_no_flags(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(system, "CPUINFO", str(tmp_path / "no-such-file"))  # macOS, Windows
    assert cpu_model() == platform.processor()
    assert cpu_flags() == set()


def test_physical_memory_is_sysconfs_where_it_answers_and_psutils_elsewhere(monkeypatch):
    import psutil

    total = psutil.virtual_memory().total
    assert system.physical_memory() == total  # Linux: sysconf's pages, the same bytes
    monkeypatch.setattr(system.os, "sysconf_names", {}, raising=False)  # Windows has none
    assert system.physical_memory() == total
