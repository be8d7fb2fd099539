"""Zip attachments: members as attachments, safe names, and every limit stopping a read."""

from __future__ import annotations

import email
import io
import struct
import zipfile
import zlib
from datetime import UTC
from email.message import EmailMessage

import pytest

from parsers.archives import (
    RATIO_FLOOR_BYTES,
    WARNING_ENCRYPTED,
    WARNING_MEMBER_BROKEN,
    WARNING_METHOD,
    WARNING_TOO_MANY,
    LimitExceeded,
    LimitKind,
    ReadBudget,
    count_declared_entries,
    decode_member_name,
    make_safe_filename,
    read_member,
    read_zip_members,
    warn_limit,
)
from parsers.documents import WARNING_DOCX_BROKEN, WARNING_ZIP_BROKEN, detect_kind, read_document, read_docx_blocks
from parsers.items import extract_items
from parsers.message import parse_message
from parsers.mime import collect_attachments, count_photos
from parsers.model import Attachment, DocumentKind, DocumentLimits, ItemSource
from tests.parsers.docx_builder import build_docx, paragraph

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00photo"
ITEM_DOCX = build_docx(paragraph("景区开展消防演练") + paragraph("\u3000\u3000正文一段。") + paragraph("审核：王五"))


def build_zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """Return a zip with the members in order; names are written as UTF-8 when not ASCII."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def build_zip_raw_names(members: list[tuple[bytes, bytes]]) -> bytes:
    """Return a zip whose names are the given bytes with no UTF-8 flag, as Chinese Windows writes them."""
    placeholders = [f"{index}".rjust(len(raw), "_").encode("ascii") for index, (raw, _) in enumerate(members)]
    pairs = zip(placeholders, members, strict=True)
    data = build_zip([(placeholder.decode("ascii"), content) for placeholder, (_, content) in pairs])
    for placeholder, (raw, _) in zip(placeholders, members, strict=True):
        data = data.replace(placeholder, raw)
    return data


def set_flag_bits(data: bytes, bits: int) -> bytes:
    """Return the zip with ``bits`` set in every local and central header's flag field."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = patched.find(signature)
        while position >= 0:
            (flags,) = struct.unpack_from("<H", patched, position + offset)
            struct.pack_into("<H", patched, position + offset, flags | bits)
            position = patched.find(signature, position + 4)
    return bytes(patched)


