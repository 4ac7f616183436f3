"""A trained network as one .npz file: everything needed to predict from raw images.

Holds the spec, every parameter tensor, the batch-norm running statistics, the input
preprocessing (its kind, and its arrays under the `preprocessing/` prefix), class names and
image shape. Extra arrays (a checkpoint's optimiser and schedule state) ride along under the
`extra/` prefix. Version 1 files, which held a standardisation as the arrays `mean` and
`std`, load as the preprocessing "standardise".

Loading trusts nothing in the file: each array's .npy header is checked against the bytes
the zip file holds for it, and the spec against the tensors the file holds, before anything
is allocated for them.
"""
import io
import json
import math
import os
import stat
import struct
import tokenize
import warnings
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy

from ..data.preprocessing import PREPROCESSINGS, Standardise
from ..errors import UserError
from ..util.atomic import atomic_write
from .network import Network, NetworkSpec

FORMAT = "cifar-engine-model"
FORMAT_VERSION = 2
READS_VERSIONS = (1, 2)
PREPROCESSING = "preprocessing"  # the kind's text, and the prefix of its arrays
FILE_GROUPS = {"parameters": "param", "running_stats": "running"}  # state group -> prefix
CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 10_000  # numpy's own limit on a .npy header
# The most bytes a member can honestly unpack to per stored byte: deflate expands at most
# 1032-fold; other compressions are not written by numpy.
MAX_EXPANSION = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}
_HEADER_READERS = {(1, 0): (2, npy.read_array_header_1_0), (2, 0): (4, npy.read_array_header_2_0)}
# What a damaged zip file or .npy member raises somewhere in zipfile, zlib or numpy.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError,
                struct.error, NotImplementedError, RuntimeError, KeyError)


def save_network(path, net, extra=None):
    """Write `net` (and optional `extra` arrays, by name) to `path` atomically."""
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "spec": np.array(json.dumps(net.spec.to_dict())),
        "seed": np.array(net.seed),
        PREPROCESSING: np.array(net.preprocessing.kind),
        "class_names": np.array(json.dumps(list(net.class_names))),
        "image_shape": np.array(net.image_shape or (), dtype=np.int64),
    }
    arrays.update({f"{PREPROCESSING}/{k}": v for k, v in net.preprocessing.arrays().items()})
    for group, tensors in net.state_dict(FILE_GROUPS, copy=False).items():
        arrays.update({f"{FILE_GROUPS[group]}/{k}": v for k, v in tensors.items()})
    arrays.update({f"extra/{k}": np.asarray(v) for k, v in (extra or {}).items()})
    with atomic_write(path) as file:
        np.savez(file, **arrays)


def tensor_shapes(spec):
    """{name in the file: shape} of every tensor a model of `spec` holds, named as Network
    names them: W1, b1 (gamma1, beta1 and running mean1, var1 with batch norm), ..."""
    dims, n_layers = spec.dims, spec.n_layers
    shapes = {}
    for l in range(1, n_layers + 1):
        width = (dims[l],)
        shapes[f"param/W{l}"] = (dims[l], dims[l - 1])
        if spec.batch_norm and l < n_layers:
            shapes.update({f"param/gamma{l}": width, f"param/beta{l}": width,
                           f"running/mean{l}": width, f"running/var{l}": width})
        else:
            shapes[f"param/b{l}"] = width
    return shapes


class _Damaged(Exception):
    """What is wrong with a model file, for `load_network` to report with the file's name."""


class _Npz:
    """The arrays of an .npz file, each read only after its header checked out."""

    def __init__(self, archive):
        self.zip = archive
        self.headers = {info.filename[:-len(".npy")]: self._header(info)
                        for info in archive.infolist() if info.filename.endswith(".npy")}

    def _header(self, info):
        """(shape, fortran order, dtype, data offset) of one member, checked against its size."""
        where = info.filename
        expansion = MAX_EXPANSION.get(info.compress_type)
        if expansion is None:
            raise _Damaged(f"{where}: compression method {info.compress_type}, not stored or "
                           "deflated as numpy writes them")
        if info.file_size > expansion * info.compress_size + 64:  # 64: deflate's overhead
            raise _Damaged(f"{where}: claims {info.file_size} bytes from {info.compress_size}")
        with self.zip.open(info) as file:
            shape, fortran, dtype = _npy_header(where, file)
            offset = file.tell()
        if dtype.hasobject:
            raise _Damaged(f"{where}: holds Python objects")
        if math.prod(shape) * dtype.itemsize != info.file_size - offset:
            raise _Damaged(f"{where}: its header declares {dtype} {shape}, its data is "
                           f"{info.file_size - offset} bytes")
        return shape, fortran, dtype, offset

    def names(self, prefix=""):
        return [name for name in self.headers if name.startswith(prefix)]

    def array(self, name):
        """The array `name` (KeyError when there is none), read a chunk at a time."""
        shape, fortran, dtype, offset = self.headers[name]
        size = math.prod(shape) * dtype.itemsize
        data = bytearray()
        with self.zip.open(f"{name}.npy") as file:
            file.read(offset)
            while len(data) < size and (part := file.read(min(size - len(data), CHUNK_BYTES))):
                data += part
            file.read(1)  # at the end, zipfile checks the member's CRC
        if len(data) != size:
            raise _Damaged(f"{name}.npy: {len(data)} bytes of data, its header needs {size}")
        return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _npy_header(where, file):
    """(shape, fortran order, dtype) from the .npy header at the start of `file`."""
    version = npy.read_magic(file)
    if version not in _HEADER_READERS:
        raise _Damaged(f"{where}: .npy format version {version[0]}.{version[1]}")
    length_bytes, read_header = _HEADER_READERS[version]
    length = file.read(length_bytes)
    # numpy reads as long a header as the length claims before it checks that length
    size = int.from_bytes(length, "little")
    if len(length) != length_bytes or size > MAX_HEADER_BYTES:
        raise _Damaged(f"{where}: a .npy header of {size} bytes")
    header = io.BytesIO(length + file.read(size))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns of headers it had to repair
            return read_header(header)
    except (ValueError, SyntaxError, tokenize.TokenError, Warning) as err:  # parsed as Python
        raise _Damaged(f"{where}: unreadable .npy header ({type(err).__name__})") from None


