"""Keep large base64 bodies out of the standard library MIME parser.

``email``'s feed parser keeps a message several times over while it parses it: the decoded text,
its lines and each part's joined payload. tracemalloc measured 7.7 times the message size for
the 10 MiB message of ``bench/large_message.py``. This module walks the MIME structure of the
raw bytes itself, finds base64 leaf bodies of at least ``LARGE_BODY_BYTES``, and lets the caller
parse a copy in which each such body is replaced by a one-line placeholder. Each body is then
decoded straight from the raw bytes and recorded for its part, where
``parsers.mime.decode_payload`` finds it.

The result is the same tree the plain parse builds, with two exceptions. A placeholder part's
payload string is the placeholder, unless the part sits inside an attached message: there the
original text is put back, because the attached message is serialized with ``as_bytes``. And a
base64 body missing its padding gets no ``InvalidBase64PaddingDefect`` in ``part.defects``.
Every replaced region contains only base64 characters and line breaks, so it cannot contain a
boundary line or a header, and replacing it cannot move any split the feed parser makes.
Whenever the walk or the check of the parsed copy finds something it does not expect, the
caller parses the raw bytes as before.
"""

from __future__ import annotations

import binascii
import logging
import re
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

logger = logging.getLogger(__name__)

LARGE_BODY_BYTES = 256 * 1024
"""Smallest base64 body, in raw bytes with line breaks, that is kept out of the parser."""

_MAX_DEPTH = 64  # deeper entities are left to the plain parse
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(rb"\r?\n")
# The line test of email.feedparser (headerRE, CPython 3.11): any other line ends the header block.
_HEADER_LINE = re.compile(rb"^(From |[\041-\071\073-\176]*:|[\t ])")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=\r\n]")
_NEWLINE_BYTES = (0x0A, 0x0D)

# Decoded bodies by the part they belong to. The parts are released with their message tree.
_DECODED_BODIES: weakref.WeakKeyDictionary[Message, bytes] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LargeBody:
    """One base64 body kept out of the parser: its raw byte range and where it sits."""

    start: int
    end: int
    inside_message: bool  # below a message/* part, so the tree must keep its text


class _Walk:
    """Collect the large base64 bodies of one raw message."""

    def __init__(self, raw: bytes, threshold: int) -> None:
        self.raw = raw
        self.threshold = threshold
        self.bodies: list[LargeBody] = []

    def walk_entity(
        self,
        start: int,
        end: int,
        *,
        digest_child: bool,
        boundaries: tuple[bytes, ...],
        inside_message: bool,
        depth: int,
    ) -> None:
        """Walk one entity (headers and body) in ``raw[start:end]``."""
        if depth > _MAX_DEPTH:
            return
        entity = self._split_entity(start, end)
        if entity is None:
            return
        headers, body_start = entity
        if digest_child:
            headers.set_default_type("message/rfc822")
        content_type = headers.get_content_type()
        if content_type == "message/delivery-status":
            return  # the feed parser reads this body as header blocks

        if headers.get_content_maintype() == "message":
            self.walk_entity(
                body_start, end, digest_child=False, boundaries=boundaries, inside_message=True, depth=depth + 1
            )
            return

        if headers.get_content_maintype() == "multipart":
            boundary = headers.get_boundary()
            if boundary is None:
                return
            try:
                boundary_bytes = boundary.encode("ascii")
            except UnicodeEncodeError:
                return
            if boundary_bytes in boundaries:
                return
            self.walk_multipart(
                body_start,
                end,
                boundary_bytes,
                digest=content_type == "multipart/digest",
                boundaries=(*boundaries, boundary_bytes),
                inside_message=inside_message,
                depth=depth,
            )
            return

        encoding = str(headers.get("content-transfer-encoding", "")).lower()
        if encoding == "base64":
            self.add_body(body_start, end, inside_message=inside_message)

    def _split_entity(self, start: int, end: int) -> tuple[Message, int] | None:
        """Return the parsed headers of an entity and where its body starts.

        Returns None when the entity has no header block, no blank line after it, or a line that
        would end the headers early for the feed parser. The walk then leaves the entity alone.
        """
        match = _BLANK_LINE.search(self.raw, start, end)
        if match is None or match.start() == start:
            return None
        block = self.raw[start : match.start()]
        if block.count(b"\r") != block.count(b"\r\n"):
            return None  # the feed parser also ends a line at a lone CR
        for line in _LINE_BREAK.split(block):
            if not _HEADER_LINE.match(line):
                return None
        return BytesHeaderParser().parsebytes(block), match.end()

    def walk_multipart(
        self,
        body_start: int,
        end: int,
        boundary: bytes,
        *,
        digest: bool,
        boundaries: tuple[bytes, ...],
        inside_message: bool,
        depth: int,
    ) -> None:
        """Walk the parts of a multipart body, unless it has no close delimiter."""
        # The same line test as the feed parser's: "--boundary", an optional "--", blanks, end of line.
        delimiter = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.M)
        ranges: list[tuple[int, int]] = []
        part_start: int | None = None
        position = body_start
        while True:
            match = delimiter.search(self.raw, position, end)
            if match is None:
                return  # no close delimiter: the feed parser would guess, so leave it to the plain parse
            if part_start is not None:
                ranges.append((part_start, match.start()))
            if match.group(1):
                break
            part_start = position = match.end() + 1  # past the newline that ends the delimiter line
            if part_start > end:
                return
        for start, stop in ranges:
            self.walk_entity(
                start, stop, digest_child=digest, boundaries=boundaries, inside_message=inside_message, depth=depth + 1
            )

    def add_body(self, start: int, end: int, *, inside_message: bool) -> None:
        """Record ``raw[start:end]`` when it is a large, well-formed base64 body (line breaks trimmed)."""
        raw = self.raw
        while start < end and raw[start] in _NEWLINE_BYTES:
            start += 1
        while end > start and raw[end - 1] in _NEWLINE_BYTES:
            end -= 1
        if end - start < self.threshold or measure_base64(raw, start, end) is None:
            return
        self.bodies.append(LargeBody(start, end, inside_message))


