"""Files unpacked from TNEF streams (winmail.dat)."""

from __future__ import annotations

import struct

from parsers.tnef import TNEF_SIGNATURE, is_tnef, unpack_tnef


def _attribute(level: int, tag: int, value: bytes) -> bytes:
    checksum = sum(value) & 0xFFFF
    return struct.pack("<BII", level, tag, len(value)) + value + struct.pack("<H", checksum)


def _stream(*attributes: bytes) -> bytes:
    return struct.pack("<IH", TNEF_SIGNATURE, 0x0001) + b"".join(attributes)


def _file(name: bytes, data: bytes) -> bytes:
    return (
        _attribute(2, 0x00069002, b"\x01\x00" + b"\x00" * 12)
        + _attribute(2, 0x00018010, name + b"\x00")
        + _attribute(2, 0x0006800F, data)
    )


def test_files_and_code_page_names() -> None:
    stream = _stream(
        _attribute(1, 0x00069007, struct.pack("<II", 936, 0)),
        _file("庙会安排.docx".encode("gbk"), b"PK\x03\x04first"),
        _file(b"photo.jpg", b"\xff\xd8\xffsecond"),
    )
    files = unpack_tnef(stream)
    assert [file.filename for file in files] == ["庙会安排.docx", "photo.jpg"]
    assert files[0].data == b"PK\x03\x04first"
    assert files[1].data == b"\xff\xd8\xffsecond"


def test_truncated_stream_keeps_complete_files() -> None:
    stream = _stream(_file(b"a.docx", b"one"), _file(b"b.docx", b"two" * 100))
    files = unpack_tnef(stream[:-50])
    assert [file.filename for file in files] == ["a.docx"]


def test_not_tnef() -> None:
    assert not is_tnef(b"PK\x03\x04")
    assert unpack_tnef(b"garbage") == []