def load_network(path, max_batch=100, **network_options):
    """(net, extra) from a file written by `save_network`.

    Anything else raises a one-line UserError naming the file: a file that is not an .npz,
    or not a model, or of another format version, or damaged; a spec whose tensors the file
    does not hold (checked before the network is allocated); a tensor holding NaN or inf.
    """
    with _open_zip(path) as archive:
        try:
            npz = _Npz(archive)
            version = _check_format(path, npz)
            spec, arrays = _read_model(npz, version)
            extra = {name[len("extra/"):]: npz.array(name) for name in npz.names("extra/")}
        except UserError:
            raise
        except (_Damaged, *_READ_ERRORS, RecursionError) as err:
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UserError(f"{path}: damaged cifar-engine model ({first_line})") from None
    return _rebuild(spec, arrays, max_batch, network_options), extra


def _open_zip(path):
    """The ZipFile of the regular file at `path`, or a UserError saying why there is none."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a folder, or a pipe that could block
            raise UserError(f"{path}: not a regular file")
        return zipfile.ZipFile(path)
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from None
    except _READ_ERRORS:
        raise UserError(f"{path}: not a cifar-engine model (not an .npz file)") from None


def _text(npz, name):
    """The string that the 0-d text array `name` holds."""
    array = npz.array(name)
    if array.shape != () or array.dtype.kind != "U":
        raise _Damaged(f"{name} is {array.dtype} {array.shape}, not a text")
    return str(array[()])


def _integer(array, name):
    if array.shape != () or array.dtype.kind not in "iu":
        raise _Damaged(f"{name} is {array.dtype} {array.shape}, not an integer")
    return int(array)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number")


def _json(npz, name):
    try:
        return json.loads(_text(npz, name), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:
        raise _Damaged(f"{name} is not valid JSON ({str(err).splitlines()[0]})") from None


def _check_format(path, npz):
    """The file's format version; UserError unless the file is a cifar-engine model of a
    version this engine reads."""
    try:
        marked = _text(npz, "format") == FORMAT
    except (_Damaged, KeyError):
        marked = False
    if not marked:
        raise UserError(f"{path}: not a cifar-engine model (no '{FORMAT}' marker)")
    version = _integer(npz.array("format_version"), "format_version")
    if version not in READS_VERSIONS:
        raise UserError(f"{path}: model format version {version}, this engine reads "
                        f"versions {', '.join(map(str, READS_VERSIONS))}")
    return version


def _spec(npz):
    fields = _json(npz, "spec")
    if not isinstance(fields, dict):
        raise _Damaged("spec is not a JSON object")
    try:
        return NetworkSpec.from_dict(fields)
    except (UserError, TypeError, ValueError) as err:
        raise _Damaged(f"spec: {str(err).strip() or type(err).__name__}") from None


def _check_tensor_shapes(npz, shapes, prefixes):
    """_Damaged unless the file holds exactly the tensors of `shapes`, of those shapes,
    among the names that start with one of `prefixes`."""
    for name, shape in shapes.items():
        if name not in npz.headers:
            raise _Damaged(f"no tensor {name}, which its spec needs")
        if npz.headers[name][0] != shape:
            raise _Damaged(f"tensor {name} is {npz.headers[name][0]}, its spec needs {shape}")
    unexpected = sorted({name for prefix in prefixes for name in npz.names(prefix)}
                        - set(shapes))
    if unexpected:
        raise _Damaged(f"tensor {unexpected[0]} is not part of its spec")


def _preprocessing_kind(npz, version):
    """(class, prefix of its arrays) of the file's preprocessing: version 1 files hold a
    standardisation as `mean` and `std`."""
    if version == 1:
        return Standardise, ""
    if PREPROCESSING not in npz.headers:
        raise _Damaged(f"no {PREPROCESSING}, which version {version} needs")
    kind = _text(npz, PREPROCESSING)
    if kind not in PREPROCESSINGS:
        raise _Damaged(f"{PREPROCESSING} {kind[:40]!r} is not one of "
                       f"{', '.join(PREPROCESSINGS)}")
    return PREPROCESSINGS[kind], f"{PREPROCESSING}/"


def _preprocessing(kind, prefix, arrays):
    """The preprocessing of its checked arrays (`arrays`, by name in the file)."""
    try:
        return kind.from_arrays({name[len(prefix):]: value for name, value in arrays.items()})
    except ValueError as err:
        raise _Damaged(f"tensor {prefix}{err}") from None


def _tensor(npz, name):
    """A tensor of real numbers, none of them NaN or infinite."""
    array = npz.array(name)
    if array.dtype.kind not in "iuf":
        raise _Damaged(f"tensor {name} is {array.dtype}, not real numbers")
    if not np.isfinite(array).all():
        raise _Damaged(f"tensor {name} holds NaN or infinite values")
    if name.startswith("running/var") and (array < 0).any():
        raise _Damaged(f"tensor {name} holds negative variances")
    return array


def _read_model(npz, version):
    """(spec, {name: value}) of everything but the extras, each value checked."""
    spec = _spec(npz)
    kind, prefix = _preprocessing_kind(npz, version)
    n_features = _n_features(npz, prefix, spec)
    preprocessing = {f"{prefix}{name}": shape for name, shape in
                     kind.shapes(spec.input_size, n_features).items()}
    shapes = tensor_shapes(spec)
    _check_tensor_shapes(npz, {**shapes, **preprocessing},
                         ("param/", "running/", f"{PREPROCESSING}/"))
    arrays = {name: _tensor(npz, name) for name in shapes}
    arrays[PREPROCESSING] = _preprocessing(
        kind, prefix, {name: _tensor(npz, name) for name in preprocessing})
    arrays["seed"] = _integer(npz.array("seed"), "seed")
    if not 0 <= arrays["seed"] < 2**63:  # the seeds numpy's generators and the kernels take
        raise _Damaged(f"seed {arrays['seed']} is not in 0..2**63-1")
    arrays["class_names"] = _class_names(npz, spec.n_classes)
    arrays["image_shape"] = _image_shape(npz, n_features)
    return spec, arrays


def _n_features(npz, prefix, spec):
    """The raw images' features: the length of the preprocessing's mean (every kind has
    one), else the network's inputs (the missing mean is then reported as such)."""
    header = npz.headers.get(f"{prefix}mean")
    return header[0][0] if header is not None and len(header[0]) == 1 else spec.input_size


