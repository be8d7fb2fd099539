"""Document kinds by magic bytes and .docx text in document order."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest

from parsers.documents import (
    WARNING_DOC,
    WARNING_DOCX_BROKEN,
    WARNING_PDF,
    WARNING_ZIP_BROKEN,
    BlockKind,
    detect_kind,
    read_document,
    read_docx_blocks,
)
from parsers.model import DocumentKind
from tests.parsers.docx_builder import build_docx, paragraph, table

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (OLE2, DocumentKind.DOC),
        (b"%PDF-1.7\n", DocumentKind.PDF),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", DocumentKind.IMAGE),
        (b"\x89PNG\r\n\x1a\n....", DocumentKind.IMAGE),
        ("纯文本内容".encode("gbk"), DocumentKind.TXT),
        (b"\x00\x01\x02binary", DocumentKind.OTHER),
        (b"", DocumentKind.OTHER),
    ],
)
def test_detect_kind(data: bytes, kind: DocumentKind) -> None:
    assert detect_kind(data) is kind


def test_docx_detected_by_package_content() -> None:
    assert detect_kind(build_docx(paragraph("标题"))) is DocumentKind.DOCX


def test_zip_without_document_is_zip() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("data.csv", "a,b")
    assert detect_kind(buffer.getvalue()) is DocumentKind.ZIP


def test_python_docx_document_read_in_order() -> None:
    document = docx.Document()
    document.add_paragraph("九华山庙会活动日程")
    grid = document.add_table(rows=2, cols=2)
    grid.cell(0, 0).text = "日期"
    grid.cell(0, 1).text = "活动"
    grid.cell(1, 0).text = "3月20日"
    grid.cell(1, 1).text = "开幕式"
    document.add_paragraph("报送单位：青阳县文化和旅游局")
    buffer = io.BytesIO()
    document.save(buffer)

    blocks = read_docx_blocks(buffer.getvalue())
    assert [block.kind for block in blocks] == [BlockKind.PARAGRAPH, BlockKind.TABLE, BlockKind.PARAGRAPH]
    assert blocks[1].text == "日期\t活动\n3月20日\t开幕式"
    assert blocks[2].text == "报送单位：青阳县文化和旅游局"


def test_tracked_changes_keep_insertions_only() -> None:
    body = (
        "<w:p><w:r><w:t>开幕时间调整为</w:t></w:r>"
        "<w:del><w:r><w:delText>3月18日</w:delText></w:r></w:del>"
        "<w:ins><w:r><w:t>3月20日</w:t></w:r></w:ins>"
        "<w:moveFrom><w:r><w:t>旧位置</w:t></w:r></w:moveFrom></w:p>"
    )
    assert read_document(build_docx(body)).text == "开幕时间调整为3月20日"


def test_text_box_read_once() -> None:
    box = "<w:txbxContent>" + paragraph("咨询电话：0566-0000000") + "</w:txbxContent>"
    body = (
        "<w:p><w:r><w:t>正文</w:t></w:r><w:r><mc:AlternateContent>"
        f'<mc:Choice Requires="wps"><w:drawing><wps:txbx>{box}</wps:txbx></w:drawing></mc:Choice>'
        f"<mc:Fallback><w:pict><v:textbox>{box}</v:textbox></w:pict></mc:Fallback>"
        "</mc:AlternateContent></w:r></w:p>"
    )
    text = read_document(build_docx(body)).text
    assert text is not None
    assert text.split("\n") == ["正文", "咨询电话：0566-0000000"]


def test_vml_only_text_box_is_read() -> None:
    box = "<w:txbxContent>" + paragraph("旧版文本框") + "</w:txbxContent>"
    body = f"<w:p><w:r><w:pict><v:textbox>{box}</v:textbox></w:pict></w:r></w:p>"
    assert read_document(build_docx(body)).text == "\n旧版文本框"


def test_content_control_read() -> None:
    body = "<w:sdt><w:sdtPr/><w:sdtContent>" + paragraph("控件内文字") + "</w:sdtContent></w:sdt>"
    body += "<w:p><w:sdt><w:sdtContent><w:r><w:t>行内控件</w:t></w:r></w:sdtContent></w:sdt></w:p>"
    assert read_document(build_docx(body)).text == "控件内文字\n行内控件"


def test_table_text_kept_in_order() -> None:
    body = paragraph("标题") + table([["指标", "数值"], ["游客", "866.6"]]) + paragraph("注：初步统计")
    assert read_document(build_docx(body)).text == "标题\n指标\t数值\n游客\t866.6\n注：初步统计"


def test_legacy_doc_gives_warning() -> None:
    result = read_document(OLE2)
    assert result.kind is DocumentKind.DOC
    assert result.text is None
    assert result.warnings == (WARNING_DOC,)


def test_pdf_gives_warning() -> None:
    assert read_document(b"%PDF-1.4\n...").warnings == (WARNING_PDF,)


@pytest.mark.parametrize("cut", [10, 100, 400])
def test_truncated_zip_gives_warning(cut: int) -> None:
    data = build_docx(paragraph("标题") * 50)[:cut]
    result = read_document(data)
    assert result.text is None
    assert result.warnings in ((WARNING_DOCX_BROKEN,), (WARNING_ZIP_BROKEN,))


def test_truncated_docx_named_in_zip_gives_docx_warning() -> None:
    data = build_docx(paragraph("标题") * 50)
    result = read_document(data[: len(data) - 30])
    assert result.kind is DocumentKind.DOCX
    assert result.warnings == (WARNING_DOCX_BROKEN,)


def test_malformed_document_xml_gives_warning() -> None:
    data = build_docx("<w:p><w:r><w:t>未闭合")
    assert read_document(data).warnings == (WARNING_DOCX_BROKEN,)


def test_gbk_txt_decoded() -> None:
    result = read_document("标题\r\n正文第一段。".encode("gbk"))
    assert result.kind is DocumentKind.TXT
    assert result.text == "标题\n正文第一段。"
