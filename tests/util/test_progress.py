import io
import sys

from cifar_engine.util.progress import progress_bar


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)

    with progress_bar(10, "working") as bar:
        bar.update(10)

    assert stderr.getvalue() == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal_unless_disabled(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    with progress_bar(10, "working") as bar:
        bar.update(10)
    assert "working" in sys.stderr.getvalue()

    monkeypatch.setattr(sys, "stderr", Terminal())
    with progress_bar(10, "working", enabled=False) as bar:
        bar.update(10)
    assert sys.stderr.getvalue() == ""
