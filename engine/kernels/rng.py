"""Counter-based random numbers for kernels: a value is a pure function of (key, counter).

Dropout masks and augmentation draw from `uniform(key, i)` with i the element's index, so a
run is fixed by its seed whatever the thread count or the order in which threads run, and a
resumed run draws exactly what the uninterrupted one would have. The mixer is SplitMix64's
finaliser (Steele, Lea and Flood, 2014).
"""
import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_M53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def mix64(z):
    """SplitMix64 finaliser: a bijection of uint64 that scatters every input bit."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def derive_key(seed, stream, counter):
    """A key for one use of randomness: (seed, stream id, step or layer counter) -> uint64."""
    k = mix64(np.uint64(seed) + _GOLDEN * np.uint64(stream + 1))
    return mix64(k + _GOLDEN * np.uint64(counter + 1))


@njit(cache=True, inline="always")
def uniform(key, i):
    """The i-th uniform float64 in [0, 1) of the stream named by key."""
    key = np.uint64(key)  # a signed key would make the mixer's shifts arithmetic
    return np.float64(mix64(key + _GOLDEN * np.uint64(i + 1)) >> np.uint64(11)) * _TWO_M53


@njit(cache=True, inline="always")
def normal(key, i):
    """The i-th standard normal of the stream named by key (Box-Muller on draws 2i, 2i+1)."""
    u1 = 1.0 - uniform(key, 2 * i)  # in (0, 1]: log is finite
    u2 = uniform(key, 2 * i + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@njit(cache=True, inline="always")
def substream(key, i):
    """The key of the i-th independent sub-stream of key (e.g. one per image)."""
    key = np.uint64(key)
    return mix64(key ^ mix64(_GOLDEN * np.uint64(i + 1)))