def _class_names(npz, n_classes):
    names = _json(npz, "class_names")
    if not (isinstance(names, list) and len(names) == n_classes
            and all(isinstance(name, str) for name in names)):
        raise _Damaged(f"class_names is not a JSON list of {n_classes} strings")
    return names


def _image_shape(npz, input_size):
    """(C, H, W) of C*H*W = input_size, or None (a model saved without one)."""
    shape = npz.array("image_shape")
    if shape.shape == (0,):
        return None
    if shape.shape != (3,) or shape.dtype.kind not in "iu" or (shape < 1).any() \
            or math.prod(shape.tolist()) != input_size:
        raise _Damaged(f"image_shape {shape.tolist()} is not a (C, H, W) of {input_size} values")
    return tuple(shape.tolist())


def _rebuild(spec, arrays, max_batch, network_options):
    """The Network of a checked model; options of the caller's may still raise UserError."""
    state = {group: {key.split("/", 1)[1]: value for key, value in arrays.items()
                     if key.startswith(f"{prefix}/")} for group, prefix in FILE_GROUPS.items()}
    net = Network(spec, seed=arrays["seed"], max_batch=max_batch, state=state,
                  **network_options)
    net.set_preprocessing(arrays[PREPROCESSING], arrays["class_names"], arrays["image_shape"])
    return net


def check_extra(path, extra, shapes):
    """UserError naming `path` and the array unless `extra` (from `load_network`) holds each
    array of `shapes` ({name: shape}, None in a shape for any length), of finite numbers."""
    for name, shape in shapes.items():
        array = extra.get(name)
        if array is None or array.dtype.kind not in "iuf" or len(array.shape) != len(shape) \
                or any(want not in (None, got) for want, got in zip(shape, array.shape)):
            found = "missing" if array is None else f"{array.dtype} {array.shape}"
            wanted = tuple("N" if n is None else n for n in shape)
            raise UserError(f"{path}: damaged checkpoint (extra/{name} is {found}, expected "
                            f"{wanted})".replace("'N'", "N"))
        if not np.isfinite(array).all():
            raise UserError(f"{path}: damaged checkpoint (extra/{name} holds NaN or infinite "
                            "values)")
