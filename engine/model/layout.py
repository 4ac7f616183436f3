"""Where a network's tensors lie in its flat slabs, and what memory they take.

Every tensor of a layer is a view at an offset into one of three slabs (parameters, running
statistics, activations); offsets start on 64-byte lines. The layout is a function of the
spec and the most rows a batch may have, computed before anything is allocated, so that a
network too large for the machine is refused by the setting that makes it so.
"""
from dataclasses import replace

import numpy as np

from ..errors import SettingError
from ..kernels import step
from ..util.system import physical_memory

NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64}
_ALIGN = 16  # slab offsets start on 64-byte lines for float32


class _Slab:
    """Hands out aligned offsets into a flat array that is allocated once at the end."""

    def __init__(self):
        self.size = 0

    def take(self, count):
        offset = self.size
        self.size = -(-(offset + count) // _ALIGN) * _ALIGN
        return offset


def plan_layout(spec, max_batch):
    """Offsets of every layer's tensors: (layout int64[L, N_FIELDS], sizes of the slabs)."""
    layout = np.full((spec.n_layers, step.N_FIELDS), -1, dtype=np.int64)
    params, running, acts = _Slab(), _Slab(), _Slab()
    dims = spec.dims
    for l in range(spec.n_layers):  # weight matrices first: L2 decays params[:n_weights]
        layout[l, step.W] = params.take(dims[l + 1] * dims[l])
    n_weights = params.size
    for l in range(spec.n_layers):
        m = dims[l + 1]
        row = layout[l]
        bn = spec.batch_norm and l < spec.n_layers - 1
        if bn:
            row[step.GAMMA] = params.take(m)
            row[step.BETA] = params.take(m)
            row[step.RUN_MEAN] = running.take(m)
            row[step.RUN_VAR] = running.take(m)
            row[step.S] = acts.take(max_batch * m)
            row[step.S_HAT] = acts.take(max_batch * m)
            row[step.MU] = acts.take(m)
            row[step.INV_STD] = acts.take(m)
        else:
            row[step.B] = params.take(m)
        row[step.H] = acts.take(max_batch * m)
        if not bn:
            row[step.S] = row[step.H]
    return layout, {"params": params.size, "running": running.size, "acts": acts.size,
                    "weights": n_weights}


def buffer_bytes(spec, max_batch):
    """Bytes of the slabs and batch buffers of a network of `spec` taking max_batch rows."""
    _, size = plan_layout(spec, max_batch)
    floats = (3 * size["params"] + size["running"] + size["acts"]
              + max_batch * (2 * max(spec.dims[1:]) + 1 + spec.input_size))
    return floats * np.dtype(NUMPY_DTYPES[spec.dtype]).itemsize + 8 * max_batch


# The sizes a network's memory grows with, and the settings that set them in a training run.
TRAINING_SIZES = {"rows": "batch_size", "hidden": "hidden"}


def check_memory(spec, max_batch, sizes=TRAINING_SIZES, need=buffer_bytes):
    """SettingError when need(spec, max_batch) bytes (the network's buffers) could not fit
    in this machine's memory, before anything is allocated. It names the setting, of
    sizes ({size: setting}; sizes: rows, hidden, input_size, n_classes), whose size at
    its least would cut the need the most: the one that is too large."""
    needed = need(spec, max_batch)
    have = physical_memory()
    if needed > have:
        smallest = {"rows": (spec, 1),
                    "hidden": (replace(spec, hidden=(1,) * len(spec.hidden)), max_batch),
                    "input_size": (replace(spec, input_size=1), max_batch),
                    "n_classes": (replace(spec, n_classes=2), max_batch)}
        culprit = min(sizes, key=lambda size: need(*smallest[size]))
        raise SettingError(sizes[culprit], f"gives a network that needs "
                                           f"{needed / 2**30:.3g} GiB of memory; this "
                                           f"machine has {have / 2**30:.3g} GiB")
