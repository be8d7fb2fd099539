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


def content_fingerprint(raw: bytes) -> str:
    """Return the sha256 hex digest of the originator headers (unfolded, sorted) and the body."""
    match = _HEADER_END.search(raw)
    head, body = (raw[: match.start()], raw[match.end() :]) if match else (raw, b"")
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
    digest.update(body.replace(b"\r\n", b"\n"))
    return digest.hexdigest()
