"""Numba kernels: pure functions of arrays and scalars, one module per concern.

Nothing here imports the rest of the engine but `runtime`, the process (its BLAS library,
OpenMP's settings, the compiled-code cache), prepared as the kernels load. Kernels never
allocate: they fill arrays the caller owns. Argument order everywhere: outputs (state
updated in place counts: running statistics, velocity), then inputs, then parameters, then
scalars; an operand that a forward pass and its backward pass share keeps its place
relative to the others in both.

Shape legend used in every module:
    n = rows in the batch (samples are rows, C order), d = input features of a layer,
    m = output features of a layer, K = classes, D = features of an image (C*H*W).

Each kernel is written once; Numba specialises it for float32 and float64 on first call.

`LOSS_CODES` is the one list of losses: each name and the code that `step.StepConfig.loss`
carries to `step.loss_gradient`. The settings read their choices from it, so adding a
loss is a kernel, an entry here and a branch there. It lives in this module, which loads
no Numba, so that the command line builds its options without loading Numba.
"""
from ..runtime import prepare_kernels

prepare_kernels()

LOSS_CODES = {"xent": 0, "svm": 1}  # softmax cross-entropy, multi-class SVM hinge
