"""Numba kernels: pure functions of arrays and scalars, one module per concern.

Nothing here imports the rest of the engine. Kernels never allocate: they fill arrays the
caller owns. Argument order everywhere: outputs, then inputs, then parameters, then scalars.

Shape legend used in every module:
    n = rows in the batch (samples are rows, C order), d = input features of a layer,
    m = output features of a layer, K = classes, D = features of an image (C*H*W).

Each kernel is written once; Numba specialises it for float32 and float64 on first call.
"""

import os

# GEMMs run on OpenBLAS's threads and the fused loops on Numba's OpenMP threads, one after
# the other, many times a step. OpenMP threads that spin after a loop starve the BLAS threads
# of the two cores (a 3072-50-10 step went from 1 ms to 30 ms); passive waiting hands the
# cores over. setdefault: a user's own setting wins. It must precede OpenMP's start-up.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