def set_declared_size(data: bytes, size: int) -> bytes:
    """Return the zip with every header's uncompressed size replaced by ``size`` (a lying header)."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        position = patched.find(signature)
        while position >= 0:
            struct.pack_into("<I", patched, position + offset, size)
            position = patched.find(signature, position + 4)
    return bytes(patched)


def mail_with(*files: tuple[str, bytes]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "unit@example.cn"
    message["Subject"] = "【工作动态】景区开展消防演练"
    message.set_content("请查收附件。")
    for filename, data in files:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    return message


def collect(message: EmailMessage, limits: DocumentLimits | None = None) -> list[Attachment]:
    return collect_attachments(email.message_from_bytes(message.as_bytes()), limits)


# Kinds and member order


def test_zip_detected_by_magic() -> None:
    assert detect_kind(build_zip([("a.csv", b"a,b")])) is DocumentKind.ZIP


def test_zip_members_follow_zip() -> None:
    archive = build_zip([("正文.docx", ITEM_DOCX), ("照片1.jpg", JPEG), ("说明.txt", "附件说明".encode("gbk"))])
    attachments = collect(mail_with(("材料.zip", archive)))
    assert [a.filename for a in attachments] == ["材料.zip", "正文.docx", "照片1.jpg", "说明.txt"]
    assert [a.kind for a in attachments] == [
        DocumentKind.ZIP,
        DocumentKind.DOCX,
        DocumentKind.IMAGE,
        DocumentKind.TXT,
    ]
    assert [a.depth for a in attachments] == [0, 1, 1, 1]
    assert [a.container_index for a in attachments] == [None, 0, 0, 0]
    assert attachments[0].warning is None
    assert attachments[1].text == "景区开展消防演练\n\u3000\u3000正文一段。\n审核：王五"
    assert attachments[3].text == "附件说明"
    assert attachments[2].content_type == "image/jpeg"


def test_zip_container_index_after_other_files() -> None:
    archive = build_zip([("a.txt", b"text")])
    attachments = collect(mail_with(("photo.jpg", JPEG), ("pack.zip", archive)))
    assert [a.filename for a in attachments] == ["photo.jpg", "pack.zip", "a.txt"]
    assert attachments[2].container_index == 1


def test_zip_directories_and_macos_copies_skipped() -> None:
    archive = build_zip([("材料/", b""), ("材料/正文.txt", b"text"), ("__MACOSX/材料/._正文.txt", b"\x00\x05")])
    attachments = collect(mail_with(("pack.zip", archive)))
    assert [a.filename for a in attachments] == ["pack.zip", "正文.txt"]


def test_docx_in_zip_becomes_item() -> None:
    archive = build_zip([("照片.jpg", JPEG), ("正文.docx", ITEM_DOCX)])
    raw = mail_with(("材料.zip", archive)).as_bytes()
    parsed = parse_message(raw, default_tz=UTC)
    [item] = extract_items(parsed)
    assert item.title == "景区开展消防演练"
    assert item.source is ItemSource.DOCX
    assert item.attachment_index == 2


def test_txt_in_zip_becomes_item() -> None:
    text = "省旅游局召开警示教育大会\n\n    11月6日，召开大会。\n"
    archive = build_zip([("信息.txt", text.encode("gb18030"))])
    parsed = parse_message(mail_with(("信息.zip", archive)).as_bytes(), default_tz=UTC)
    [item] = extract_items(parsed)
    assert item.source is ItemSource.TXT
    assert item.title == "省旅游局召开警示教育大会"


# Member names


def test_utf8_flagged_name_decoded() -> None:
    with zipfile.ZipFile(io.BytesIO(build_zip([("工作动态.docx", b"x")]))) as archive:
        [info] = archive.infolist()
    assert info.flag_bits & 0x800
    assert decode_member_name(info) == "工作动态.docx"


def test_gb18030_name_without_flag_decoded() -> None:
    archive = build_zip_raw_names([("工作动态（修改稿）.docx".encode("gb18030"), ITEM_DOCX)])
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        [info] = package.infolist()
    assert not info.flag_bits & 0x800
    assert decode_member_name(info) == "工作动态（修改稿）.docx"
    attachments = collect(mail_with(("材料.zip", archive)))
    assert attachments[1].filename == "工作动态（修改稿）.docx"


def test_unicode_path_extra_field_decoded() -> None:
    raw_name = "工作动态.docx".encode("gb18030")
    field_body = b"\x01" + struct.pack("<I", zlib.crc32(raw_name)) + "工作动态（终稿）.docx".encode()
    extra = struct.pack("<HH", 0x7075, len(field_body)) + field_body
    info = zipfile.ZipInfo(raw_name.decode("cp437"))
    info.extra = extra
    assert decode_member_name(info) == "工作动态（终稿）.docx"
    info.extra = extra.replace(struct.pack("<I", zlib.crc32(raw_name)), b"\0\0\0\0")
    assert decode_member_name(info) == "工作动态.docx"  # a stale field is ignored


def test_utf8_name_without_flag_decoded() -> None:
    archive = build_zip_raw_names([("照片.jpg".encode(), JPEG)])
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        [info] = package.infolist()
    assert decode_member_name(info) == "照片.jpg"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/正文.docx", "正文.docx"),
        ("C:\\Users\\办公室\\正文.docx", "正文.docx"),
        ("材料/子目录/照片.jpg", "照片.jpg"),
        ("a\x07b\x1b.txt", "ab.txt"),
        ("..", "attachment"),
        ("dir/", "attachment"),
        ("  名称.txt ", "名称.txt"),
    ],
)
def test_member_name_made_safe(name: str, safe: str) -> None:
    assert make_safe_filename(name) == safe


def test_traversal_name_in_zip_becomes_base_name() -> None:
    archive = build_zip([("../../outside.txt", b"text"), ("/abs/inside.txt", b"text")])
    attachments = collect(mail_with(("pack.zip", archive)))
    assert [a.filename for a in attachments[1:]] == ["outside.txt", "inside.txt"]


# Limits


def test_member_count_limit() -> None:
    archive = build_zip([(f"{index}.txt", b"text") for index in range(5)])
    limits = DocumentLimits(zip_max_members=3)
    attachments = collect(mail_with(("pack.zip", archive)), limits)
    assert [a.filename for a in attachments] == ["pack.zip", "0.txt", "1.txt", "2.txt"]
    assert attachments[0].kind is DocumentKind.ZIP
    assert attachments[0].warning == warn_limit(LimitKind.MEMBERS, limits)
    assert "3 个" in attachments[0].warning


def test_huge_member_count_not_listed() -> None:
    archive = build_zip([(f"{index}.txt", b"") for index in range(101)], method=zipfile.ZIP_STORED)
    assert count_declared_entries(archive) == 101
    limits = DocumentLimits(zip_max_members=5)
    attachments = collect(mail_with(("pack.zip", archive)), limits)
    assert [a.filename for a in attachments] == ["pack.zip"]
    assert attachments[0].warning == WARNING_TOO_MANY.format(count=101, limit=5)


def test_declared_entries_zip64() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for index in range(0x10000):  # one more than the classic record can count
            archive.writestr(str(index), b"")
    assert count_declared_entries(buffer.getvalue()) == 0x10000


def test_declared_entries_of_non_zip() -> None:
    assert count_declared_entries(b"not a zip") is None


def test_total_bytes_limit_stops_reading() -> None:
    archive = build_zip([("a.txt", b"a" * 400), ("b.txt", b"b" * 400), ("c.txt", b"c" * 10)])
    limits = DocumentLimits(zip_max_total_bytes=1000)
    attachments = collect(mail_with(("pack.zip", archive)), limits)
    assert [a.filename for a in attachments] == ["pack.zip", "a.txt", "b.txt", "c.txt"]
    limits = DocumentLimits(zip_max_total_bytes=700)
    attachments = collect(mail_with(("pack.zip", archive)), limits)
    assert [a.filename for a in attachments] == ["pack.zip", "a.txt"]
    assert attachments[0].warning == warn_limit(LimitKind.TOTAL_BYTES, limits, "b.txt")
    assert "700" in attachments[0].warning


def test_total_bytes_shared_with_nested_zip() -> None:
    inner = build_zip([("inner.txt", b"i" * 900)])
    archive = build_zip([("inner.zip", inner)])
    limits = DocumentLimits(zip_max_total_bytes=1000)
    attachments = collect(mail_with(("pack.zip", archive)), limits)
    # inner.zip itself (about 130 bytes) is counted, so its 900-byte member no longer fits.
    assert [a.filename for a in attachments] == ["pack.zip", "inner.zip"]
    assert attachments[1].warning == warn_limit(LimitKind.TOTAL_BYTES, limits, "inner.txt")


def test_ratio_limit_stops_bomb() -> None:
    bomb = b"\x00" * (RATIO_FLOOR_BYTES * 4)
    archive = build_zip([("bomb.txt", bomb), ("ok.txt", b"fine")])
    assert len(archive) < 50_000
    limits = DocumentLimits(zip_max_ratio=100)
    attachments = collect(mail_with(("pack.zip", archive)), limits)
    assert [a.filename for a in attachments] == ["pack.zip", "ok.txt"]
    assert attachments[0].warning == warn_limit(LimitKind.RATIO, limits, "bomb.txt")
    assert "100 倍" in attachments[0].warning


def test_small_member_read_whatever_ratio() -> None:
    archive = build_zip([("zeros.txt", b"0" * 200_000)])
    attachments = collect(mail_with(("pack.zip", archive)), DocumentLimits(zip_max_ratio=10))
    assert [a.filename for a in attachments] == ["pack.zip", "zeros.txt"]
    assert attachments[0].warning is None


def test_member_over_document_limit_not_read() -> None:
    archive = build_zip([("big.txt", b"x" * 5000), ("small.txt", b"y")], method=zipfile.ZIP_STORED)
    limits = DocumentLimits(max_document_bytes=4096)
    attachments = collect(mail_with(("pack.zip", archive)), limits)
    assert [a.filename for a in attachments] == ["pack.zip", "small.txt"]
    assert attachments[0].warning == warn_limit(LimitKind.DOCUMENT_BYTES, limits, "big.txt")


def test_lying_size_header_never_reads_past_it() -> None:
    # The headers claim 100 bytes for a member that inflates to 2 MiB.
    archive = set_declared_size(build_zip([("big.txt", b"z" * (2 * 1024 * 1024))]), 100)
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        [info] = package.infolist()
        assert info.file_size == 100
        with pytest.raises(zipfile.BadZipFile):
            read_member(package, info, DocumentLimits())
    contents = read_zip_members(archive, DocumentLimits(), ReadBudget(10**9))
    assert contents.members == ()
    assert contents.warnings == (WARNING_MEMBER_BROKEN.format(name="big.txt"),)


def test_read_member_counts_bytes_against_budget() -> None:
    archive = build_zip([("a.txt", b"a" * 3000)])
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        [info] = package.infolist()
        budget = ReadBudget(5000)
        assert read_member(package, info, DocumentLimits(), budget) == b"a" * 3000
        assert budget.remaining == 2000
        with pytest.raises(LimitExceeded) as raised:
            read_member(package, info, DocumentLimits(), budget)
    assert raised.value.limit is LimitKind.TOTAL_BYTES
    assert budget.remaining == 2000


def _nested_zip() -> bytes:
    innermost = build_zip([("deep.txt", b"deep")])
    return build_zip([("inner.zip", innermost), ("mid.txt", b"mid")])


def test_nested_zip_opened_within_depth() -> None:
    attachments = collect(mail_with(("outer.zip", _nested_zip())), DocumentLimits(zip_max_depth=2))
    assert [a.filename for a in attachments] == ["outer.zip", "inner.zip", "deep.txt", "mid.txt"]
    assert [a.depth for a in attachments] == [0, 1, 2, 1]
    assert [a.container_index for a in attachments] == [None, 0, 1, 0]
    assert attachments[1].warning is None


def test_nested_zip_beyond_depth_kept() -> None:
    limits = DocumentLimits(zip_max_depth=1)
    attachments = collect(mail_with(("outer.zip", _nested_zip())), limits)
    assert [a.filename for a in attachments] == ["outer.zip", "inner.zip", "mid.txt"]
    assert attachments[1].kind is DocumentKind.ZIP
    assert attachments[1].warning == warn_limit(LimitKind.DEPTH, limits, "inner.zip")
    assert "1 层" in attachments[1].warning


def test_third_level_zip_not_opened_by_default() -> None:
    level3 = build_zip([("deep.txt", b"deep")])
    level2 = build_zip([("level3.zip", level3)])
    level1 = build_zip([("level2.zip", level2)])
    attachments = collect(mail_with(("level1.zip", level1)))
    assert [a.filename for a in attachments] == ["level1.zip", "level2.zip", "level3.zip"]
    assert attachments[2].warning == warn_limit(LimitKind.DEPTH, DocumentLimits(), "level3.zip")


def test_encrypted_member_warns() -> None:
    archive = set_flag_bits(build_zip([("机密.docx", ITEM_DOCX)]), 0x1)
    attachments = collect(mail_with(("pack.zip", archive)))
    assert [a.filename for a in attachments] == ["pack.zip"]
    assert attachments[0].warning == WARNING_ENCRYPTED.format(name="机密.docx")


def test_unsupported_method_warns() -> None:
    archive = build_zip([("a.txt", b"text" * 100)], method=zipfile.ZIP_BZIP2)
    attachments = collect(mail_with(("pack.zip", archive)))
    assert [a.filename for a in attachments] == ["pack.zip"]
    assert attachments[0].warning == WARNING_METHOD.format(name="a.txt")


def test_broken_zip_kept_with_warning() -> None:
    archive = build_zip([("a.txt", b"text" * 100)])[:-30]
    attachments = collect(mail_with(("pack.zip", archive)))
    assert [a.filename for a in attachments] == ["pack.zip"]
    assert attachments[0].kind is DocumentKind.ZIP
    assert attachments[0].warning == WARNING_ZIP_BROKEN


def test_zip_warning_reaches_message_warnings() -> None:
    archive = set_flag_bits(build_zip([("机密.txt", b"x")]), 0x1)
    parsed = parse_message(mail_with(("pack.zip", archive)).as_bytes(), default_tz=UTC)
    assert parsed.warnings == (WARNING_ENCRYPTED.format(name="机密.txt"),)


# .docx is a zip too


def _docx_with_document_xml(xml: bytes) -> bytes:
    return build_zip([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", xml)])


def test_docx_bomb_stopped_by_ratio() -> None:
    body = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" * 200_000  # 7 MB that deflates about 500 times
    head = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    data = _docx_with_document_xml(head + body + b"</w:body></w:document>")
    assert len(data) < 100_000
    limits = DocumentLimits(zip_max_ratio=100)
    result = read_document(data, limits=limits)
    assert result.kind is DocumentKind.DOCX
    assert result.text is None
    assert result.warnings == (warn_limit(LimitKind.RATIO, limits, "word/document.xml"),)


def test_docx_bomb_stopped_by_document_limit() -> None:
    xml = b"<w:document>" + b"<w:p/>" * 2000 + b"</w:document>"
    data = _docx_with_document_xml(xml)
    limits = DocumentLimits(max_document_bytes=len(xml) - 1, zip_max_ratio=10**6)
    assert len(data) < limits.max_document_bytes
    result = read_document(data, limits=limits)
    assert result.text is None
    assert result.warnings == (warn_limit(LimitKind.DOCUMENT_BYTES, limits, "word/document.xml"),)


def test_docx_with_lying_size_is_broken() -> None:
    data = set_declared_size(ITEM_DOCX, 10)
    assert read_document(data).warnings == (WARNING_DOCX_BROKEN,)


def test_read_docx_blocks_default_limits_raise_limit() -> None:
    xml = b"<w:document>" + b"<w:p/>" * (RATIO_FLOOR_BYTES // 2) + b"</w:document>"
    with pytest.raises(LimitExceeded):
        read_docx_blocks(_docx_with_document_xml(xml))


# Photos


def test_count_photos() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    png = b"\x89PNG\r\n\x1a\n\x00\x00"
    gif = b"GIF89a\x01\x00"
    bmp = b"BM\x46\x00\x00\x00"
    archive = build_zip([("现场2.jpg", JPEG), ("正文.docx", ITEM_DOCX)])
    files = [("现场1.heic", heic), ("a.png", png), ("b.gif", gif), ("c.bmp", bmp), ("材料.zip", archive)]
    attachments = collect(mail_with(*files))
    assert [a.kind for a in attachments[:4]] == [DocumentKind.IMAGE] * 4
    assert all(a.warning is None for a in attachments)
    assert count_photos(attachments) == 5


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
        b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00",
        b"RIFF\x24\x00\x00\x00WEBPVP8 ",
        b"II*\x00\x08\x00",
    ],
)
def test_photo_formats_detected(data: bytes) -> None:
    assert detect_kind(data) is DocumentKind.IMAGE
    assert read_document(data).warnings == ()


def test_mp4_not_photo() -> None:
    assert detect_kind(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00") is DocumentKind.OTHER


def test_count_photos_none() -> None:
    assert count_photos(collect(mail_with(("正文.docx", ITEM_DOCX)))) == 0
