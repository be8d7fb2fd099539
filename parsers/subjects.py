"""Subject lines of submissions: reply/forward prefixes, category tags and the category itself."""

from __future__ import annotations

import re

DEFAULT_CATEGORY = "工作动态"

# Tag text (in 【】 or [], or as a plain prefix) to category; short forms units use are included.
_CATEGORY_TAGS: dict[str, str] = {
    "工作动态": "工作动态",
    "约稿": "约稿信息",
    "约稿信息": "约稿信息",
    "经济运行分析": "经济运行分析",
    "经济运行": "经济运行分析",
    "假日综述": "假日综述",
    "重大突发事件": "重大突发事件",
    "突发事件": "重大突发事件",
    "突发": "重大突发事件",
    "新闻通气会": "新闻通气会",
}

# Keywords searched in the subject and title when no tag is given, in priority order.
_CATEGORY_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("约稿", "约稿信息"),
    ("假日旅游市场综述", "假日综述"),
    ("假日综述", "假日综述"),
    ("经济运行", "经济运行分析"),
    ("新闻通气会", "新闻通气会"),
    ("突发", "重大突发事件"),
    ("紧急报告", "重大突发事件"),
)

_PREFIX = re.compile(r"^\s*(回复|答复|转发|自动回复|Re|Fw|Fwd|Aw|Wg)\s*[:：]\s*", re.I)
_BRACKET_TAG = re.compile(r"^\s*(?:【([^】]{1,20})】|\[([^\]]{1,20})\])\s*")
_PLAIN_TAG = re.compile(r"^\s*(" + "|".join(sorted(_CATEGORY_TAGS, key=len, reverse=True)) + r")\s*[:：\-—－ ]\s*")
_URGENT_PREFIX = re.compile(r"^\s*(紧急|特急|加急)\s*[:：]\s*")


def strip_prefixes(subject: str) -> str:
    """Remove reply and forward prefixes (回复:, 答复:, 转发:, Re:, Fw:), repeated or mixed."""
    text = subject
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return text.strip()
        text = stripped


def find_subject_tag(subject: str) -> str | None:
    """Return the category tag at the start of a subject (after prefixes), or None."""
    text = strip_prefixes(subject)
    bracket = _BRACKET_TAG.match(text)
    if bracket:
        return (bracket.group(1) or bracket.group(2)).strip()
    plain = _PLAIN_TAG.match(text)
    if plain:
        return plain.group(1)
    return None


def strip_subject(subject: str) -> str:
    """Return the subject without prefixes, 【…】/[…] tags, category prefixes and 紧急： markers."""
    text = strip_prefixes(subject)
    while True:
        stripped = _BRACKET_TAG.sub("", text, count=1)
        stripped = _PLAIN_TAG.sub("", stripped, count=1)
        stripped = _URGENT_PREFIX.sub("", stripped, count=1)
        if stripped == text:
            break
        text = stripped
    return text.strip()


def classify_category(subject: str, title: str = "") -> str:
    """Return the item category: a subject tag, else a keyword in subject or title, else 工作动态."""
    tag = find_subject_tag(subject)
    if tag is not None:
        for known, category in sorted(_CATEGORY_TAGS.items(), key=lambda pair: -len(pair[0])):
            if known in tag:
                return category
    haystack = f"{subject}\n{title}"
    for keyword, category in _CATEGORY_KEYWORDS:
        if keyword in haystack:
            return category
    return DEFAULT_CATEGORY
