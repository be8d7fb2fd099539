"""Parse one raw mail into a ParsedMessage.

mail-parser is the entry point. Its ``email`` message (compat32 policy) is then read again
from the raw headers, because mail-parser and the ``email`` package lose Chinese text. They
mishandle adjacent encoded words split inside a character, gb2312 labels on GBK bytes, raw
8-bit header bytes and RFC 2231 continuations.
"""

from __future__ import annotations

import email
import email.utils
import logging
import re
from datetime import datetime, tzinfo
from email.message import Message

import mailparser

from parsers.charsets import decode_header_text, decode_raw_header_bytes, decode_text, to_raw_bytes
from parsers.errors import MessageParseError
from parsers.html import html_to_text
from parsers.largeparts import read_without_large_bodies
from parsers.mime import (
    collect_attachments,
    decode_payload,
    get_attached_message,
    get_content_type,
    get_disposition,
    get_raw_header,
    get_raw_headers,
    iter_parts,
    parse_params,
)
from parsers.model import DocumentLimits, ParsedMessage
from parsers.quotes import find_quoted_sender, strip_quoted_history

logger = logging.getLogger(__name__)

_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(自动回复|自動回覆|自动答复|自動答覆|Auto[- ]?Reply|Automatic reply|Out of Office)", re.I
)
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_FORWARD_SUBJECT = re.compile(r"^\s*(转发|Fw|Fwd)\s*[:：]", re.I)


def parse_message(
    raw: bytes,
    *,
    default_tz: tzinfo,
    internaldate: datetime | None = None,
    limits: DocumentLimits | None = None,
) -> ParsedMessage:
    """Parse raw RFC 5322 bytes; ``default_tz`` applies to dates that carry no offset.

    Raises:
        MessageParseError: the message cannot be parsed. Any other exception raised inside is
            wrapped in it (chained as ``__cause__``), so callers need to catch only this one.
    """
    try:
        return _parse_message(raw, default_tz=default_tz, internaldate=internaldate, limits=limits)
    except MessageParseError:
        raise
    except RecursionError as exc:
        raise MessageParseError("邮件的 MIME 结构嵌套过深，无法解析") from exc
    except Exception as exc:  # noqa: BLE001 - any parser bug becomes one typed, quarantinable error
        raise MessageParseError(f"邮件无法解析：{type(exc).__name__}: {exc}") from exc


def _parse_message(
    raw: bytes,
    *,
    default_tz: tzinfo,
    internaldate: datetime | None,
    limits: DocumentLimits | None,
) -> ParsedMessage:
    limits = limits or DocumentLimits()
    message = _read_mime(raw)

    subject = decode_header_text(get_raw_header(message, "Subject")).strip()
    sender_name, sender = parse_address(get_raw_header(message, "From"))
    mail_text, from_html = extract_mail_text(message)
    attachments = collect_attachments(message, limits)
    original_from = find_original_sender(message, subject, mail_text)
    warnings = tuple(a.warning for a in attachments if a.warning)

    return ParsedMessage(
        message_id=_first_message_id(get_raw_header(message, "Message-ID")),
        subject=subject,
        sender=sender,
        sender_name=sender_name,
        date=parse_date(get_raw_header(message, "Date"), default_tz),
        received_at=parse_received_time(get_raw_headers(message, "Received"), default_tz),
        to=tuple(address for _, address in parse_address_list(get_raw_headers(message, "To")) if address),
        cc=tuple(address for _, address in parse_address_list(get_raw_headers(message, "Cc")) if address),
        reply_to=parse_address(get_raw_header(message, "Reply-To"))[1],
        in_reply_to=_first_message_id(get_raw_header(message, "In-Reply-To")),
        references=tuple(_MESSAGE_ID.findall(_decode_raw(" ".join(get_raw_headers(message, "References"))))),
        mail_text=strip_quoted_history(mail_text),
        attachments=tuple(attachments),
        is_auto_reply=detect_auto_reply(message, subject, sender),
        is_bounce=detect_bounce(message, sender),
        is_list=detect_list(message),
        original_from=original_from,
        warnings=warnings,
        mail_text_is_html=from_html,
        internaldate=internaldate,
    )


def _read_mime(raw: bytes) -> Message:
    """Return the message tree of ``raw``, with large base64 bodies decoded outside the MIME parser.

    ``parsers.largeparts`` builds the tree that ``_parse_tree(raw)`` returns, with less memory.
    """
    message = read_without_large_bodies(raw, _parse_tree)
    if message is not None:
        return message
    return _parse_tree(raw)


def _parse_tree(raw: bytes) -> Message:
    """Return the message tree from mail-parser, or from ``email`` itself when mail-parser fails."""
    try:
        parsed = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - mail-parser raises many types on damaged headers
        logger.warning("mail-parser failed (%s); reading the MIME tree with the email package", type(exc).__name__)
        return email.message_from_bytes(raw)
    message: Message = parsed.message
    return message


def _decode_raw(raw: str) -> str:
    """Return a header's text with raw 8-bit bytes decoded, RFC 2047 words left as they are."""
    return decode_raw_header_bytes(to_raw_bytes(raw))


def _first_message_id(raw: str | None) -> str | None:
    if not raw:
        return None
    raw = _decode_raw(raw)
    match = _MESSAGE_ID.search(raw)
    # Without angle brackets the value is kept, flattened: a folded id must not carry its line break.
    return match.group(0) if match else " ".join(raw.split()) or None


def parse_address(raw: str | None) -> tuple[str, str | None]:
    """Return (decoded display name, lower-cased address) of the first address in a header."""
    addresses = parse_address_list([raw] if raw else [])
    return addresses[0] if addresses else ("", None)


