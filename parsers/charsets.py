"""Charset handling for Chinese mail: label aliases, detection and RFC 2047 header decoding.

Chinese clients (Foxmail, Outlook) label GBK bytes as gb2312, so every GB label is decoded as
gb18030, a superset of both. Python's gb2312 codec maps bytes A1AA to U+2015 instead of the
em dash U+2014 that GBK means, and it rejects GBK-only characters such as 堃.
"""

from __future__ import annotations

import base64
import codecs
import logging
import quopri
import re

import charset_normalizer

logger = logging.getLogger(__name__)

_GB_LABELS = frozenset(
    {"gb2312", "gbk", "cp936", "x-gbk", "gb_2312-80", "gb_2312", "euc-cn", "csgb2312", "x-euc-cn", "ms936"}
)

# RFC 2047 encoded word: =?charset[*lang]?B|Q?text?=
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def normalize_charset(label: str | None) -> str | None:
    """Return the Python codec name to use for a MIME charset label, or None when unknown."""
    if not label or not label.isascii():
        return None
    name = label.strip().strip('"').lower()
    if "*" in name:  # RFC 2231 language suffix: utf-8*zh
        name = name.split("*", 1)[0]
    if name in _GB_LABELS or name == "gb18030":
        return "gb18030"
    if name in {"unknown-8bit", "x-unknown"}:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def detect_text(data: bytes) -> str:
    """Decode bytes with no usable charset: UTF-8 when valid, else the detected charset, else gb18030."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is not None and best.encoding:
        codec = normalize_charset(best.encoding) or best.encoding
        return data.decode(codec, errors="replace")
    return data.decode("gb18030", errors="replace")


def decode_text(data: bytes, label: str | None) -> str:
    """Decode a text part: the declared charset (GB labels as gb18030), else detection."""
    codec = normalize_charset(label)
    if codec is not None and codec != "ascii":
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            logger.debug("part is not valid %s, detecting its charset", codec)
    return detect_text(data)


def decode_raw_header_bytes(data: bytes) -> str:
    """Decode header bytes sent without RFC 2047: UTF-8 first, then gb18030."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def to_raw_bytes(value: str) -> bytes:
    """Return the original bytes of a header string that the email package read with surrogateescape."""
    return value.encode("ascii", "surrogateescape") if _is_ascii_or_escaped(value) else value.encode("utf-8")


def _is_ascii_or_escaped(value: str) -> bool:
    return all(ord(ch) < 128 or 0xDC80 <= ord(ch) <= 0xDCFF for ch in value)


def decode_base64_lenient(text: str | bytes) -> bytes:
    """Decode base64 that may lack its padding or carry a stray final character."""
    data = text.encode("ascii", "surrogateescape") if isinstance(text, str) else text
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
    return base64.b64decode(data + b"=" * (-len(data) % 4))


def _decode_word_payload(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        return decode_base64_lenient(text)
    return quopri.decodestring(text.replace("_", " ").encode("ascii", "surrogateescape"), header=False)


def decode_header_text(value: str | bytes | None) -> str:
    """Decode a header value: raw 8-bit bytes and RFC 2047 encoded words, wherever they appear.

    Adjacent encoded words in the same charset are joined as bytes before decoding, because
    some clients (Foxmail 6) cut a multibyte character across two words. Encoded words inside
    quoted strings are decoded too, as most clients do although RFC 2047 forbids them there.
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        raw = value
    else:
        raw = to_raw_bytes(value)
    text = raw.decode("ascii", "surrogateescape")
    text = re.sub(r"\r?\n[ \t]*", " ", text)

    pieces: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            pieces.append(decode_text(bytes(pending), pending_charset))
        pending = bytearray()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        charset = match.group(1).split("*", 1)[0]
        if gap and not (gap.isspace() and pending):
            flush()
            pieces.append(decode_raw_header_bytes(gap.encode("ascii", "surrogateescape")))
        elif pending and normalize_charset(charset) != normalize_charset(pending_charset):
            flush()
        pending_charset = charset
        pending.extend(_decode_word_payload(match.group(2), match.group(3)))
        position = match.end()
    flush()
    tail = text[position:]
    if tail:
        pieces.append(decode_raw_header_bytes(tail.encode("ascii", "surrogateescape")))
    return "".join(pieces)
