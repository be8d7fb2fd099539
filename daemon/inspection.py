"""JSON-ready reports of what the parsers read from one mail, one document or one reply (``zwxx inspect``).

Keys follow the corpus field names. Values that need other messages (is_duplicate,
is_revision, same_item_as) are false or null here, because one file cannot tell them.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from daemon.authors import find_content_unit
from daemon.errors import DaemonError
from daemon.units import Unit, UnitDirectory
from parsers.documents import read_document
from parsers.items import extract_items
from parsers.message import parse_message
from parsers.model import DocumentKind, ItemDraft, ItemSource, ParsedMessage
from parsers.replies import Decision, ReplyReading, read_reply

logger = logging.getLogger(__name__)

_HEAD_CHARS = 30


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def inspect_message(
    raw: bytes,
    *,
    units: UnitDirectory | None,
    default_tz: tzinfo,
    internaldate: datetime | None = None,
) -> dict[str, Any]:
    """Parse one raw mail and its item; return the report as a JSON-ready dict."""
    message = parse_message(raw, default_tz=default_tz, internaldate=internaldate)
    items = extract_items(message)
    item = items[0] if items else None

    sender_unit = units.lookup(message.sender) if units is not None else None
    report: dict[str, Any] = {
        "message_id": message.message_id,
        "date": _iso(message.date),
        "sent_at": _iso(message.sent_at),
        "received_at": _iso(message.received_at),
        "sender": message.sender,
        "sender_name": message.sender_name,
        "to": list(message.to),
        "cc": list(message.cc),
        "reply_to": message.reply_to,
        "in_reply_to": message.in_reply_to,
        "references": list(message.references),
        "unit": sender_unit.code if sender_unit else None,
        "content_unit": _find_content_unit(message, item, units, sender_unit),
        "is_item": item is not None,
        "is_auto_reply": message.is_auto_reply,
        "is_bounce": message.is_bounce,
        "is_list": message.is_list,
        "is_duplicate": False,
        "duplicate_of": None,
        "is_revision": False,
        "revises": None,
        "same_item_as": None,
        "subject": message.subject,
        "original_from": message.original_from,
        "mail_text": message.mail_text,
        "attachments": [attachment.filename for attachment in message.attachments],
        "attachment_sha256": [attachment.sha256 for attachment in message.attachments],
        "attachment_kinds": [str(attachment.kind) for attachment in message.attachments],
    }
    report.update(_describe_item(item, message))
    warnings = list(message.warnings)
    if item is not None:
        warnings.extend(warning for warning in item.warnings if warning not in warnings)
    report["warnings"] = warnings
    return report


def _describe_item_source(item: ItemDraft, message: ParsedMessage) -> str:
    """Return the item source; a .doc-named file whose bytes are a docx reads "doc (really docx)"."""
    if item.source is ItemSource.DOC and item.attachment_index is not None:
        if message.attachments[item.attachment_index].kind is DocumentKind.DOCX:
            return f"{item.source} (really docx)"
    return str(item.source)


def _describe_item(item: ItemDraft | None, message: ParsedMessage) -> dict[str, Any]:
    if item is None:
        return {
            "title": None,
            "category": None,
            "item_source": None,
            "has_review_line": False,
            "review_line_location": None,
            "reviewer": None,
            "signer": None,
            "has_contact_line": False,
            "contact_line_location": None,
            "contact": None,
            "phone": None,
            "body_head30": None,
            "body_chars": None,
            "body_text": None,
        }
    return {
        "title": item.title,
        "category": item.category,
        "item_source": _describe_item_source(item, message),
        "has_review_line": item.has_review_line,
        "review_line_location": item.review_line_location,
        "reviewer": item.reviewer,
        "signer": item.signer,
        "has_contact_line": item.has_contact_line,
        "contact_line_location": item.contact_line_location,
        "contact": item.contact,
        "phone": item.phone,
        "body_head30": item.body_text[:_HEAD_CHARS],
        # The corpus counts the characters of the paragraphs, not the newlines that join them.
        "body_chars": item.body_chars,
        "body_text": item.body_text,
    }


def _find_content_unit(
    message: ParsedMessage, item: ItemDraft | None, units: UnitDirectory | None, sender_unit: Unit | None
) -> str | None:
    """Return the code of the unit that wrote the item, or None when there is no item or no directory."""
    if item is None or units is None:
        return None
    texts = (item.title, message.mail_text, item.body_text)
    unit = find_content_unit(units, sender_unit=sender_unit, original_from=message.original_from, texts=texts)
    return unit.code if unit else None


def inspect_document(data: bytes) -> dict[str, Any]:
    """Read one document file given directly; a broken or unsupported file yields warnings, not errors."""
    document = read_document(data)
    return {"kind": str(document.kind), "text": document.text, "warnings": list(document.warnings)}


# Request layouts the reply reading must know to turn list numbers and serials into items:
#   zwxx batch:     【第 2 条】 on its own line, then 登记编号：2026-0012 on the next line
#   zwxx single:    one 登记编号：2026-0012 line
#   plain batch:    numbered lines such as "2. 2026-0052 成都开展导游人员业务技能竞赛（工作动态）"
#   plain single:   one 编号：2026-0016 line
# The patterns run on NFKC-normalised lines, so full-width colons, digits and spaces match too.
_ENTRY_HEADING = re.compile(r"^\s*【\s*第\s*(\d{1,3})\s*条\s*】\s*$")
_REGISTERED_SERIAL_LINE = re.compile(r"^\s*登记编号\s*:\s*(\d{4}-\d{4})\b")
_SERIAL_LINE = re.compile(r"^\s*编号\s*:\s*(\d{4}-\d{4})\b")
_NUMBERED_LINE = re.compile(r"^\s*(\d{1,3})\s*[.、)]\s*(\d{4}-\d{4})\b")
_SERIAL = re.compile(r"\d{4}-\d{4}")

_DECISION_LABELS = {
    Decision.APPROVE: "同意",
    Decision.RETURN: "退回修改",
    Decision.REJECT: "不同意报送",
    Decision.UNCLEAR: "意见不明确",
    Decision.MIXED: "各条意见不同",
}


class RequestLayoutError(DaemonError):
    """An approval request whose numbered items cannot be put in list order; the message is Chinese."""


@dataclass(frozen=True)
class ApprovalRequestMail:
    """The parts of an approval request mail that a reply is read against."""

    message_id: str | None
    subject: str
    item_serials: tuple[str, ...]  # in list order; empty when the request names no serial

    @property
    def batch_size(self) -> int:
        """Number of items the reply decides on; a request without serials counts as one item."""
        return max(1, len(self.item_serials))


def read_request_items(raw: bytes) -> list[str]:
    """Return the serials an approval request lists, in list order (empty when it names none).

    Raises:
        MessageParseError: the mail cannot be parsed.
        RequestLayoutError: the list numbers of a batch are repeated with another serial or have gaps.
    """
    return list(read_approval_request(raw).item_serials)


def read_approval_request(raw: bytes, *, default_tz: tzinfo = UTC) -> ApprovalRequestMail:
    """Parse an approval request mail into its Message-ID, subject and item serials."""
    message = parse_message(raw, default_tz=default_tz)
    serials = list_request_serials(message.mail_text, message.subject)
    return ApprovalRequestMail(message.message_id, message.subject, tuple(serials))


def list_request_serials(text: str, subject: str = "") -> list[str]:
    """Return the serials listed in a request's text, in list order, else the first serial of ``subject``.

    The layouts are tried in this order: 【第 N 条】 headings, a zwxx 登记编号 line, numbered "N. serial"
    lines, an 编号 line. A zwxx request is checked before numbered lines because the warnings it lists
    are numbered too.
    """
    lines = [unicodedata.normalize("NFKC", line) for line in text.splitlines()]
    headed = _find_headed_entries(lines)
    if headed:
        return _order_by_list_number(headed)
    registered = _match_first_line(_REGISTERED_SERIAL_LINE, lines)
    if registered:
        return [registered]
    numbered = _find_numbered_lines(lines)
    if numbered:
        return _order_by_list_number(numbered)
    single = _match_first_line(_SERIAL_LINE, lines)
    if single:
        return [single]
    return _SERIAL.findall(unicodedata.normalize("NFKC", subject))[:1]


def _match_first_line(pattern: re.Pattern[str], lines: list[str]) -> str | None:
    """Return group 1 of the first line that ``pattern`` matches at its start."""
    for line in lines:
        match = pattern.match(line)
        if match:
            return match.group(1)
    return None


def _find_headed_entries(lines: list[str]) -> list[tuple[int, str]]:
    """Pair each 【第 N 条】 heading with the first 登记编号 line after it, before the next heading."""
    entries: list[tuple[int, str]] = []
    pending: int | None = None
    for line in lines:
        heading = _ENTRY_HEADING.match(line)
        if heading:
            pending = int(heading.group(1))
            continue
        serial = _REGISTERED_SERIAL_LINE.match(line)
        if serial and pending is not None:
            entries.append((pending, serial.group(1)))
            pending = None
    return entries


def _find_numbered_lines(lines: list[str]) -> list[tuple[int, str]]:
    return [(int(match.group(1)), match.group(2)) for line in lines if (match := _NUMBERED_LINE.match(line))]


def _order_by_list_number(entries: list[tuple[int, str]]) -> list[str]:
    """Return the serials ordered by list number; a repeat of the same pair (a later summary line) is ignored."""
    by_number: dict[int, str] = {}
    for number, serial in entries:
        known = by_number.setdefault(number, serial)
        if known != serial:
            raise RequestLayoutError(f"审批请求中第 {number} 条同时对应 {known} 和 {serial}，无法确定条目顺序")
    expected = list(range(1, len(by_number) + 1))
    if sorted(by_number) != expected:
        numbers = "、".join(str(number) for number in sorted(by_number))
        raise RequestLayoutError(f"审批请求中的条目序号 {numbers} 不是从 1 开始的连续序号，无法确定条目顺序")
    return [by_number[number] for number in expected]


def read_reply_to_request(reply_raw: bytes, request: ApprovalRequestMail, *, default_tz: tzinfo) -> ReplyReading:
    """Read a leader's reply against the batch size and item serials of the request it replies to.

    Raises ``MessageParseError`` when the reply cannot be parsed.
    """
    return read_reply(
        reply_raw, batch_size=request.batch_size, default_tz=default_tz, item_serials=request.item_serials
    )


def report_reply(reading: ReplyReading) -> dict[str, Any]:
    """Return the reply reading as a JSON-ready dict with list numbers as string keys."""
    return {
        "new_text": reading.new_text,
        "decision": reading.decision.value,
        "decisions": {str(number): decision.value for number, decision in sorted(reading.decisions.items())},
        "comment": reading.comment,
        "edit_requested": reading.edit_requested,
        "auto_reply": reading.auto_reply,
    }


def find_thread_link(reading: ReplyReading, request: ApprovalRequestMail) -> str | None:
    """Return what ties the reply to the request (In-Reply-To, then References, then subject serials), or None."""
    if request.message_id and reading.in_reply_to == request.message_id:
        return "In-Reply-To 头"
    if request.message_id and request.message_id in reading.references:
        return "References 头"
    if set(reading.subject_serials) & set(request.item_serials):
        return "主题中的登记编号"
    return None


def format_reply_summary(reading: ReplyReading, request: ApprovalRequestMail) -> str:
    """Describe the reply reading in Chinese lines for ``zwxx inspect --request`` without --json."""
    lines = [f"审批意见：{_DECISION_LABELS[reading.decision]}"]
    serials = request.item_serials
    for number, decision in sorted(reading.decisions.items()):
        serial = f"（{serials[number - 1]}）" if number <= len(serials) else ""
        lines.append(f"  第 {number} 条{serial}：{_DECISION_LABELS[decision]}")
    if reading.auto_reply:
        lines.append("这是一封自动回复：不作为审批意见，也不追问。")
    if reading.question:
        lines.append("回复中有提问，本次不作决定，需要再问领导。")
    if reading.unknown_items:
        lines.append(f"回复提到了本批次以外的条目：{'；'.join(reading.unknown_items)}")
    lines.append(f"要求修改文字：{'是' if reading.edit_requested else '否'}")
    lines.append(f"其他意见：{reading.comment or '无'}")
    link = find_thread_link(reading, request)
    if link is None:
        lines.append(
            "对应关系：回复与该审批请求对不上（In-Reply-To、References 和主题编号都不符），请确认 --request 选对了"
        )
    else:
        lines.append(f"对应关系：{link}与该审批请求相符")
    lines.append("领导原话：")
    lines.extend(f"  {line}" for line in reading.new_text.splitlines() or ["（空）"])
    return "\n".join(lines)
