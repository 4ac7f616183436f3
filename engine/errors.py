"""Errors that are the user's to fix: the command line prints them as one line, exit code 2."""
import re


class UserError(ValueError):
    """A mistake in what the user gave (a file, a setting, an argument).

    The message names the file or setting and says what is wrong, in one line.
    """


class DataError(UserError):
    """A data source that is missing, malformed, or cannot be cached."""


_FIELD = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")


class SettingError(UserError):
    """A setting with a value it cannot take: `SettingError("lam", "must be >= 0, got -1")`.

    The engine names settings as Python callers spell them (`lam`, `eta_min`); the command
    line alone turns them into flags (`--lam`, `--eta-min`) with `render`. Other settings
    the message mentions are written `{name}` in `message` so that they are spelled the
    same way; `{{` and `}}` stand for braces, and any other brace (in a value) is kept.
    """

    def __init__(self, setting, message):
        self.setting, self.template = setting, message
        super().__init__(self.render(str))

    def render(self, spell):
        """The message with every setting spelled by spell(name) (e.g. as a CLI flag)."""
        def field(match):
            name = match.group(1)
            return spell(name) if name else match.group(0)[0]
        return f"{spell(self.setting)} {_FIELD.sub(field, self.template)}"


def require(ok, setting, message):
    """Raise SettingError(setting, message) unless ok."""
    if not ok:
        raise SettingError(setting, message)


def literal(text):
    """`text` as it reads inside a SettingError message, whose {braces} name settings."""
    return str(text).replace("{", "{{").replace("}", "}}")


def first_line(err):
    """The first line of an exception's message, or its type's name when it has none: what
    a one-line error quotes of an error from another library."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
