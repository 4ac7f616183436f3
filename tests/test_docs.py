"""The documentation: the settings reference is the settings table's, every relative link
of the README and the guides leads to a file (and heading) that exists, every flag the
reference names is an option of a command, and the README stays short."""
import difflib
import re
from pathlib import Path

import click
import pytest

from cifar_engine.cli.settings_reference import markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 120

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def pages():
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def slug(heading):
    """The anchor a Markdown renderer gives a heading: lower case, punctuation dropped,
    spaces as dashes ("BLAS: the fastest library" -> "blas-the-fastest-library")."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page):
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", text, re.M)}


def broken_links(page):
    """["target (why)", ...]: the relative links of the Markdown file `page` (code blocks
    left out) whose file, or heading, does not exist."""
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    return broken


def command_flags():
    """Every long option of every `cifar-engine` command and subcommand (--help too)."""
    from cifar_engine.cli.main import cli

    found, todo = set(), [cli]
    while todo:
        command = todo.pop()
        if isinstance(command, click.Group):
            todo.extend(command.commands.values())
        for param in command.get_params(click.Context(command)):
            found.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return found


def test_the_settings_reference_is_generated_from_the_settings_table():
    expected = markdown()
    actual = (DOCS / "settings.md").read_text()
    if actual != expected:
        diff = "".join(list(difflib.unified_diff(actual.splitlines(True),
                                                 expected.splitlines(True),
                                                 "docs/settings.md", "generated"))[:20])
        pytest.fail(f"docs/settings.md is stale: run `make docs`\n{diff}")


def test_the_settings_reference_has_a_row_per_setting():
    from cifar_engine.settings import DATA, GRAD_CHECK, MODEL, RANGE_TEST, TRAIN

    text = (DOCS / "settings.md").read_text()
    for table in (DATA, MODEL, TRAIN, RANGE_TEST, GRAD_CHECK):
        for name in table:
            assert re.search(rf"^\| `{name}`", text, re.M), name


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_to_a_file(page):
    assert broken_links(page) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "guide.md").write_text("# A guide\n\n## Its part: one\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](guide.md) [ok](guide.md#its-part-one) [web](https://example.org)\n"
                    "![gone](missing.png) [gone](guide.md#nowhere)\n"
                    "```sh\n[code](not-a-link.md)\n```\n")
    assert broken_links(page) == ["missing.png (no such file)", "guide.md#nowhere (no such heading)"]


def test_the_readme_links_every_guide():
    linked = {(ROOT / t.partition("#")[0]).resolve()
              for t in LINK.findall((ROOT / "README.md").read_text())}
    assert {p.resolve() for p in DOCS.glob("*.md")} <= linked


def test_every_flag_the_settings_reference_names_is_an_option_of_a_command():
    named = set(FLAG.findall((DOCS / "settings.md").read_text()))
    assert named, "the settings reference names no flag"
    assert sorted(named - command_flags()) == []


def test_the_readme_stays_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines < README_MAX_LINES, (f"README.md has {lines} lines: keep it under "
                                      f"{README_MAX_LINES}, the rest belongs in docs/")
