"""Legacy .doc/.wps conversion with the real antiword (and LibreOffice when it is installed)."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import time
from datetime import UTC
from email.message import EmailMessage
from pathlib import Path

import pytest

from daemon.config import DocConverter, DocumentSettings
from daemon.convert import NOTE_CONVERTED, convert_legacy_documents, find_converter
from parsers.documents import WARNING_DOC, detect_kind, has_word_stream
from parsers.message import parse_message
from parsers.model import DocumentKind, ParsedMessage
from tests.parsers.test_archives import build_zip

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("ZWXX_SHARED", REPO.parent / "shared"))
RENAMED_OLE2 = SHARED / "cases" / "docx" / "D5_legacy_doc_renamed.docx"

ITEM_PARAGRAPHS = [
    "关于开展文化旅游消费季活动的通知",
    "\u3000\u3000各市文化和旅游局：现将有关事项通知如下。",
    "审核：张三",
]

_SECTOR = 512
_FREE, _END, _FAT_SECTOR = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
_STREAM_BYTES = 4096  # the mini-stream cutoff: both streams then live in regular 512-byte sectors


def _directory_entry(name: str, kind: int, start: int, size: int, *, left: int = _FREE, child: int = _FREE) -> bytes:
    encoded = (name + "\0").encode("utf-16-le") if name else b""
    entry = encoded.ljust(64, b"\0")
    entry += struct.pack("<HBB", len(encoded), kind, 1)  # name length, object type, black
    entry += struct.pack("<III", left, _FREE, child)
    entry += b"\0" * 36  # CLSID, state bits, creation and modification times
    return entry + struct.pack("<IQ", start, size)


def _build_compound_file(streams: list[tuple[str, bytes]]) -> bytes:
    """Return a version 3 compound file (OLE2) holding two streams, the first a child of the root."""
    fat = [_FAT_SECTOR, _END]  # sector 0 is the FAT, sector 1 the directory
    placed: list[tuple[int, int]] = []
    data_sectors: list[bytes] = []
    next_sector = 2
    for _, data in streams:
        padded = data.ljust(max(_STREAM_BYTES, -(-len(data) // _SECTOR) * _SECTOR), b"\0")
        count = len(padded) // _SECTOR
        placed.append((next_sector, len(padded)))
        fat += [next_sector + i + 1 for i in range(count - 1)] + [_END]
        data_sectors.append(padded)
        next_sector += count
    fat += [_FREE] * (_SECTOR // 4 - len(fat))
    (first_start, first_size), (second_start, second_size) = placed
    directory = _directory_entry("Root Entry", 5, _END, 0, child=1)
    directory += _directory_entry(streams[0][0], 2, first_start, first_size, left=2)
    directory += _directory_entry(streams[1][0], 2, second_start, second_size)
    directory += _directory_entry("", 0, 0, 0)
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
    header += struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
    header += struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, _END, 0, _END, 0)
    header += struct.pack("<109I", 0, *([_FREE] * 108))
    return header + struct.pack(f"<{len(fat)}I", *fat) + directory + b"".join(data_sectors)


def build_doc(paragraphs: list[str]) -> bytes:
    """Return a minimal Word 97 .doc: a FIB, UTF-16 text in one piece, an empty stylesheet."""
    text = "\r".join(paragraphs) + "\r"
    encoded = text.encode("utf-16-le")
    text_offset = 0x800
    fib = bytearray(text_offset)
    struct.pack_into("<HHHHH", fib, 0, 0xA5EC, 0x00C1, 0, 0x0804, 0)  # wIdent, nFib (Word 97), lid zh-CN
    struct.pack_into("<H", fib, 10, 0x0200 | 0x1000)  # fWhichTblStm (1Table), fExtChar
    struct.pack_into("<H", fib, 12, 0x00BF)  # nFibBack
    struct.pack_into("<H", fib, 32, 14)  # csw
    struct.pack_into("<H", fib, 62, 22)  # cslw
    struct.pack_into("<I", fib, 64, text_offset + len(encoded))  # cbMac
    struct.pack_into("<I", fib, 0x4C, len(text))  # ccpText
    struct.pack_into("<H", fib, 152, 0x5D)  # cbRgFcLcb
    piece_table = struct.pack("<II", 0, len(text)) + struct.pack("<HIH", 0, text_offset, 0)
    clx = b"\x02" + struct.pack("<I", len(piece_table)) + piece_table
    stylesheet = struct.pack("<H", 18) + struct.pack("<HHHHHH", 0, 10, 1, 0, 0, 0) + b"\0" * 6
    struct.pack_into("<II", fib, 0xA2, 0, len(stylesheet))  # fcStshf, lcbStshf
    struct.pack_into("<II", fib, 0x1A2, len(stylesheet), len(clx))  # fcClx, lcbClx
    return _build_compound_file([("WordDocument", bytes(fib) + encoded), ("1Table", stylesheet + clx)])


def _parse_mail(*files: tuple[str, bytes]) -> ParsedMessage:
    message = EmailMessage()
    message["From"] = "unit@example.cn"
    message["Subject"] = "【工作动态】关于开展文化旅游消费季活动的通知"
    message.set_content("请查收。")
    for filename, data in files:
        message.add_attachment(data, maintype="application", subtype="msword", filename=filename)
    return parse_message(message.as_bytes(), default_tz=UTC)


def _settings(converter: DocConverter, **overrides: object) -> DocumentSettings:
    return DocumentSettings(doc_converter=converter, **overrides)  # type: ignore[arg-type]


def test_built_doc_is_word_ole2() -> None:
    data = build_doc(ITEM_PARAGRAPHS)
    assert detect_kind(data) is DocumentKind.DOC
    assert has_word_stream(data)


def test_spreadsheet_ole2_not_doc() -> None:
    data = _build_compound_file([("Workbook", b"\x09\x08" * 16), ("SummaryInformation", b"\0" * 16)])
    assert detect_kind(data) is DocumentKind.OTHER
    assert not has_word_stream(data)


def test_antiword_converts_doc(antiword: str) -> None:
    parsed = _parse_mail(("通知.doc", build_doc(ITEM_PARAGRAPHS)))
    assert parsed.attachments[0].warning == WARNING_DOC
    assert parsed.warnings == (WARNING_DOC,)

    converted = convert_legacy_documents(parsed, _settings(DocConverter.ANTIWORD))
    attachment = converted.attachments[0]
    assert attachment.kind is DocumentKind.DOC
    assert attachment.text == "\n".join(ITEM_PARAGRAPHS)
    assert attachment.warning == NOTE_CONVERTED
    assert converted.warnings == (NOTE_CONVERTED,)
    assert parsed.attachments[0].text is None  # the input message is not changed


def test_antiword_converts_doc_in_zip(antiword: str) -> None:
    archive = build_zip([("材料/通知.doc", build_doc(ITEM_PARAGRAPHS)), ("照片.jpg", b"\xff\xd8\xff\xe0")])
    parsed = _parse_mail(("材料.zip", archive))
    converted = convert_legacy_documents(parsed, _settings(DocConverter.ANTIWORD))
    assert [a.kind for a in converted.attachments] == [DocumentKind.ZIP, DocumentKind.DOC, DocumentKind.IMAGE]
    assert converted.attachments[1].text == "\n".join(ITEM_PARAGRAPHS)
    assert converted.warnings == (NOTE_CONVERTED,)


def test_renamed_ole2_without_word_stream_keeps_warning(antiword: str, caplog: pytest.LogCaptureFixture) -> None:
    data = RENAMED_OLE2.read_bytes()
    assert detect_kind(data) is DocumentKind.DOC
    assert not has_word_stream(data)
    parsed = _parse_mail(("信息.docx", data))
    with caplog.at_level(logging.WARNING, logger="daemon.convert"):
        converted = convert_legacy_documents(parsed, _settings(DocConverter.ANTIWORD))
    assert converted.attachments[0].text is None
    assert converted.attachments[0].warning == WARNING_DOC
    assert converted.warnings == (WARNING_DOC,)
    assert "no WordDocument stream" in caplog.text


def test_antiword_failure_keeps_warning(antiword: str, caplog: pytest.LogCaptureFixture) -> None:
    data = bytearray(build_doc(ITEM_PARAGRAPHS))
    fib_start = data.index(b"\xec\xa5\xc1\x00")  # wIdent and nFib at the start of WordDocument
    struct.pack_into("<H", data, fib_start + 10, 0x1200 | 0x0100)  # set fEncrypted: antiword exits 1
    parsed = _parse_mail(("通知.doc", bytes(data)))
    with caplog.at_level(logging.WARNING, logger="daemon.convert"):
        converted = convert_legacy_documents(parsed, _settings(DocConverter.ANTIWORD))
    assert converted.attachments[0].text is None
    assert converted.warnings == (WARNING_DOC,)
    assert "not converted by antiword" in caplog.text
    assert "Encrypted documents are not supported" in caplog.text


def test_missing_converter_keeps_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(DocConverter.ANTIWORD, converter_path=str(tmp_path / "no-such-antiword"))
    assert find_converter(settings) is None
    parsed = _parse_mail(("通知.doc", build_doc(ITEM_PARAGRAPHS)))
    with caplog.at_level(logging.WARNING, logger="daemon.convert"):
        converted = convert_legacy_documents(parsed, settings)
    assert converted.attachments[0].text is None
    assert converted.warnings == (WARNING_DOC,)
    assert "not found" in caplog.text


def test_converter_timeout_keeps_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A stand-in converter that never finishes; only the timeout handling is under test here.
    script = tmp_path / "slow-antiword"
    script.write_text("#!/bin/sh\nsleep 30\n", encoding="ascii")
    script.chmod(0o755)
    settings = _settings(DocConverter.ANTIWORD, converter_path=str(script), converter_timeout=1)
    parsed = _parse_mail(("通知.doc", build_doc(ITEM_PARAGRAPHS)))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="daemon.convert"):
        converted = convert_legacy_documents(parsed, settings)
    assert time.monotonic() - started < 10
    assert converted.warnings == (WARNING_DOC,)
    assert "timed out after 1 s" in caplog.text


def test_converter_none_returns_message_unchanged() -> None:
    parsed = _parse_mail(("通知.doc", build_doc(ITEM_PARAGRAPHS)))
    assert convert_legacy_documents(parsed, _settings(DocConverter.NONE)) is parsed


def test_message_without_doc_unchanged(antiword: str) -> None:
    parsed = _parse_mail(("a.txt", "正文".encode("gbk")))
    assert convert_legacy_documents(parsed, _settings(DocConverter.ANTIWORD)) is parsed


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_converts_doc() -> None:
    parsed = _parse_mail(("通知.doc", build_doc(ITEM_PARAGRAPHS)))
    converted = convert_legacy_documents(parsed, _settings(DocConverter.LIBREOFFICE, converter_timeout=120))
    text = converted.attachments[0].text
    assert text is not None
    assert "关于开展文化旅游消费季活动的通知" in text
    assert converted.warnings == (NOTE_CONVERTED,)