def parse_address_list(raws: list[str]) -> list[tuple[str, str | None]]:
    """Parse address headers leniently; a comment such as ``(Mail Delivery System)`` becomes the name."""
    result: list[tuple[str, str | None]] = []
    for raw in raws:
        unfolded = _decode_raw(re.sub(r"\r?\n[ \t]*", " ", raw))
        for name, address in email.utils.getaddresses([unfolded]):
            decoded_name = decode_header_text(name).strip().strip('"').strip()
            address = decode_header_text(address).strip().lower() or None
            if address is None and not decoded_name:
                continue
            result.append((decoded_name, address))
    return result


def parse_date(raw: str | None, default_tz: tzinfo) -> datetime | None:
    """Parse a date header leniently; a date without an offset is taken in ``default_tz``."""
    if not raw:
        return None
    text = re.sub(r"\s+", " ", decode_header_text(raw)).strip()
    text = re.sub(r"\s*\([^)]*\)\s*$", "", text)  # trailing zone comment: (CST)
    try:
        value = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        value = None
    if value is None:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            logger.debug("unparseable date header")
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    return value


def parse_received_time(raws: list[str], default_tz: tzinfo) -> datetime | None:
    """Return the time of the newest Received hop (the first header), or None."""
    for raw in raws:
        if ";" not in raw:
            continue
        value = parse_date(raw.rsplit(";", 1)[1], default_tz)
        if value is not None:
            return value
    return None


def extract_mail_text(message: Message) -> tuple[str, bool]:
    """Return the mail's own text (text/plain parts, else converted HTML) and whether it came from HTML.

    Only parts of the outer message count: an attached message is a file, not text.
    """
    plain: list[str] = []
    html: list[str] = []
    for part, depth in iter_parts(message):
        if depth > 0 or part.is_multipart():
            continue
        content_type = get_content_type(part)
        if content_type not in {"text/plain", "text/html"}:
            continue
        if get_disposition(part) == "attachment" or _has_filename(part):
            continue
        charset = parse_params(get_raw_header(part, "Content-Type")).get("charset")
        text = decode_text(decode_payload(part), charset)
        if content_type == "text/plain":
            if _is_flowed(part):
                text = _unflow(text)
            plain.append(text.replace("\r\n", "\n"))
        else:
            html.append(html_to_text(text, drop_quotes=True))
    # Some clients send an empty text/plain alternative next to the real HTML body.
    if any(text.strip() for text in plain) or not html:
        return "\n".join(plain), False
    return "\n".join(html), True


def _has_filename(part: Message) -> bool:
    disposition = parse_params(get_raw_header(part, "Content-Disposition"))
    return "filename" in disposition or "name" in parse_params(get_raw_header(part, "Content-Type"))


def _is_flowed(part: Message) -> bool:
    return parse_params(get_raw_header(part, "Content-Type")).get("format", "").lower() == "flowed"


def _unflow(text: str) -> str:
    """Join RFC 3676 soft line breaks (a line ending in a space continues on the next line)."""
    lines = text.replace("\r\n", "\n").split("\n")
    joined: list[str] = []
    buffer = ""
    for line in lines:
        if line.startswith(" "):
            line = line[1:]  # space stuffing
        if line.endswith(" ") and line != "-- ":
            buffer += line[:-1]
            continue
        joined.append(buffer + line)
        buffer = ""
    if buffer:
        joined.append(buffer)
    return "\n".join(joined)


def find_original_sender(message: Message, subject: str, mail_text: str) -> str | None:
    """Return a forward's original sender: an attached message's From, else a quoted 发件人 line."""
    for part, depth in iter_parts(message):
        if depth == 0 and get_content_type(part) in {"message/rfc822", "message/global"}:
            inner = get_attached_message(part)
            if inner is not None:
                address = parse_address(get_raw_header(inner, "From"))[1]
                if address:
                    return address
    if _FORWARD_SUBJECT.match(subject):
        return find_quoted_sender(mail_text)
    return None


def detect_auto_reply(message: Message, subject: str, sender: str | None) -> bool:
    """Tell whether a message is an automatic reply (RFC 3834 and common vendor headers); bounces are not."""
    if detect_bounce(message, sender):
        return False
    auto_submitted = (get_raw_header(message, "Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if get_raw_header(message, "X-Autoreply") or get_raw_header(message, "X-Autorespond"):
        return True
    # Exchange marks its out-of-office replies with this header and sometimes with no Auto-Submitted.
    if get_raw_header(message, "X-Auto-Response-Suppress"):
        return True
    if (get_raw_header(message, "Precedence") or "").strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_REPLY_SUBJECT.match(subject))


def _is_delivery_report(message: Message) -> bool:
    if get_content_type(message) != "multipart/report":
        return False
    report_type = parse_params(get_raw_header(message, "Content-Type")).get("report-type", "")
    return report_type.lower() == "delivery-status"


def detect_bounce(message: Message, sender: str | None) -> bool:
    """Tell whether a message is a delivery status notification."""
    if _is_delivery_report(message):
        return True
    local_part = (sender or "").split("@", 1)[0]
    return local_part in _BOUNCE_SENDERS


def detect_list(message: Message) -> bool:
    """Tell whether a message is list or bulk mail."""
    if get_raw_header(message, "List-Id") or get_raw_header(message, "List-Unsubscribe"):
        return True
    precedence = (get_raw_header(message, "Precedence") or "").strip().lower()
    return precedence in {"bulk", "list", "junk"}
