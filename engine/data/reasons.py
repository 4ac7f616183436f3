"""One-line reasons from exceptions, for DataError messages (the CLI prints them as one line)."""


def reason(err):
    """The first line of `err`'s message, or its type name when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(":") if lines else type(err).__name__
