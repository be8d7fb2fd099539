"""read_header_block: the headers of a mail without reading its body, in little memory."""

from __future__ import annotations

import tracemalloc

from parsers.mime import HEADER_BLOCK_LIMIT, read_header_block

HEAD = (
    b"From: =?UTF-8?B?5oiQ6YO9?= <cdly@example.gov.cn>\r\n"
    b"Subject: =?UTF-8?B?5L+h5oGv?=\r\n"
    b"Reply-To: zwxx+zw12-abc@example.gov.cn\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
)


def test_header_block_reads_headers_only() -> None:
    raw = HEAD + b"\r\n" + b"Subject: not a header\r\n" + b"x" * 1000

    headers = read_header_block(raw)

    assert headers.get_all("Subject") == ["=?UTF-8?B?5L+h5oGv?="]
    assert headers["Reply-To"] == "zwxx+zw12-abc@example.gov.cn"
    assert headers.get_payload() == ""


def test_header_block_with_bare_line_feeds() -> None:
    raw = HEAD.replace(b"\r\n", b"\n") + b"\n" + b"Reply-To: other@example.com\n\nbody\n"

    headers = read_header_block(raw)

    assert headers.get_all("Reply-To") == ["zwxx+zw12-abc@example.gov.cn"]


def test_header_block_of_large_mail_costs_little_memory() -> None:
    raw = HEAD + b"\r\n" + (b"QUJDREVGR0g=" * 6 + b"\r\n") * 300_000  # about 22 MB of base64 body

    tracemalloc.start()
    try:
        headers = read_header_block(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert headers["From"] is not None
    assert len(raw) > 20_000_000
    assert peak < 1_000_000


def test_header_block_without_blank_line_is_cut() -> None:
    raw = HEAD + b"X-Filler: " + b"y" * (2 * HEADER_BLOCK_LIMIT)

    headers = read_header_block(raw)

    assert headers["Reply-To"] == "zwxx+zw12-abc@example.gov.cn"
    assert len(str(headers["X-Filler"])) < HEADER_BLOCK_LIMIT
