"""Removal of quoted history and forwarded originals from a mail's own text.

Recognised: QQ/Foxmail "原始邮件" and Outlook plain-text "邮件原件" separators, Outlook and Foxmail quote headers
(发件人/From followed by 发送时间/Sent/日期/Date), "在 … 写道：" and "On … wrote:" lines,
the Foxmail 6 "您在来信中写道" line and lines quoted with ">".
"""

from __future__ import annotations

import re

_SEPARATOR_LINES = (
    re.compile(
        r"^\s*-{2,}\s*(原始邮件|邮件原件|转发邮件|转发的邮件|邮件原文|Original|Original Message|Forwarded message)"
        r"\s*-{2,}\s*$",
        re.I,
    ),
    re.compile(r"^\s*-{2,}\s*(以下是|以下为).*(原始|转发).*-*\s*$"),
    re.compile(r"^\s*(在|于).{0,80}写道\s*[:：]?\s*$"),
    re.compile(r"^\s*On .{0,200}wrote:\s*$"),
    re.compile(r"^.{0,40}您在来信中写道\s*[:：]?\s*$"),
    re.compile(r"^\s*Begin forwarded message:\s*$", re.I),
)
_HEADER_START = re.compile(r"^\s*[*]?(发件人|From)\s*[*]?\s*[:：]", re.I)
_HEADER_FOLLOW = re.compile(r"^\s*[*]?(发送时间|时间|日期|Sent|Date|收件人|To)\s*[*]?\s*[:：]", re.I)
_RULE_LINE = re.compile(r"^\s*[_\-=—]{8,}\s*$")
_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def find_history_start(lines: list[str]) -> int | None:
    """Return the index of the first line of quoted history, or None when none is recognised."""
    for index, line in enumerate(lines):
        if any(pattern.match(line) for pattern in _SEPARATOR_LINES):
            return index
        if _HEADER_START.match(line):
            following = [text for text in lines[index + 1 : index + 4] if text.strip()]
            if following and _HEADER_FOLLOW.match(following[0]):
                start = index
                while start > 0 and (_RULE_LINE.match(lines[start - 1]) or not lines[start - 1].strip()):
                    start -= 1
                return start
    return None


def strip_quoted_history(text: str) -> str:
    """Return the text without quoted history, ">"-quoted lines and trailing blank lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = find_history_start(lines)
    if start is not None:
        lines = lines[:start]
    lines = [line for line in lines if not line.lstrip().startswith(">")]
    while lines and (not lines[-1].strip() or _RULE_LINE.match(lines[-1])):
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(line.rstrip() for line in lines)


def find_quoted_sender(text: str) -> str | None:
    """Return the address on the first 发件人/From line of quoted history, lower-cased, or None."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = find_history_start(lines)
    if start is None:
        return None
    for line in lines[start : start + 8]:
        if _HEADER_START.match(line):
            match = _ADDRESS.search(line)
            if match:
                return match.group(0).lower()
    return None
