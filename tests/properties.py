"""What the property tests of the readers share: drawn damage to a file's bytes, and the
check that a damaged input loads or is refused in one line, within a memory bound."""
import contextlib
import tracemalloc
from collections import Counter

import pytest
from hypothesis import event
from hypothesis import strategies as st

from cifar_engine.errors import UserError


@contextlib.contextmanager
def allocates_at_most(megabytes):
    """Fail when the memory Python and numpy allocate within peaks above `megabytes`."""
    tracemalloc.start()
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        assert peak <= megabytes, f"allocated {peak:.0f} MB, more than {megabytes} MB"


MAX_MEGABYTES = 64  # what loading a damaged file of a few KB may allocate at most
INPUTS = Counter()  # inputs given to each reader, printed as a module ends (pytest -s)


def near(length):
    """A position in data of `length` bytes, often within its first bytes (the headers)."""
    return st.integers(0, min(length, 64)) | st.integers(0, length)


@st.composite
def damaged(draw, data, fields=()):
    """`data` with 1 to 3 drawn mutations: cut short, bytes overwritten, flipped, inserted or
    deleted, emptied, or an integer written into one of `fields` ((offset, size, byteorder))."""
    data = bytearray(data)
    kinds = ["truncate", "overwrite", "flip", "insert", "delete", "empty"]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds + ["field"] * 3 if fields else kinds))
        at = draw(near(max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[at:]
        elif kind == "overwrite":
            new = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(new)] = new
        elif kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "empty":
            data = bytearray()
        elif kind == "field":
            offset, size, order = draw(st.sampled_from(fields))
            top = 2 ** (8 * size) - 1
            value = draw(st.sampled_from([0, 1, 2, top, top // 2 + 1]) | st.integers(0, top))
            data[offset:offset + size] = value.to_bytes(size, order)
    return bytes(data)


def loads_or_refuses(reader, call, path):
    """call()'s result, or None when it raised a one-line UserError naming `path`; any other
    exception fails the test."""
    INPUTS[reader] += 1
    try:
        with allocates_at_most(MAX_MEGABYTES):
            result = call()
    except UserError as err:
        message = str(err)
        assert message.strip() and "\n" not in message.strip(), repr(message)
        assert str(path) in message, message
        event(f"refused: {message.split(': ', 1)[-1][:40]}")
        return None
    event("loaded")
    return result


@pytest.fixture(scope="module", autouse=True)
def report_inputs():
    yield
    print("\ninputs per reader: " + ", ".join(f"{k} {v}" for k, v in sorted(INPUTS.items())))
