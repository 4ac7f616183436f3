"""Property: a model.npz or checkpoint.npz damaged in any way loads as a working network or
is refused with a one-line UserError naming it, never a crash, and never allocates much.

`damaged` (bytes with drawn mutations) serves the data readers' properties too.
"""
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cifar_engine.errors import DataError
from cifar_engine.model.npz import check_extra, load_network, save_network
from cifar_engine.training.loop import METRIC_COLUMNS
from properties import damaged, loads_or_refuses, report_inputs  # noqa: F401 (a fixture)
from test_npz import pca_net, small_net

# --- the files under test ---------------------------------------------------------------

def _npz_bytes(net, extra=None):
    """The bytes of `net` saved with `extra`."""
    with tempfile.TemporaryDirectory() as folder:
        save_network(Path(folder) / "model.npz", net, extra)
        return (Path(folder) / "model.npz").read_bytes()


def _checkpoint_extra(net):
    """The extra arrays of a checkpoint, as RunFolder.save_checkpoint writes them."""
    history = np.arange(2 * len(METRIC_COLUMNS), dtype=np.float64).reshape(2, -1)
    extra = {"step": 5, "history": history}
    extra.update({f"velocity/{k}": np.full_like(v, 0.5) for k, v in net.velocity.items()})
    return extra


NET, ZCA_NET = small_net(), small_net(zca=True)  # of the same spec
MODELS = {_npz_bytes(net): net for net in (NET, ZCA_NET, pca_net())}
CHECKPOINTS = {_npz_bytes(net, _checkpoint_extra(net)): net for net in (NET, ZCA_NET)}
MODEL, ZCA_MODEL, PCA_MODEL = MODELS
CHECKPOINT, ZCA_CHECKPOINT = CHECKPOINTS
EXTRA_SHAPES = {"step": (), "history": (None, len(METRIC_COLUMNS)),
                **{f"velocity/{k}": v.shape for k, v in NET.velocity.items()}}


def _members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _zipped(members, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=False)
    | st.text(max_size=6) | st.sampled_from([0, 1, 2, 2**31, 2**40, -1]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=8)
arrays = hnp.arrays(
    dtype=st.sampled_from(["<f4", "<f8", ">f4", "<i8", "|u1", "|b1", "<c8", "<U3", "|S2",
                           "<m8[s]"]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=13))


@st.composite
def member_changed(draw, data):
    """The .npz, zipped stored or deflated, with one member damaged (its bytes, or its .npy
    header's version and length fields), replaced by a drawn array or integer, removed, given
    a NaN, inf or huge value; or with one field of the spec set to a drawn JSON value."""
    members = _members(data)
    name = draw(st.sampled_from(sorted(members)))
    how = draw(st.sampled_from(["damage", "array", "integer", "remove", "spec", "nan"]))
    if how == "damage":  # the .npy header's fields: version, header length, then the dict
        members[name] = draw(damaged(members[name], fields=[(6, 2, "big"), (8, 2, "little")]))
    elif how == "array":
        members[name] = _npy(draw(arrays))
    elif how == "integer":
        value = draw(st.sampled_from([-1, 0, 2**63 - 1, 2**63, 2**64 - 1]) | st.integers(-9, 9))
        members[name] = _npy(np.array(value, np.uint64 if value >= 2**63 else np.int64))
    elif how == "remove":
        del members[name]
    elif how == "spec":
        spec = json.loads(str(np.load(io.BytesIO(members["spec.npy"]))))
        spec[draw(st.sampled_from(sorted(spec) + ["other"]))] = draw(json_values)
        members["spec.npy"] = _npy(np.array(json.dumps(spec)))
    else:
        array = np.load(io.BytesIO(members[name])).copy()
        if array.dtype.kind == "f" and array.size:
            array.flat[draw(st.integers(0, array.size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e38]))
        members[name] = _npy(array)
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    return _zipped(members, compression)


def model_inputs(files):
    """One of `files` (bytes: their network) damaged."""
    return st.sampled_from(sorted(files)).flatmap(
        lambda data: st.one_of(damaged(data), member_changed(data)))


# the array of each kind that must be > 0
POSITIVE = {"standardise": "std", "zca": "step", "pca": "gains"}


def _check_loaded(net, original):
    """A loaded network holds finite tensors and predicts, or refuses to predict in one line
    because some image could overflow a layer's outputs (its weights say so); an untouched
    file (`original`, the network it was saved from, else None) predicts as saved."""
    for tensor in (*net.parameters.values(), *net.running_stats.values(),
                   *net.preprocessing.arrays().values()):
        assert np.isfinite(tensor).all()
    assert (getattr(net.preprocessing, POSITIVE[net.preprocessing.kind]) > 0).all()
    images = np.random.default_rng(0).integers(0, 256, (4, net.preprocessing.n_features),
                                               np.uint8)
    try:
        p = net.predict_proba(images)
    except DataError as err:
        assert "overflow" in str(err) and "\n" not in str(err), str(err)
        assert not max(net.output_reach()) <= np.finfo(net.dtype).max / 2
        assert original is None
        event("refuses to predict: its outputs can overflow")
        return
    assert p.shape == (4, net.spec.n_classes)
    if original is not None:
        assert net.preprocessing.kind == original.preprocessing.kind
        np.testing.assert_array_equal(p, original.predict_proba(images))


def _load(tmp_path, name, content):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / name).write_bytes(content)
    return folder, folder / name


def _nothing_left_behind(folder, name):
    assert [p.name for p in folder.iterdir()] == [name]


PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(content=model_inputs(MODELS))
@example(content=MODEL)
@example(content=ZCA_MODEL)
@example(content=PCA_MODEL)
@example(content=b"")
def test_a_damaged_model_loads_as_a_working_network_or_is_one_line(tmp_path, content):
    folder, path = _load(tmp_path, "model.npz", content)

    loaded = loads_or_refuses("model.npz", lambda: load_network(path), path)

    if loaded is not None:
        _check_loaded(loaded[0], original=MODELS.get(content))
    _nothing_left_behind(folder, "model.npz")


@PROPERTY
@given(content=model_inputs(CHECKPOINTS))
@example(content=CHECKPOINT)
@example(content=ZCA_CHECKPOINT)
def test_a_damaged_checkpoint_loads_with_its_extras_or_is_one_line(tmp_path, content):
    folder, path = _load(tmp_path, "checkpoint.npz", content)

    def load():
        net, extra = load_network(path, momentum=0.9)
        check_extra(path, extra, EXTRA_SHAPES)
        # what RunFolder.load_checkpoint then does with the extras
        for name, velocity in net.velocity.items():
            velocity[...] = extra[f"velocity/{name}"]
        int(extra["step"]), [(int(row[0]), *map(float, row[1:])) for row in extra["history"]]
        return net, extra

    loaded = loads_or_refuses("checkpoint.npz", load, path)

    if loaded is not None:
        _check_loaded(loaded[0], original=CHECKPOINTS.get(content))
    _nothing_left_behind(folder, "checkpoint.npz")
