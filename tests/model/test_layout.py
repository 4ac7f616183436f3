"""model/layout.py: where a network's tensors lie in its slabs, and the memory check that
refuses a network too large for the machine before anything is allocated."""
import numpy as np
import pytest

from cifar_engine.errors import SettingError
from cifar_engine.kernels import step
from cifar_engine.model import layout
from cifar_engine.model.layout import buffer_bytes, check_memory, plan_layout
from cifar_engine.model.spec import NetworkSpec


@pytest.mark.parametrize("batch_norm", [False, True])
def test_tensors_lie_apart_on_aligned_offsets_weights_first(batch_norm):
    spec = NetworkSpec(input_size=30, n_classes=7, hidden=(13, 5), batch_norm=batch_norm)
    offsets, size = plan_layout(spec, max_batch=9)
    dims = spec.dims
    params = []  # (offset, length) of every parameter tensor
    for l in range(spec.n_layers):
        m, hidden = dims[l + 1], batch_norm and l < spec.n_layers - 1
        params.append((offsets[l, step.W], m * dims[l]))
        params += ([(offsets[l, step.GAMMA], m), (offsets[l, step.BETA], m)] if hidden
                   else [(offsets[l, step.B], m)])
        assert (offsets[l, step.S] == offsets[l, step.H]) != hidden
    params.sort()
    assert all(off % 16 == 0 for off, _ in params)
    assert all(a + n <= b for (a, n), (b, _) in zip(params, params[1:]))
    assert params[-1][0] + params[-1][1] <= size["params"]
    last = max(range(spec.n_layers), key=lambda l: offsets[l, step.W])
    end = offsets[last, step.W] + dims[last + 1] * dims[last]
    assert size["weights"] == -(-end // 16) * 16  # L2 decays params[:n_weights]
    weights_end = max(offsets[l, step.W] for l in range(spec.n_layers))
    assert all(off > weights_end for off, _ in params if off not in offsets[:, step.W])


@pytest.mark.parametrize("hidden, max_batch, culprit", [
    ((4000,), 10, "hidden"),
    ((10,), 10**6, "batch_size"),
])
def test_a_network_beyond_the_memory_is_refused_naming_its_setting(monkeypatch, hidden,
                                                                   max_batch, culprit):
    spec = NetworkSpec(input_size=3072, n_classes=10, hidden=hidden)
    need = buffer_bytes(spec, max_batch)
    monkeypatch.setattr(layout, "physical_memory", lambda: need - 1)
    with pytest.raises(SettingError, match=f"^{culprit} gives a network that needs"):
        check_memory(spec, max_batch)
    monkeypatch.setattr(layout, "physical_memory", lambda: need)
    check_memory(spec, max_batch)


def test_buffer_bytes_counts_the_slabs_a_network_allocates():
    from cifar_engine.model.network import Network

    spec = NetworkSpec(input_size=20, n_classes=3, hidden=(8,), batch_norm=True)
    net = Network(spec, max_batch=6)
    arrays = [a for a in net._buf if isinstance(a, np.ndarray)]
    held = sum(a.nbytes for a in arrays) - net._buf.layout.nbytes - net._buf.dims.nbytes
    assert buffer_bytes(spec, 6) == held
