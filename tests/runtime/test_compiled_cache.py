"""runtime/compiled_cache.py: compiled code cached from older kernel sources is dropped, by one
process at a time."""
import threading

from cifar_engine.runtime.compiled_cache import drop_stale_compiled_code
from cifar_engine.util.lock import locked


def test_cache_is_kept_while_sources_stay_and_dropped_when_one_changes(tmp_path):
    (tmp_path / "dense.py").write_text("x = 1\n")
    (tmp_path / "step.py").write_text("y = 2\n")
    cache = tmp_path / "__pycache__"
    drop_stale_compiled_code(tmp_path)  # first sight: whatever is cached has no stamp
    compiled = cache / "step.train_step-1.py311.1.nbc"
    compiled.write_bytes(b"machine code")
    (cache / "step.train_step-1.py311.nbi").write_bytes(b"index")
    bytecode = cache / "step.cpython-311.pyc"
    bytecode.write_bytes(b"python bytecode")

    drop_stale_compiled_code(tmp_path)
    assert compiled.exists()

    (tmp_path / "dense.py").write_text("x = 3\n")  # the callee changes, not step.py
    drop_stale_compiled_code(tmp_path)
    assert not list(cache.glob("*.nb[ic]"))
    assert bytecode.exists()  # only Numba's files go


def test_a_package_whose_cache_cannot_be_written_is_left_alone(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    drop_stale_compiled_code(blocker / "package")  # no __pycache__ can be made under a file


def test_processes_starting_together_take_turns_at_the_compiled_code(tmp_path):
    (tmp_path / "dense.py").write_text("x = 1\n")
    drop_stale_compiled_code(tmp_path)
    compiled = tmp_path / "__pycache__" / "dense.gemm-1.py311.1.nbc"
    compiled.write_bytes(b"machine code")
    (tmp_path / "dense.py").write_text("x = 2\n")  # its cache is stale now
    with locked(tmp_path / "__pycache__" / "kernel-sources.lock"):  # another worker checks
        other = threading.Thread(target=drop_stale_compiled_code, args=(tmp_path,))
        other.start()
        other.join(0.3)
        assert other.is_alive() and compiled.exists()
    other.join(10)
    assert not other.is_alive() and not compiled.exists()
