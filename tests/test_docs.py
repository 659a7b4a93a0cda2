"""The docs stay true: the configuration page matches the settings, and every relative link of
the README and of docs/*.md reaches an existing file and, with an anchor, a heading in it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from hookline.config.reference import REGENERATE, render

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def test_configuration_page_is_up_to_date() -> None:
    page = DOCS / "configuration.md"
    assert page.read_text() == render(), (
        f"docs/configuration.md is stale: regenerate it with `{REGENERATE}` "
        "(from the repository root)"
    )


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lowercased, without punctuation but
    ``-`` and ``_``, spaces as hyphens."""
    text = _INLINE_CODE.sub(lambda code: code[2], heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def _lines_outside_fences(markdown: str) -> list[str]:
    lines: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    """Every anchor of ``page``'s headings, with GitHub's ``-1``, ``-2`` for repeats."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _lines_outside_fences(page.read_text()):
        heading = _HEADING.match(line)
        if not heading:
            continue
        slug = github_slug(heading[2])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    """The targets of ``page``'s links and images that are not URLs, outside code."""
    targets: list[str] = []
    for line in _lines_outside_fences(page.read_text()):
        reference = _REFERENCE.match(line)
        if reference:
            targets.append(reference[1])
            continue
        prose = _INLINE_CODE.sub("", line)
        targets += [match[1] for match in _LINK.finditer(prose)]
    return [target for target in targets if not _EXTERNAL.match(target)]


def test_the_link_checker_finds_links_and_slugs() -> None:
    assert github_slug("Payload encryption in Temporal") == "payload-encryption-in-temporal"
    assert github_slug("The app's secret") == "the-apps-secret"
    assert github_slug("`HOOKLINE_RETRY__WINDOW_S`") == "hookline_retry__window_s"
    assert github_slug("When to move on from `hookline dev`") == "when-to-move-on-from-hookline-dev"
    assert relative_links(ROOT / "README.md"), "the README links to the docs"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken: list[str] = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and (linked.suffix != ".md" or unquote(anchor) not in anchors(linked)):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"broken links in {page.relative_to(ROOT)}:\n" + "\n".join(broken)
