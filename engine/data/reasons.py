"""One-line reasons from exceptions, for DataError messages."""


def reason(err):
    """The first line of `err`'s message, or its type name when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(":") if lines else type(err).__name__


