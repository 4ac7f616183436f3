"""A trained network for other runtimes: an ONNX graph from raw pixels to probabilities, and
its tensors as safetensors.

The ONNX graph computes what `Network.predict_proba` computes, in float32:

    pixels   float32 [N, D]  raw values (0..255), as model.npz's predictor takes uint8 rows
    preprocessing            standardise: (x - mean) / std; zca: the whitening product and
                             its int16 rounding (`Zca.gather_form`), so that the graph sees
                             the inputs the engine sees; pca: ((x - mean) * scale) @ projection
    layers                   Gemm (x W^T + b) and Relu; batch norm folded into W and b with
                             the running statistics; dropout is the identity at test time
    probabilities float32 [N, K]  the softmax of the scores (tta="flip": the mean of the
                             image's and its mirror image's, the mirror a Gather of the columns)
    label    int64 [N]       the most probable class's index (class names: metadata_props)

onnxruntime's probabilities agree with the engine's to 1e-5; a float64 network is exported
in float32 (about 1e-6). Under zca, a whitened value within float32 rounding of the boundary
between two int16 steps can round to the other step (onnxruntime sums the product in
another order): one value in ~5,000 on Fashion-MNIST, moving that image's probabilities by
~1e-4. Rounding as the engine does still brings the graph 10 times closer than leaving the
values unrounded would.
`onnx` and `safetensors` come with the `export` extra and load when first used.
"""
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SettingError, UserError
from ..settings import TTAS
from ..util.atomic import atomic_write
from ..util.optional import optional

OPSET = 21      # of the default ONNX domain: supported by onnxruntime >= 1.20
MIN_OPSET = 13  # the ops used here take their current form (Clip's bounds as inputs) from 13
PIXELS, PROBABILITIES, LABEL = "pixels", "probabilities", "label"
INT16_MAX = 32767  # Zca stores whitened values as int16 in [-INT16_MAX, INT16_MAX]


class Graph:
    """The nodes and constants of an ONNX graph as they are added, each named uniquely.

    `constant` and `op` are all that the builders below use, so that another collector
    (skl2onnx's container, `estimator_onnx`) can stand in for this one."""

    def __init__(self):
        self.onnx = optional("onnx", "export", "ONNX export")
        self.nodes, self.constants, self._names = [], [], set()

    def name(self, base):
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def constant(self, base, array):
        """The name of a new constant holding `array` (a NumPy array)."""
        name = self.name(base)
        self.constants.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, output=None, **attributes):
        """The name of the output of a new node op_type(inputs) (output: its given name)."""
        output = self.name(op_type.lower()) if output is None else output
        self.nodes.append(self.onnx.helper.make_node(
            op_type, list(inputs), [output], name=self.name(f"{op_type}_node"), **attributes))
        return output


def _float32(array):
    return np.ascontiguousarray(array, dtype=np.float32)


def _standardise(p, graph, x):
    centred = graph.op("Sub", [x, graph.constant("mean", _float32(p.mean))])
    return graph.op("Mul", [centred, graph.constant("inv_std", _float32(1.0 / p.std))])


def _zca(p, graph, x):
    """The whitened inputs rounded to the int16 steps that `Zca.gather_form` stores them in."""
    centred = graph.op("Sub", [x, graph.constant("mean", _float32(p.mean))])
    whitened = graph.op("MatMul", [centred, graph.constant("whiten_t", _float32(p.whiten.T))])
    steps = graph.op("Mul", [whitened, graph.constant("inv_step", _float32(1.0 / p.step))])
    rounded = graph.op("Clip", [graph.op("Round", [steps]),
                                graph.constant("low", np.float32(-INT16_MAX)),
                                graph.constant("high", np.float32(INT16_MAX))])
    return graph.op("Mul", [rounded, graph.constant("step", _float32(p.step))])


def _pca(p, graph, x):
    centred = graph.op("Sub", [x, graph.constant("mean", _float32(p.mean))])
    scaled = graph.op("Mul", [centred, graph.constant("scale", _float32(p.scale))])
    return graph.op("MatMul", [scaled, graph.constant("projection", _float32(p.projection))])


# preprocessing kind -> fn(preprocessing, graph, pixels name) -> the first layer's inputs' name
PREPROCESSING_GRAPHS = {"standardise": _standardise, "zca": _zca, "pca": _pca}


def folded_layers(net):
    """[(W float64 (m, d), b float64 (m,))] of each layer in inference mode, batch norm
    folded in: scale = gamma / sqrt(running var + eps), W' = scale W, b' = beta - scale
    running mean (`kernels.batchnorm`'s inference formula)."""
    params, running, eps = net.parameters, net.running_stats, net.spec.bn_eps
    layers = []
    for l in range(1, net.spec.n_layers + 1):
        W = params[f"W{l}"].astype(np.float64)
        if f"gamma{l}" in params:
            scale = params[f"gamma{l}"] / np.sqrt(running[f"var{l}"].astype(np.float64) + eps)
            layers.append((W * scale[:, None],
                           params[f"beta{l}"] - scale * running[f"mean{l}"]))
        else:
            layers.append((W, params[f"b{l}"].astype(np.float64)))
    return layers


def _softmax(net, graph, pixels, output=None):
    """The name of the probabilities float32 [N, K] of the raw pixels named `pixels`."""
    kind = net.preprocessing.kind
    x = PREPROCESSING_GRAPHS[kind](net.preprocessing, graph, pixels)
    layers = folded_layers(net)
    for l, (W, b) in enumerate(layers, 1):
        x = graph.op("Gemm", [x, graph.constant(f"W{l}", _float32(W)),
                              graph.constant(f"b{l}", _float32(b))], transB=1)
        if l < len(layers):
            x = graph.op("Relu", [x])
    return graph.op("Softmax", [x], output, axis=1)


