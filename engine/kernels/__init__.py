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
"""
from ..runtime import prepare_kernels

prepare_kernels()
