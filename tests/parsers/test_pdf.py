"""PDF attachments: page text in order, and warnings for encrypted, damaged and scanned files."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from parsers.documents import detect_kind, read_document
from parsers.model import DocumentKind, DocumentLimits
from parsers.pdf import (
    WARNING_PDF_BROKEN,
    WARNING_PDF_ENCRYPTED,
    WARNING_PDF_IMAGE_ONLY,
    WARNING_PDF_PAGES,
)


def _name(value: str) -> NameObject:
    return NameObject(value)


def _to_unicode_cmap(codes: dict[str, int]) -> StreamObject:
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CMapName /Test-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange <0000> <FFFF> endcodespacerange",
        f"{len(codes)} beginbfchar",
    ]
    lines += [f"<{code:04X}> <{ord(char):04X}>" for char, code in codes.items()]
    lines += ["endbfchar", "endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    stream = StreamObject()
    stream.set_data("\n".join(lines).encode("ascii"))
    return stream


def _add_font(writer: PdfWriter, codes: dict[str, int]) -> object:
    """Add a Type0 font with a ToUnicode map (no glyphs: only text extraction needs it)."""
    system_info = DictionaryObject(
        {
            _name("/Registry"): TextStringObject("Adobe"),
            _name("/Ordering"): TextStringObject("Identity"),
            _name("/Supplement"): NumberObject(0),
        }
    )
    descendant = DictionaryObject(
        {
            _name("/Type"): _name("/Font"),
            _name("/Subtype"): _name("/CIDFontType2"),
            _name("/BaseFont"): _name("/TestSong"),
            _name("/CIDSystemInfo"): system_info,
            _name("/DW"): NumberObject(1000),
        }
    )
    font = DictionaryObject(
        {
            _name("/Type"): _name("/Font"),
            _name("/Subtype"): _name("/Type0"),
            _name("/BaseFont"): _name("/TestSong"),
            _name("/Encoding"): _name("/Identity-H"),
            _name("/DescendantFonts"): ArrayObject([writer._add_object(descendant)]),
            _name("/ToUnicode"): writer._add_object(_to_unicode_cmap(codes)),
        }
    )
    return writer._add_object(font)


def build_pdf(pages: list[list[str]], *, user_password: str | None = None, owner_password: str = "") -> bytes:
    """Return a PDF with one page per list entry, each line of text drawn below the previous one.

    An empty list gives a page without any text operator, like a scanned page.
    """
    writer = PdfWriter()
    chars = sorted({char for page in pages for line in page for char in line})
    codes = {char: index + 1 for index, char in enumerate(chars)}
    font = _add_font(writer, codes) if codes else None
    for lines in pages:
        page = writer.add_blank_page(width=595, height=842)
        if not lines or font is None:
            continue
        operators = ["BT", "/F1 12 Tf", "14 TL", "72 770 Td"]
        operators += ["<" + "".join(f"{codes[char]:04X}" for char in line) + "> Tj T*" for line in lines]
        operators.append("ET")
        content = StreamObject()
        content.set_data("\n".join(operators).encode("ascii"))
        page[_name("/Contents")] = writer._add_object(content)
        page[_name("/Resources")] = DictionaryObject({_name("/Font"): DictionaryObject({_name("/F1"): font})})
    if user_password is not None:
        writer.encrypt(user_password, owner_password or "owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


ITEM_PAGES = [
    ["关于举办文化旅游节的通知", "\u3000\u3000各市旅游局：正文第一段。"],
    ["\u3000\u3000第二页正文。", "审核：张三\u3000签发：李四"],
]


def test_pdf_detected_by_magic() -> None:
    assert detect_kind(build_pdf(ITEM_PAGES)) is DocumentKind.PDF


def test_pdf_text_of_every_page_in_order() -> None:
    result = read_document(build_pdf(ITEM_PAGES))
    assert result.kind is DocumentKind.PDF
    assert result.text == (
        "关于举办文化旅游节的通知\n\u3000\u3000各市旅游局：正文第一段。\n\u3000\u3000第二页正文。\n审核：张三\u3000签发：李四"
    )
    assert result.warnings == ()


def test_pdf_pages_without_text_skipped() -> None:
    result = read_document(build_pdf([["第一页"], [], ["第三页"]]))
    assert result.text == "第一页\n第三页"
    assert result.warnings == ()


def test_scanned_pdf_warns_image_only() -> None:
    result = read_document(build_pdf([[], []]))
    assert result.kind is DocumentKind.PDF
    assert result.text is None
    assert result.warnings == (WARNING_PDF_IMAGE_ONLY,)
    assert "扫描" in WARNING_PDF_IMAGE_ONLY


def test_pdf_with_open_password_warns() -> None:
    result = read_document(build_pdf(ITEM_PAGES, user_password="secret"))
    assert result.kind is DocumentKind.PDF
    assert result.text is None
    assert result.warnings == (WARNING_PDF_ENCRYPTED,)


def test_pdf_with_owner_password_only_is_read() -> None:
    result = read_document(build_pdf(ITEM_PAGES, user_password="", owner_password="owner"))
    assert result.text is not None
    assert result.text.startswith("关于举办文化旅游节的通知\n")
    assert result.warnings == ()


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n...",
        b"%PDF-1.7\n" + b"\x00" * 200,
        b"%PDF-",
    ],
)
def test_broken_pdf_warns(data: bytes) -> None:
    result = read_document(data)
    assert result.kind is DocumentKind.PDF
    assert result.text is None
    assert result.warnings == (WARNING_PDF_BROKEN,)


@pytest.mark.parametrize("cut", [50, 400, 1000, 1500])
def test_truncated_pdf_never_raises(cut: int) -> None:
    data = build_pdf(ITEM_PAGES)[:cut]
    result = read_document(data)
    assert result.kind is DocumentKind.PDF
    if result.text is None:
        assert result.warnings != ()


def test_damaged_page_keeps_other_pages() -> None:
    data = build_pdf([["完好的第一页"], ["第二页"]])
    # An unterminated string literal in page 2's content stream makes pypdf raise on that page.
    damaged = data.replace(b"<000600020007> Tj", b"(xxxxxxxxxxxxx Tj")
    assert damaged != data
    assert len(damaged) == len(data)  # the xref offsets stay valid
    result = read_document(damaged)
    assert result.kind is DocumentKind.PDF
    assert result.text == "完好的第一页"
    assert result.warnings == (WARNING_PDF_PAGES.format(failed=1),)


def test_pdf_over_document_limit_not_read() -> None:
    data = build_pdf(ITEM_PAGES)
    result = read_document(data, limits=DocumentLimits(max_document_bytes=len(data) - 1))
    assert result.kind is DocumentKind.PDF
    assert result.text is None
    assert len(result.warnings) == 1
    assert str(len(data) - 1) in result.warnings[0]


def test_page_warning_names_count() -> None:
    assert WARNING_PDF_PAGES.format(failed=2) == "附件 PDF 有 2 页无法读取，正文可能不完整，请人工核对。"
