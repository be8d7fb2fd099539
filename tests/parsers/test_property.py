"""Property test: damaged real mail never makes the parsers raise anything but MessageParseError.

Each example takes one corpus or fault-case message and damages it the way transfers and broken
clients do: flipped bytes, truncation, a slice of another message spliced in, duplicated header
lines and damaged MIME boundaries. ``parse_message`` may reject the result only with
MessageParseError, and ``extract_items`` must accept whatever ``parse_message`` returned.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.errors import MessageParseError
from parsers.items import extract_items
from parsers.message import parse_message

CST = ZoneInfo("Asia/Shanghai")
SHARED = Path(os.environ.get("ZWXX_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)


def load_messages() -> list[bytes]:
    files = sorted((SHARED / "corpus" / "eml").glob("*.eml")) + sorted((SHARED / "cases" / "eml").glob("*.eml"))
    return [path.read_bytes() for path in files]


MESSAGES = load_messages() if SHARED.is_dir() else []


def flip_bytes(raw: bytes, positions: list[int], values: list[int]) -> bytes:
    data = bytearray(raw)
    for position, value in zip(positions, values, strict=False):
        data[position % len(data)] = value
    return bytes(data)


def truncate(raw: bytes, fraction: float) -> bytes:
    return raw[: int(len(raw) * fraction)]


def splice(raw: bytes, other: bytes, at: float, start: float, length: int) -> bytes:
    cut = int(len(raw) * at)
    begin = int(len(other) * start)
    return raw[:cut] + other[begin : begin + length] + raw[cut:]


def duplicate_headers(raw: bytes, picks: list[int]) -> bytes:
    head, separator, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    lines = head.splitlines(keepends=True)
    if not lines:
        return raw
    extra = [lines[pick % len(lines)] for pick in picks]
    return b"".join(lines + extra) + separator + body


def damage_boundaries(raw: bytes, mode: int, pick: int) -> bytes:
    """Break one MIME boundary: drop its closing line, mangle one delimiter, or change its declaration."""
    boundaries = _BOUNDARY.findall(raw)
    if not boundaries:
        return raw
    boundary = boundaries[pick % len(boundaries)]
    if mode == 0:
        return raw.replace(b"--" + boundary + b"--", b"", 1)
    if mode == 1:
        index = raw.rfind(b"--" + boundary)
        return raw if index < 0 else raw[:index] + b"-" + raw[index + 3 :]
    return raw.replace(boundary, boundary[:-1] or b"x", 1)


@st.composite
def damaged_messages(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(MESSAGES))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not raw:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "headers", "boundary"]))
        if kind == "flip":
            count = draw(st.integers(min_value=1, max_value=20))
            positions = draw(st.lists(st.integers(min_value=0), min_size=count, max_size=count))
            values = draw(st.lists(st.integers(min_value=0, max_value=255), min_size=count, max_size=count))
            raw = flip_bytes(raw, positions, values)
        elif kind == "truncate":
            raw = truncate(raw, draw(st.floats(min_value=0.0, max_value=1.0)))
        elif kind == "splice":
            other = draw(st.sampled_from(MESSAGES))
            raw = splice(
                raw,
                other,
                draw(st.floats(min_value=0.0, max_value=1.0)),
                draw(st.floats(min_value=0.0, max_value=1.0)),
                draw(st.integers(min_value=1, max_value=4096)),
            )
        elif kind == "headers":
            raw = duplicate_headers(raw, draw(st.lists(st.integers(min_value=0), min_size=1, max_size=8)))
        else:
            raw = damage_boundaries(raw, draw(st.integers(0, 2)), draw(st.integers(min_value=0)))
    return raw


@pytest.mark.skipif(not MESSAGES, reason=f"no corpus messages under {SHARED}; set ZWXX_SHARED")
@settings(
    max_examples=200,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged_messages())
def test_damaged_mail_raises_only_parse_error(raw: bytes) -> None:
    try:
        parsed = parse_message(raw, default_tz=CST)
    except MessageParseError as exc:
        assert exc.reason
        return
    assert isinstance(parsed.subject, str)
    drafts = extract_items(parsed)
    assert len(drafts) <= 1


def test_wrapped_error_keeps_cause() -> None:
    # Deeper MIME nesting than the interpreter's recursion limit: a real input that fails inside
    # the email package, not in code of this project.
    depth = 2000
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    raw = b"From: a@example.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n" + opening + b"text\r\n" + closing

    with pytest.raises(MessageParseError) as caught:
        parse_message(raw, default_tz=CST)

    assert "嵌套过深" in caught.value.reason
    assert isinstance(caught.value.__cause__, RecursionError)


def test_damage_helpers_change_the_bytes() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="zz"\r\nSubject: a\r\n\r\n--zz\r\nbody\r\n--zz--\r\n'
    assert flip_bytes(raw, [0], [0x41])[0] == 0x41
    assert truncate(raw, 0.5) == raw[: len(raw) // 2]
    assert splice(raw, b"XYZ", 0.0, 0.0, 2) == b"XY" + raw
    assert duplicate_headers(raw, [1]).count(b"Subject: a") == 2
    assert b"--zz--" not in damage_boundaries(raw, 0, 0)
    assert damage_boundaries(raw, 2, 0).startswith(b'Content-Type: multipart/mixed; boundary="z"')
