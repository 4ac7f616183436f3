"""Start-up of a new process to its first training step (asv_bench/startup.py's measure):
with an empty Numba cache (every kernel compiles) and with that cache warm."""
import sys
import tempfile
from pathlib import Path

from .common import TINY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from startup import first_step_seconds  # noqa: E402


class StartUp:
    """Seconds from before the interpreter starts to the end of a 3072-50-10 net's first
    step, cold and then warm in a cache folder of its own (measured once for both)."""

    unit = "seconds"
    timeout = 600

    def setup_cache(self):
        if TINY:  # the test suite's liveness check: warm starts in the usual cache only
            return {"cold": first_step_seconds(), "warm": first_step_seconds()}
        with tempfile.TemporaryDirectory() as cache:
            return {"cold": first_step_seconds(cache), "warm": first_step_seconds(cache)}

    def track_cold_start(self, seconds):
        return seconds["cold"]

    def track_warm_start(self, seconds):
        return seconds["warm"]
