"""OFD attachments: recognised by content, text in page and reading order."""

from __future__ import annotations

import io
import zipfile

import pytest

from parsers.documents import detect_kind, read_document
from parsers.model import DocumentKind, DocumentLimits
from parsers.ofd import WARNING_OFD_BROKEN, WARNING_OFD_EMPTY

NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'

# One text object: (boundary x, boundary y, text code Y, text, DeltaX or None).
TextObject = tuple[float, float, float, str, str | None]


def _content_xml(objects: list[TextObject]) -> str:
    parts = []
    for number, (x, y, baseline, text, delta_x) in enumerate(objects, start=1):
        delta = f' DeltaX="{delta_x}"' if delta_x else ""
        parts.append(
            f'<ofd:TextObject ID="{number}" Boundary="{x} {y} 150 6" Font="1" Size="3.5">'
            f'<ofd:TextCode X="0" Y="{baseline}"{delta}>{text}</ofd:TextCode></ofd:TextObject>'
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {NS}><ofd:Content><ofd:Layer ID="0">'
        + "".join(parts)
        + "</ofd:Layer></ofd:Content></ofd:Page>"
    )


def build_ofd(pages: list[list[TextObject]], *, absolute_paths: bool = False) -> bytes:
    """Return an OFD package with one Content.xml per page, as GB/T 33190 lays it out."""
    ofd_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD {NS} Version="1.0" DocType="OFD">'
        "<ofd:DocBody><ofd:DocInfo><ofd:DocID>0</ofd:DocID></ofd:DocInfo>"
        "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    prefix = "/Doc_0/" if absolute_paths else ""
    page_entries = "".join(
        f'<ofd:Page ID="{index + 10}" BaseLoc="{prefix}Pages/Page_{index}/Content.xml"/>'
        for index in range(len(pages))
    )
    document_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {NS}>'
        "<ofd:CommonData><ofd:MaxUnitID>100</ofd:MaxUnitID>"
        '<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea></ofd:CommonData>'
        f"<ofd:Pages>{page_entries}</ofd:Pages></ofd:Document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("OFD.xml", ofd_xml)
        package.writestr("Doc_0/Document.xml", document_xml)
        # Pages are written in reverse so that the order must come from Document.xml.
        for index in reversed(range(len(pages))):
            package.writestr(f"Doc_0/Pages/Page_{index}/Content.xml", _content_xml(pages[index]))
    return buffer.getvalue()


ITEM_PAGES: list[list[TextObject]] = [
    [
        (20, 30, 5, "省文化和旅游厅召开安全生产会议", None),
        (20, 40, 5, "\u3000\u3000近日，厅召开会议。", None),
    ],
    [
        (20, 30, 5, "审核：张三", None),
    ],
]


def test_ofd_detected_by_content() -> None:
    assert detect_kind(build_ofd(ITEM_PAGES)) is DocumentKind.OFD


def test_ofd_text_in_page_order() -> None:
    result = read_document(build_ofd(ITEM_PAGES))
    assert result.kind is DocumentKind.OFD
    assert result.text == "省文化和旅游厅召开安全生产会议\n\u3000\u3000近日，厅召开会议。\n审核：张三"
    assert result.warnings == ()


def test_ofd_absolute_page_paths() -> None:
    result = read_document(build_ofd(ITEM_PAGES, absolute_paths=True))
    assert result.text == "省文化和旅游厅召开安全生产会议\n\u3000\u3000近日，厅召开会议。\n审核：张三"


def test_ofd_lines_ordered_by_position() -> None:
    # The second line is written first in the file; the page position decides the order.
    page: list[TextObject] = [(20, 50, 5, "第二行", None), (20, 30, 5, "第一行", None)]
    assert read_document(build_ofd([page])).text == "第一行\n第二行"


def test_ofd_characters_joined_into_line() -> None:
    # Converters often place every character in its own TextObject.
    page: list[TextObject] = [
        (23.5, 30, 5, "游", None),
        (20, 30, 5, "旅", None),
        (27, 30.2, 5, "节", None),
        (20, 40, 5, "正文", "3.5"),
    ]
    assert read_document(build_ofd([page])).text == "旅游节\n正文"


def test_ofd_gap_on_line_becomes_space() -> None:
    page: list[TextObject] = [(20, 30, 5, "审核：张三", "g 4 3.5"), (100, 30, 5, "签发：李四", None)]
    assert read_document(build_ofd([page])).text == "审核：张三 签发：李四"


def test_ofd_without_text_warns() -> None:
    result = read_document(build_ofd([[]]))
    assert result.kind is DocumentKind.OFD
    assert result.text is None
    assert result.warnings == (WARNING_OFD_EMPTY,)


def test_ofd_missing_page_warns() -> None:
    data = build_ofd(ITEM_PAGES)
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            if "Page_1" not in info.filename:
                target.writestr(info.filename, source.read(info))
    result = read_document(buffer.getvalue())
    assert result.kind is DocumentKind.OFD
    assert result.text is None
    assert result.warnings == (WARNING_OFD_BROKEN,)


def test_ofd_malformed_xml_warns() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("OFD.xml", "<ofd:OFD 未闭合")
    result = read_document(buffer.getvalue())
    assert result.kind is DocumentKind.OFD
    assert result.warnings == (WARNING_OFD_BROKEN,)


def test_ofd_page_over_limit_not_read() -> None:
    page: list[TextObject] = [(20, 30 + index, 5, "重复的文字" * 20, None) for index in range(400)]
    data = build_ofd([page])
    result = read_document(data, limits=DocumentLimits(max_document_bytes=64 * 1024))
    assert result.kind is DocumentKind.OFD
    assert result.text is None
    assert len(result.warnings) == 1
    assert "65536" in result.warnings[0]


@pytest.mark.parametrize("cut", [30, 200, 600])
def test_truncated_ofd_never_raises(cut: int) -> None:
    result = read_document(build_ofd(ITEM_PAGES)[:cut])
    assert result.text is None
    assert result.warnings != ()
