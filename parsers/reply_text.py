"""Extraction of a leader's own words from a reply: quoted history, signatures and disclaimers removed.

Text typed above the quote, below it, or under a ">"-quoted line counts. A line typed directly under a
quoted list line of a batch request ("1. 2026-0074 …") is kept as the reply to that list number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.quotes import find_history_start

_BLANK = " \t\u3000\u00a0\ufeff"
_SIGNATURE_DELIMITER = re.compile(r"^\s*(?:--\s*|-{2,}|_{2,}|—{2,})$")
_CLIENT_SIGNATURE = re.compile(
    r"^\s*(?:发自我的.{0,20}|从我的.{0,20}发送|来自.{0,20}(?:客户端|邮箱|手机)|sent from my .{0,30}|"
    r"get outlook for .{0,20}|发自 ?(?:网易邮箱|qq邮箱|手机).{0,20})\s*$",
    re.I,
)
_DISCLAIMER = re.compile(r"本邮件|此邮件|该邮件|免责|保密|机密|请勿转发|confidential", re.I)
_CONTACT = re.compile(r"^\s*(?:电话|手机|传真|邮箱|地址|tel|mobile|e-?mail)\s*[:：]", re.I)
_ORGANISATION = re.compile(
    r"^[\u4e00-\u9fff（）()]{2,24}(?:局|厅|处|科|室|办|委|院|中心|公司|政府|巡视员|局长|主任|处长|科长)$"
)
_PERSON_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
_SLOGAN = re.compile(r"^[\u4e00-\u9fff]{4,}(?:[\s\u3000]+[\u4e00-\u9fff]{4,})+$")
_DECISION_HINT = re.compile(r"同意|退回|报送|不报|阅|收到|修改|删|改为|准|好的|可以|不行|批|谢|辛苦|了|吧|请")
_QUOTED_ITEM_LINE = re.compile(r"^>\s*(\d{1,3})\s*[.、．]\s*\d{4}-\d{4}")
_ATTRIBUTION = re.compile(r"^\s*(?:在|于).{0,80}写道\s*[:：]?\s*$|^\s*On .{0,200}wrote:\s*$")


@dataclass(frozen=True)
class TextSegment:
    """A run of the leader's own lines, with the list number it replies to when typed under a quoted item line."""

    text: str
    item: int | None = None


def extract_new_segments(full_text: str) -> list[TextSegment]:
    """Return the leader's own text from a reply's whole text part, in order, signatures removed."""
    lines = [line.replace("\ufeff", "") for line in full_text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    start = find_history_start(lines)
    first_quoted = next((index for index, line in enumerate(lines) if line.lstrip().startswith(">")), None)
    if first_quoted is not None and (start is None or first_quoted < start):
        start = first_quoted
    if start is None:
        return _segment_or_empty(remove_signature(lines), None)

    segments = _segment_or_empty(remove_signature(lines[:start]), None)
    if _is_angle_quoted(lines[start:]):
        segments.extend(_collect_typed_lines(lines[start:]))
    return [segment for segment in segments if segment.text]


def join_segments(segments: list[TextSegment]) -> str:
    """Return the segments' text joined with line feeds, outer blanks stripped."""
    return "\n".join(segment.text for segment in segments).strip(_BLANK + "\n")


def remove_signature(lines: list[str]) -> list[str]:
    """Return ``lines`` without client signatures, a "--" signature block and trailing signature blocks."""
    own_lines: list[str] = []
    for line in lines:
        if _SIGNATURE_DELIMITER.match(line):
            break
        if _CLIENT_SIGNATURE.match(line):
            continue
        own_lines.append(line)

    blocks = _split_blocks(own_lines)
    while len(blocks) > 1 and all(_is_signature_line(line) for line in blocks[-1]):
        blocks.pop()
    return [line for index, block in enumerate(blocks) for line in ([""] if index else []) + block]


def _segment_or_empty(lines: list[str], item: int | None) -> list[TextSegment]:
    text = "\n".join(line.rstrip(_BLANK) for line in lines).strip(_BLANK + "\n")
    return [TextSegment(text, item)] if text else []


def _split_blocks(lines: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip(_BLANK):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _is_signature_line(line: str) -> bool:
    """Tell whether a line looks like part of a signature: a name, a post, contacts, a disclaimer or a slogan."""
    text = line.strip(_BLANK)
    if _DISCLAIMER.search(text) or _CONTACT.match(text) or _CLIENT_SIGNATURE.match(text):
        return True
    if _DECISION_HINT.search(text):
        return False
    return bool(_PERSON_NAME.match(text) or _ORGANISATION.match(text) or _SLOGAN.match(text))


def _is_angle_quoted(history: list[str]) -> bool:
    """Tell whether quoted history is marked with ">" lines, so unmarked lines inside or below it are typed."""
    content = [line for line in history if line.strip(_BLANK)]
    if not content:
        return False
    if _ATTRIBUTION.match(content[0]):
        content = content[1:]
    return bool(content) and content[0].lstrip().startswith(">")


def _collect_typed_lines(history: list[str]) -> list[TextSegment]:
    """Return the unmarked lines inside and below ">"-quoted history, tied to the quoted item line above them.

    NOTE: a client that wraps long quoted lines without repeating ">" makes the wrapped part look typed.
    """
    segments: list[TextSegment] = []
    current: list[str] = []
    anchor: int | None = None
    current_item: int | None = None
    for line in history:
        stripped = line.lstrip()
        if stripped.startswith(">") or _ATTRIBUTION.match(line):
            if current:
                segments.extend(_segment_or_empty(remove_signature(current), current_item))
                current = []
            match = _QUOTED_ITEM_LINE.match(stripped)
            anchor = int(match.group(1)) if match else None
            continue
        if not current:
            if not line.strip(_BLANK):
                continue
            current_item = anchor
        current.append(line)
    if current:
        segments.extend(_segment_or_empty(remove_signature(current), current_item))
    return segments
