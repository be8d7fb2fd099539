"""Conversion of HTML mail bodies to plain text with BeautifulSoup."""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, NavigableString, Tag

_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "tr",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "blockquote",
        "pre",
        "hr",
        "section",
        "article",
        "ul",
        "ol",
    }
)
_BLOCK_BOUNDARY = "\x00"
_DROPPED_TAGS = ("script", "style", "head", "title", "meta", "xml")


def html_to_text(html: str, *, drop_quotes: bool = False) -> str:
    """Convert an HTML body to text: one line per block element, entities decoded, blank runs collapsed.

    With ``drop_quotes``, quoted replies marked up as such (``<blockquote type="cite">``, Gmail's
    ``gmail_quote``) are left out.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    if drop_quotes:
        for tag in soup.find_all("blockquote", attrs={"type": "cite"}):
            tag.decompose()
        for tag in soup.find_all(class_="gmail_quote"):
            tag.decompose()

    chunks: list[str] = []
    _collect_text(soup, chunks)
    # Block boundaries are marked with NUL so that adjacent ones give one line break, not several.
    text = "".join(chunks).replace("\xa0", " ")
    text = re.sub(r"\n?\x00+\n?", "\n", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def _collect_text(node: Tag, chunks: list[str]) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # skip comments, CDATA, doctype
                text = str(child).replace("\x00", "")
                chunks.append(re.sub(r"[\r\n\t ]+", " ", text) if text.strip("\r\n\t ") else "")
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name == "br":
            chunks.append("\n")
            continue
        is_block = name in _BLOCK_TAGS
        if is_block:
            chunks.append(_BLOCK_BOUNDARY)
        _collect_text(child, chunks)
        if name in {"td", "th"}:
            chunks.append("\t")
        if is_block:
            chunks.append(_BLOCK_BOUNDARY)
