"""serial.py: small loops run serially, large ones in parallel, and the kernel tests see both."""
import numpy as np
import test_batchnorm
import test_dense
import test_losses

from cifar_engine.kernels.serial import SERIAL_MAX_WORK, serial


def test_the_threshold_splits_serial_from_parallel():
    assert serial(0) and serial(SERIAL_MAX_WORK - 1)
    assert not serial(SERIAL_MAX_WORK)


def test_kernel_tests_cover_both_loop_forms():
    works = {
        "dense outputs": [n * m for n, _, m in test_dense.SHAPES],
        "dense weights": [m * d for _, d, m in test_dense.SHAPES],
        "batchnorm": [n * m for n, m in test_batchnorm.SHAPES],
        "losses": [n * K for n, K in test_losses.SHAPES],
    }
    for name, sizes in works.items():
        assert min(sizes) < SERIAL_MAX_WORK <= max(sizes), name
    assert np.prod((3000, 3 * 5 * 7)) >= SERIAL_MAX_WORK  # test_batch's largest gather