def measure_base64(raw: bytes, start: int, end: int) -> int | None:
    """Return the count of base64 characters in ``raw[start:end]``, or None when it is not clean base64.

    Clean means: only the base64 alphabet and line breaks, at most two '=' and only at the very
    end, and a length the email package decodes without a fallback: a multiple of 4, or 2 or 3
    beyond one when there is no padding, because ``email``'s ``decode_b`` then adds the padding.
    """
    if _NOT_BASE64.search(raw, start, end) is not None:
        return None
    padding = 0
    while padding < 2 and end - padding > start and raw[end - padding - 1] == 0x3D:
        padding += 1
    if raw.find(b"=", start, end - padding) != -1:
        return None
    count = (end - start) - raw.count(b"\n", start, end) - raw.count(b"\r", start, end)
    if padding and count % 4:
        return None
    if count % 4 == 1:
        return None
    return count


def decode_base64_body(raw: bytes, body: LargeBody) -> bytes:
    """Decode one clean base64 body from the raw bytes without copying its text first."""
    count = measure_base64(raw, body.start, body.end)
    if count is None:
        raise ValueError(f"body at byte {body.start} is not clean base64")
    view = memoryview(raw)
    missing = count % 4
    if not missing:
        return binascii.a2b_base64(view[body.start : body.end])
    # Decode the full quads, then the last 2 or 3 characters with the padding the email package adds.
    cut = body.end
    remaining = missing
    while remaining:
        cut -= 1
        if raw[cut] not in _NEWLINE_BYTES:
            remaining -= 1
    head = binascii.a2b_base64(view[body.start : cut])
    tail = binascii.a2b_base64(raw[cut : body.end] + b"=" * (4 - missing))
    # NOTE: joining copies the decoded bytes once more, so a body without padding briefly needs twice its size.
    return head + tail


def find_large_bodies(raw: bytes, threshold: int | None = None) -> list[LargeBody]:
    """Return the large base64 leaf bodies of ``raw`` in byte order (empty when there are none).

    ``threshold`` defaults to ``LARGE_BODY_BYTES``, read at call time.
    """
    threshold = LARGE_BODY_BYTES if threshold is None else threshold
    if len(raw) < threshold:
        return []
    walk = _Walk(raw, threshold)
    walk.walk_entity(0, len(raw), digest_child=False, boundaries=(), inside_message=False, depth=0)
    return walk.bodies


def build_reduced_copy(raw: bytes, bodies: list[LargeBody], tokens: list[bytes]) -> bytes:
    """Return ``raw`` with each body replaced by its token."""
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    position = 0
    for body, token in zip(bodies, tokens, strict=True):
        pieces.append(view[position : body.start])
        pieces.append(token)
        position = body.end
    pieces.append(view[position:])
    return b"".join(pieces)


def read_without_large_bodies(raw: bytes, parse_tree: Callable[[bytes], Message]) -> Message | None:
    """Parse ``raw`` with its large base64 bodies kept out of ``parse_tree``.

    Returns None when the message has no such body or the parsed copy does not match the walk,
    and the caller then parses ``raw`` itself.
    """
    bodies = find_large_bodies(raw)
    if not bodies:
        return None
    prefix = b"ZWXXLARGEBODY" + secrets.token_hex(12).upper().encode("ascii")
    if raw.find(prefix) != -1:
        return None
    tokens = [prefix + b"N%d" % index for index, _ in enumerate(bodies)]
    try:
        message = parse_tree(build_reduced_copy(raw, bodies, tokens))
    except Exception as exc:  # noqa: BLE001 - the plain parse of raw decides what error the caller sees
        logger.info("parsing the copy without large bodies failed (%s); parsing the whole message", type(exc).__name__)
        return None
    parts = _match_tokens(message, prefix, [token.decode("ascii") for token in tokens])
    if parts is None:
        logger.info("large bodies did not map onto the parsed parts; parsing the whole message")
        return None
    for body, token, part in zip(bodies, tokens, parts, strict=True):
        _DECODED_BODIES[part] = decode_base64_body(raw, body)
        if body.inside_message:
            text = raw[body.start : body.end].decode("ascii")
            part.set_payload(str(part.get_payload()).replace(token.decode("ascii"), text))
    logger.debug("%d large base64 bodies decoded outside the MIME parser", len(bodies))
    return message


def _match_tokens(message: Message, prefix: bytes, tokens: list[str]) -> list[Message] | None:
    """Return, for each token, the part whose whole payload it is, or None when any token is not."""
    marker = prefix.decode("ascii")
    found: dict[str, Message] = {}
    for part in message.walk():
        payload = part.get_payload()
        if not isinstance(payload, str) or marker not in payload:
            continue
        token = payload.strip("\r\n")
        if token not in tokens or token in found or payload.count(marker) != 1:
            return None
        if str(part.get("content-transfer-encoding", "")).lower() != "base64":
            return None
        found[token] = part
    if len(found) != len(tokens):
        return None
    return [found[token] for token in tokens]


def get_decoded_body(part: Message) -> bytes | None:
    """Return the bytes decoded outside the parser for this part, or None for an ordinary part."""
    return _DECODED_BODIES.get(part)
