"""MIME part helpers: raw header access, RFC 2231 parameters, part walk and attachment collection.

Parameters are parsed from the raw header text, because ``email.message.Message.get_param``
(compat32 policy) turns raw 8-bit bytes in a file name into U+FFFD.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import replace
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from parsers.archives import ZIP_ERRORS, LimitKind, ReadBudget, read_zip_members, warn_limit
from parsers.charsets import decode_header_text, decode_text, normalize_charset, to_raw_bytes
from parsers.documents import WARNING_UNKNOWN, WARNING_ZIP_BROKEN, read_document
from parsers.largeparts import get_decoded_body
from parsers.model import Attachment, DocumentKind, DocumentLimits
from parsers.tnef import is_tnef, unpack_tnef

logger = logging.getLogger(__name__)

_SECTION = re.compile(r"^(?P<name>[^*]+)(?:\*(?P<number>\d+))?(?P<encoded>\*)?$")


# A header block longer than this is cut: real ones are a few KB, and a mail without the blank
# line after its headers would otherwise be read whole as headers.
HEADER_BLOCK_LIMIT = 1024 * 1024
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def read_header_block(raw: bytes) -> Message:
    """Parse only the header block of ``raw`` (compat32, lenient), not its body.

    Parsing a whole 40 MB mail for its headers would decode it to text and split it into lines,
    which costs several times its size in memory.
    """
    found = _BLANK_LINE.search(raw, 0, HEADER_BLOCK_LIMIT)
    block = raw[: found.end()] if found else raw[:HEADER_BLOCK_LIMIT]
    return BytesHeaderParser(policy=compat32).parsebytes(block)


def get_raw_header(part: Message, name: str) -> str | None:
    """Return the first raw value (surrogate-escaped bytes) of a header, or None."""
    wanted = name.lower()
    for key, value in part.raw_items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


def get_raw_headers(part: Message, name: str) -> list[str]:
    """Return every raw value of a header, in order."""
    wanted = name.lower()
    return [str(value) for key, value in part.raw_items() if key.lower() == wanted]


def _split_params(value: str) -> list[str]:
    """Split a header value on semicolons that are outside quoted strings."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == ";" and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_params(raw_value: str | None) -> dict[str, str]:
    """Parse and decode the parameters of a Content-Type or Content-Disposition header.

    RFC 2231 sections (``name*0*``, ``name*1*``) are joined as bytes before decoding, so a
    character split across sections survives. Plain values may contain RFC 2047 words or raw bytes.
    """
    if not raw_value:
        return {}
    plain: dict[str, str] = {}
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    for piece in _split_params(re.sub(r"\r?\n[ \t]*", " ", raw_value))[1:]:
        if "=" not in piece:
            continue
        key, _, value = piece.partition("=")
        match = _SECTION.match(key.strip().lower())
        if match is None:
            continue
        name = match.group("name")
        if match.group("number") is None and match.group("encoded") is None:
            plain[name] = _unquote(value)
            continue
        number = int(match.group("number") or 0)
        sections.setdefault(name, []).append((number, bool(match.group("encoded")), _unquote(value)))

    result = {name: decode_header_text(value) for name, value in plain.items()}
    for name, parts in sections.items():
        parts.sort(key=lambda item: item[0])
        charset: str | None = None
        data = bytearray()
        for index, (_, encoded, text) in enumerate(parts):
            if encoded and index == 0 and text.count("'") >= 2:
                charset, _, text = text.split("'", 2)
            raw = to_raw_bytes(text)
            data.extend(urllib.parse.unquote_to_bytes(raw) if encoded else raw)
        if charset is None or normalize_charset(charset) is None:
            result[name] = decode_header_text(bytes(data))
        else:
            result[name] = decode_text(bytes(data), charset)
    return result


def get_content_type(part: Message) -> str:
    """Return the lower-cased MIME type of a part."""
    return part.get_content_type().lower()


def get_part_filename(part: Message) -> str | None:
    """Return the decoded file name from Content-Disposition, else from Content-Type's name."""
    disposition = parse_params(get_raw_header(part, "Content-Disposition"))
    name = disposition.get("filename")
    if not name:
        name = parse_params(get_raw_header(part, "Content-Type")).get("name")
    if name is None:
        return None
    name = name.strip().replace("\x00", "")
    return name or None


def get_disposition(part: Message) -> str:
    """Return the disposition type (attachment, inline or empty) of a part."""
    raw = get_raw_header(part, "Content-Disposition") or ""
    return raw.split(";", 1)[0].strip().lower()


def iter_parts(message: Message, depth: int = 0) -> Iterator[tuple[Message, int]]:
    """Yield every part in walk order with its depth; parts of an attached message get depth + 1."""
    yield message, depth
    if get_content_type(message) in {"message/rfc822", "message/global"}:
        payload = message.get_payload()
        if isinstance(payload, list):
            for inner in payload:
                if isinstance(inner, Message):
                    yield from iter_parts(inner, depth + 1)
        return
    if message.is_multipart():
        for child in message.get_payload():
            if isinstance(child, Message):
                yield from iter_parts(child, depth)


