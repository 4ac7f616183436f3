"""`MLPClassifier` in skl2onnx: a converter registered with `register_skl2onnx()`, after which
`skl2onnx.to_onnx(clf, X[:1])` converts a fitted classifier, alone or inside a Pipeline.

Registration is explicit (importing the estimator does not import skl2onnx and onnx). The
graph is `model.export`'s, built into skl2onnx's container: X (float32, float64 or int64
rows of raw pixels, cast to float32) through the preprocessing, the layers (batch norm
folded) and the softmax (under tta="flip", the mean with the mirror images'), then the
label, the class of largest probability; the probabilities take X's float type. As for
every scikit-learn classifier, skl2onnx adds a ZipMap of the probabilities unless
options={"zipmap": False}; with {"nocl": True} the labels are the classes' indices.
skl2onnx comes with the `export` extra.
"""
import numpy as np

from .estimator import MLPClassifier
from .model.export import MIN_OPSET, add_probabilities
from .util.optional import optional

ALIAS = "CifarEngineMLPClassifier"  # the converter's name in skl2onnx's registry


class _ContainerGraph:
    """`model.export.Graph`'s two methods on an skl2onnx scope and container."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container
        self.onnx = optional("onnx", "export", "ONNX export")

    def constant(self, base, array):
        array = np.asarray(array)
        name = self.scope.get_unique_variable_name(base)
        if array.dtype.kind in "UO":  # class names: skl2onnx copies a tensor's raw bytes only
            self.container.add_initializer(name, self.onnx.TensorProto.STRING,
                                           list(array.shape), [str(s) for s in array.ravel()])
        else:
            self.container.add_initializer(name, None, None,
                                           self.onnx.numpy_helper.from_array(array))
        return name

    def op(self, op_type, inputs, output=None, **attributes):
        output = self.scope.get_unique_variable_name(op_type.lower()) if output is None \
            else output
        self.container.add_node(op_type, list(inputs), [output],
                                name=self.scope.get_unique_operator_name(op_type), **attributes)
        return output


def _shape(operator):
    """The outputs' types: a label per row (int64 or string, as classes_), probabilities."""
    shapes = optional("skl2onnx.common.shape_calculator", "export", "ONNX export")
    shapes.calculate_linear_classifier_output_shapes(operator)


def _convert(scope, operator, container):
    """The nodes from operator's input (raw pixel rows) to its label and probabilities."""
    onnx = optional("onnx", "export", "ONNX export")
    if container.target_opset < MIN_OPSET:
        raise RuntimeError(f"cifar_engine.MLPClassifier converts to opset {MIN_OPSET} or "
                           f"later, not {container.target_opset}")
    clf, graph = operator.raw_operator, _ContainerGraph(scope, container)
    label, probabilities = (v.full_name for v in operator.outputs[:2])
    pixels = graph.op("Cast", [operator.inputs[0].full_name], to=onnx.TensorProto.FLOAT)
    p = add_probabilities(clf.network_, graph, pixels, graph.scope.get_unique_variable_name(
        "probabilities32"), clf.tta)
    types = optional("skl2onnx.common.data_types", "export", "ONNX export")
    graph.op("Cast", [p], probabilities, to=types.guess_proto_type(operator.outputs[1].type))
    index = graph.op("ArgMax", [p], axis=1, keepdims=0)
    labels = optional("skl2onnx.common.utils_classifier", "export", "ONNX export")
    classes = np.asarray(labels.get_label_classes(scope, clf))  # option nocl: indices
    classes = classes.astype(np.int64) if classes.dtype.kind in "iubf" else classes.astype(str)
    graph.op("Gather", [graph.constant("classes", classes), index], label, axis=0)


def register_skl2onnx():
    """Register the converter of `MLPClassifier` with skl2onnx (again: no change)."""
    skl2onnx = optional("skl2onnx", "export", "ONNX export")
    skl2onnx.update_registered_converter(MLPClassifier, ALIAS, _shape, _convert,
                                         options={"zipmap": [True, False, "columns"],
                                                  "nocl": [False, True]})
