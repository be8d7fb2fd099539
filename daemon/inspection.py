"""JSON-ready reports of what the parsers read from one mail or one document (``zwxx inspect``).

Keys follow the corpus field names. Values that need other messages (is_duplicate,
is_revision, same_item_as) are false or null here, because one file cannot tell them.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any

from daemon.authors import find_content_unit
from daemon.units import Unit, UnitDirectory
from parsers.documents import read_document
from parsers.items import extract_items
from parsers.message import parse_message
from parsers.model import DocumentKind, ItemDraft, ItemSource, ParsedMessage

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
