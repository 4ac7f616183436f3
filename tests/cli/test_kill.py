"""`cifar-engine train` killed by SIGKILL at random moments, then resumed until it finishes."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cifar_engine.model.npz import load_network
from cifar_engine.training.folder import RunFolder
from fakes import write_image_tree

CLI = [sys.executable, "-m", "cifar_engine.cli.main"]
# A tiny net whose training time goes mostly to checkpoints (each one is fsync'd), so that
# most kills during training land inside a checkpoint write.
TINY = ["--hidden", "16", "--batch-size", "10", "--momentum", "0.9", "--steps", "1500",
        "--eval-every", "50", "--checkpoint-every", "5"]
KILLS = 6
STARTUP_TIMEOUT = 300  # seconds; a cold Numba cache compiles every kernel first


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "images"
    write_image_tree(root, per_class=(100, 20), size=(8, 8))
    return root


def _params(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k.startswith(("param/", "running/"))}


def _checkpoint_step(path):
    try:
        with np.load(path) as z:
            return int(z["extra/step"])
    except FileNotFoundError:
        return -1


def _wait_for_step(proc, path, step):
    """Wait until `proc` has checkpointed `step` or a later one (or has ended)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while proc.poll() is None and _checkpoint_step(path) < step:
        assert time.monotonic() < deadline, f"no checkpoint of step {step} written"
        time.sleep(0.001)


def _run_until_killed(command, folder, step, delay, env):
    """Start `command`; SIGKILL it `delay` s after it has checkpointed `step`. True if killed."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_step(proc, folder.checkpoint, step)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    err = proc.communicate()[1]
    if proc.returncode == -signal.SIGKILL:
        return True
    assert proc.returncode == 0, err
    return False


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result(images, tmp_path):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    args = ["--data", str(images), *TINY]
    whole = subprocess.run([*CLI, "train", *args, "--out", str(tmp_path / "whole")], env=env,
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr

    folder = RunFolder(tmp_path / "cut")
    rng = random.Random(20261130)
    command = [*CLI, "train", *args, "--out", str(folder.path)]
    kills = mid_write = last_step = 0
    temps = set()
    # Each process is killed a random time after a random number of steps of progress,
    # so that the kills are spread over the run whatever the machine's speed.
    while kills < KILLS and _run_until_killed(command, folder, last_step + rng.randint(5, 150),
                                              rng.uniform(0, 0.02), env):
        kills += 1
        left = {name for name in os.listdir(folder.path) if name.endswith(".tmp")}
        mid_write += bool(left - temps)
        temps |= left
        _, extra = load_network(folder.checkpoint)  # a UserError if the kill broke it
        assert int(extra["step"]) >= last_step
        last_step = int(extra["step"])
        folder.read_metrics()
        command = [*CLI, "train", "--resume", str(folder.path)]
    resumed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    print(f"{kills} kills, {mid_write} during a write; last checkpoint before the end at "
          f"step {last_step}")

    assert kills == KILLS
    a, b = _params(tmp_path / "whole" / "model.npz"), _params(folder.model)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (tmp_path / "whole" / "metrics.csv").read_text() == folder.metrics.read_text()
    left = [name for name in os.listdir(folder.path) if name.endswith(".tmp") or name == ".lock"]
    assert left == [], "left behind by the killed runs"
