"""Errors that are the user's to fix: the command line prints them as one line, exit code 2."""


class UserError(ValueError):
    """A mistake in what the user gave (a file, an option, an argument).

    The message names the file or option and says what is wrong, in one line.
    """


class DataError(UserError):
    """A data source that is missing, malformed, or cannot be cached."""