def mirror_index(image_shape):
    """int64 (C*H*W,): the columns of a row of (C, H, W) pixels mirrored left-right."""
    return np.arange(int(np.prod(image_shape))).reshape(image_shape)[..., ::-1].ravel()


def add_probabilities(net, graph, pixels, output, tta="none"):
    """Add to `graph` the nodes from the raw pixels float32 [N, D] named `pixels` to the
    net's probabilities float32 [N, K] named `output` (tta: as `Network.predict_proba`)."""
    if tta not in TTAS:
        raise SettingError("tta", f"must be one of {', '.join(TTAS)}, got {tta!r}")
    if tta == "none":
        return _softmax(net, graph, pixels, output)
    if net.image_shape is None:
        raise SettingError("tta", f"{tta} needs the model's image shape (C, H, W); it has none")
    mirrored = graph.op("Gather", [pixels, graph.constant("mirror", mirror_index(
        net.image_shape))], axis=1)
    both = graph.op("Add", [_softmax(net, graph, pixels), _softmax(net, graph, mirrored)])
    return graph.op("Mul", [both, graph.constant("half", np.float32(0.5))], output)


def metadata(net, tta="none"):
    """{key: text} of what the exported model does not hold as tensors: class names, image
    shape, preprocessing, spec and test-time augmentation."""
    from .npz import FORMAT

    return {"format": FORMAT, "producer": f"cifar-engine {version('cifar-engine')}",
            "class_names": json.dumps(list(net.class_names)),
            "image_shape": json.dumps(list(net.image_shape or ())),
            "preprocessing": json.dumps(net.preprocessing.describe()),
            "spec": json.dumps(net.spec.to_dict()), "seed": str(net.seed), "tta": tta}


def to_onnx(net, tta="none"):
    """The ONNX model (onnx.ModelProto) of `net`: input `pixels` float32 [N, D] of raw
    values, outputs `probabilities` float32 [N, K] and `label` int64 [N]."""
    graph = Graph()
    helper, TensorProto = graph.onnx.helper, graph.onnx.TensorProto
    add_probabilities(net, graph, PIXELS, PROBABILITIES, tta)
    graph.op("ArgMax", [PROBABILITIES], LABEL, axis=1, keepdims=0)
    n, D, K = "N", net.preprocessing.n_features, net.spec.n_classes
    body = helper.make_graph(
        graph.nodes, "cifar_engine_mlp",
        [helper.make_tensor_value_info(PIXELS, TensorProto.FLOAT, [n, D])],
        [helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [n, K]),
         helper.make_tensor_value_info(LABEL, TensorProto.INT64, [n])],
        graph.constants)
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(body, opset_imports=opsets, producer_name="cifar-engine",
                              producer_version=version("cifar-engine"),
                              doc_string="raw pixels -> class probabilities")
    model.ir_version = helper.find_min_ir_version_for(opsets)  # what older runtimes read
    helper.set_model_props(model, metadata(net, tta))
    return model


def export_onnx(net, path, tta="none"):
    """Write `to_onnx(net, tta)` to path atomically."""
    model = to_onnx(net, tta)
    with atomic_write(path) as file:
        file.write(model.SerializeToString())


def safetensors_arrays(net):
    """{name: array} of every tensor of the net, named as model.npz names them: param/W1,
    param/b1 (or param/gamma1, param/beta1, running/mean1, running/var1), ..., and
    preprocessing/<array> of its preprocessing (mean, std; whiten, step, eps; ...)."""
    from .npz import FILE_GROUPS, PREPROCESSING  # loads Numba: not for the command line

    arrays = {f"{FILE_GROUPS[group]}/{name}": np.ascontiguousarray(value)
              for group, tensors in net.state_dict(FILE_GROUPS, copy=False).items()
              for name, value in tensors.items()}
    arrays.update({f"{PREPROCESSING}/{name}": np.ascontiguousarray(value)
                   for name, value in net.preprocessing.arrays().items()})
    return arrays


def export_safetensors(net, path, tta="none"):
    """Write the net's tensors (`safetensors_arrays`) and `metadata` to path atomically."""
    if tta != "none":
        raise SettingError("tta", "applies to the onnx format only (safetensors holds the "
                                  "tensors, not a computation)")
    numpy_api = optional("safetensors.numpy", "export", "safetensors export")
    data = numpy_api.save(safetensors_arrays(net), metadata=metadata(net, tta))
    with atomic_write(path) as file:
        file.write(data)


@dataclass(frozen=True)
class Exporter:
    suffix: str       # of the file's name
    write: Callable   # (net, path, tta)


EXPORTERS = {"onnx": Exporter(".onnx", export_onnx),
             "safetensors": Exporter(".safetensors", export_safetensors)}


def export(net, path, format, tta="none", overwrite=False):
    """Write `net` to `path` in `format` (a key of EXPORTERS), atomically; returns the path.

    UserError naming the path when a file is there already, unless overwrite."""
    if format not in EXPORTERS:
        raise SettingError("format", f"must be one of {', '.join(EXPORTERS)}, got {format!r}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path}: already exists; export replaces a file only with overwrite "
                        "(--overwrite)")
    EXPORTERS[format].write(net, path, tta)
    return path