def get_attached_message(part: Message) -> Message | None:
    """Return the message inside a message/rfc822 part, or None."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def decode_payload(part: Message) -> bytes:
    """Return a leaf part's decoded bytes (base64 missing its padding is still decoded).

    A large base64 body that ``parsers.largeparts`` kept out of the MIME parser comes from there.
    """
    decoded = get_decoded_body(part)
    if decoded is not None:
        return decoded
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return b""


def is_attachment(part: Message) -> bool:
    """Tell whether a part is a file: it has a file name, or it is an attached message."""
    if part.is_multipart() and get_content_type(part) not in {"message/rfc822", "message/global"}:
        return False
    if get_content_type(part) in {"message/rfc822", "message/global"}:
        return True
    return get_part_filename(part) is not None


def collect_attachments(message: Message, limits: DocumentLimits | None = None) -> list[Attachment]:
    """Return every attachment in walk order, unpacking attached messages, winmail.dat and zip archives.

    The members of a zip follow it, in archive order, with depth + 1 and the zip as container.
    """
    limits = limits or DocumentLimits()
    attachments: list[Attachment] = []
    message_at_depth: dict[int, int] = {}  # depth -> index of the latest attached message there
    for part, depth in iter_parts(message):
        if part is message or not is_attachment(part):
            continue
        container = message_at_depth.get(depth - 1) if depth > 0 else None
        content_type = get_content_type(part)
        filename = get_part_filename(part)
        if content_type in {"message/rfc822", "message/global"}:
            inner = get_attached_message(part)
            if filename is None:
                subject = decode_header_text(get_raw_header(inner, "Subject")) if inner else ""
                filename = (subject.strip() or "转发邮件") + ".eml"
            data = _message_bytes(inner) if inner is not None else b""
            message_at_depth[depth] = len(attachments)
            attachments.append(
                _make_attachment(filename, content_type, data, depth, container, limits, DocumentKind.MESSAGE)
            )
            continue
        data = decode_payload(part)
        _append_file(attachments, filename or "attachment", content_type, data, depth, container, limits)
        if is_tnef(data):
            tnef_index = len(attachments) - 1
            for packed in unpack_tnef(data):
                _append_file(
                    attachments, packed.filename, "application/octet-stream", packed.data, depth + 1, tnef_index, limits
                )
    return attachments


def _append_file(
    attachments: list[Attachment],
    filename: str,
    content_type: str,
    data: bytes,
    depth: int,
    container: int | None,
    limits: DocumentLimits,
    zip_level: int = 1,
    budget: ReadBudget | None = None,
) -> None:
    """Append one file; a zip archive is followed by its members (depth + 1, container = the zip).

    ``zip_level`` is the nesting level the file would be opened at if it is an archive: 1 for an
    archive attached to the mail, 2 for an archive inside it. One read budget
    (zip_max_total_bytes) is shared by an archive and every archive nested in it.
    """
    attachment = _make_attachment(filename, content_type, data, depth, container, limits)
    if attachment.kind is not DocumentKind.ZIP or attachment.warning:
        attachments.append(attachment)
        return
    if zip_level > limits.zip_max_depth:
        logger.warning("nested zip at level %d not opened (limit %d)", zip_level, limits.zip_max_depth)
        attachments.append(replace(attachment, warning=warn_limit(LimitKind.DEPTH, limits, filename)))
        return
    budget = budget or ReadBudget(limits.zip_max_total_bytes)
    try:
        contents = read_zip_members(data, limits, budget)
    except ZIP_ERRORS as exc:
        logger.warning("zip could not be opened: %s", type(exc).__name__)
        attachments.append(replace(attachment, warning=WARNING_ZIP_BROKEN))
        return
    warning = "".join(contents.warnings) or None
    attachments.append(replace(attachment, warning=warning))
    zip_index = len(attachments) - 1
    for member in contents.members:
        member_type = mimetypes.guess_type(member.filename)[0] or "application/octet-stream"
        _append_file(
            attachments, member.filename, member_type, member.data, depth + 1, zip_index, limits, zip_level + 1, budget
        )


def count_photos(attachments: Iterable[Attachment]) -> int:
    """Return how many attachments are images (JPEG, PNG, GIF, BMP, TIFF, WebP, HEIC), inside archives too."""
    # NOTE: an image in a signature that has a file name counts as well, because a part does not
    # say reliably whether it is a photo of the item.
    return sum(1 for attachment in attachments if attachment.kind is DocumentKind.IMAGE)


def _make_attachment(
    filename: str,
    content_type: str,
    data: bytes,
    depth: int,
    container: int | None,
    limits: DocumentLimits,
    kind: DocumentKind | None = None,
) -> Attachment:
    digest = hashlib.sha256(data).hexdigest()
    if kind is DocumentKind.MESSAGE:
        return Attachment(filename, content_type, data, digest, kind, depth=depth, container_index=container)
    document = read_document(data, content_type, limits)
    warning = document.warnings[0] if document.warnings else None
    if warning == WARNING_UNKNOWN:
        warning = None  # an unknown binary (winmail.dat, archives) is not an error by itself
    return Attachment(filename, content_type, data, digest, document.kind, document.text, warning, depth, container)


def _message_bytes(message: Message) -> bytes:
    """Return an attached message's bytes; a message holding text that cannot be encoded is written as UTF-8."""
    try:
        return message.as_bytes()
    except (UnicodeEncodeError, LookupError):
        pass
    try:
        return message.as_string().encode("utf-8", "replace")
    except (UnicodeEncodeError, LookupError):
        return b""
