"""Content fingerprint of a raw mail that ignores what relays add on the way.

Two deliveries of one mail differ in Received, Return-Path, Delivered-To and similar trace
headers; the fingerprint covers only what the sender wrote: the originator headers and the body.
"""

from __future__ import annotations

import hashlib
import re

# Headers written by the sender's client (RFC 5322 sections 3.6.1-3.6.5), plus the MIME headers that
# decide how the body reads.
_ORIGINATOR_HEADERS = (
    b"from",
    b"sender",
    b"to",
    b"cc",
    b"date",
    b"subject",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n[ \t]+")
_CHUNK_BYTES = 1024 * 1024  # body bytes normalized and hashed per step


def content_fingerprint(raw: bytes) -> str:
    """Return the sha256 hex digest of the originator headers (unfolded, sorted) and the body.

    The body is hashed with CRLF turned into LF, one chunk at a time, so a large mail is not copied whole.
    """
    match = _HEADER_END.search(raw)
    head, body_start = (raw[: match.start()], match.end()) if match else (raw, len(raw))
    unfolded = _FOLD.sub(b" ", head)
    kept: list[bytes] = []
    for line in re.split(rb"\r?\n", unfolded):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in _ORIGINATOR_HEADERS:
            kept.append(name.strip().lower() + b":" + b" ".join(value.split()))
    digest = hashlib.sha256()
    for line in sorted(kept):
        digest.update(line + b"\n")
    digest.update(b"\n")
    _update_normalized_body(digest, raw, body_start)
    return digest.hexdigest()


def _update_normalized_body(digest: hashlib._Hash, raw: bytes, start: int) -> None:
    """Feed ``raw[start:]`` to ``digest`` with every CRLF replaced by LF."""
    view = memoryview(raw)
    position = start
    while position < len(raw):
        stop = min(position + _CHUNK_BYTES, len(raw))
        while stop < len(raw) and raw[stop - 1] == 0x0D:
            stop += 1  # a chunk never ends in CR, so no CRLF is split between two chunks
        digest.update(view[position:stop].tobytes().replace(b"\r\n", b"\n"))
        position = stop
