"""Titles of items compared across mails: revision markers (修改稿, 【更正】) and the normalised title key."""

from __future__ import annotations

import re
import unicodedata

# Words that mark a corrected version wherever they stand, because ordinary titles rarely contain them.
_MARKER_WORDS = ("修改稿", "修订稿", "更正稿", "修改版", "修订版", "更正版")
# 更正/修订/修改 alone are ordinary words ("修订导游管理办法"), so they count only in brackets
# or as a prefix such as "更正：".
_BRACKETED_MARKER = re.compile(
    r"[（(【\[〔]\s*(?:修改稿|修订稿|更正稿|修改版|修订版|更正版|更正|修订|修改)\s*[）)】\]〕]"
)
_PREFIX_MARKER = re.compile(r"^\s*(?:更正|修订)\s*[:：]")

# Longest stored title key. Real titles are far shorter; the cap keeps a hostile title's key
# within what a PostgreSQL B-tree index entry may hold.
TITLE_KEY_CHARS = 200


def is_marked_revision(*texts: str) -> bool:
    """Tell whether a subject or title marks its item as a corrected version (修改稿, 【更正】, 更正：...)."""
    for text in texts:
        if any(word in text for word in _MARKER_WORDS):
            return True
        if _BRACKETED_MARKER.search(text) or _PREFIX_MARKER.match(text):
            return True
    return False


def normalise_title(title: str) -> str:
    """Return ``title`` reduced for comparison: revision markers, brackets, spaces and punctuation removed."""
    text = unicodedata.normalize("NFKC", title)
    text = _BRACKETED_MARKER.sub("", text)
    text = _PREFIX_MARKER.sub("", text)
    for word in _MARKER_WORDS:
        text = text.replace(word, "")
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN").lower()


def title_key(title: str | None) -> str:
    """Return the indexed form of ``title``: its normalised text, cut to TITLE_KEY_CHARS."""
    return normalise_title(title or "")[:TITLE_KEY_CHARS]
